# The embedded real detection data: NEON tree crowns (DeepForest wheel),
# tiled by tools/dataset_converters/prepare_neon_trees.py. supernet_train and
# search_val are disjoint tiles of one image; test is other images/sites.
neon_data_root = 'data/neon_trees/'
metainfo = dict(classes=('Tree', ), palette=[(0, 160, 0)])
neon_img_scale = (400, 400)
neon_search_val_ann_file = 'data/neon_trees/annotations/search_val.json'
neon_test_ann_file = 'data/neon_trees/annotations/test.json'
neon_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    # multi-scale training: crown sizes differ between sites
    dict(type='RandomResize', scale=neon_img_scale, ratio_range=(0.8, 1.25),
         keep_ratio=True),
    dict(type='RandomFlip', prob=0.5, direction=['horizontal', 'vertical']),
    dict(type='PackDetInputs')
]
neon_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=neon_img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]

train_dataset = dict(
    type='CocoDataset', data_root=neon_data_root, metainfo=metainfo,
    ann_file='annotations/supernet_train.json',
    data_prefix=dict(img='images/'),
    filter_cfg=dict(filter_empty_gt=True), pipeline=neon_train_pipeline)
search_val_dataset = dict(
    type='CocoDataset', data_root=neon_data_root, metainfo=metainfo,
    ann_file='annotations/search_val.json',
    data_prefix=dict(img='images/'), test_mode=True,
    pipeline=neon_test_pipeline)
test_dataset = dict(
    type='CocoDataset', data_root=neon_data_root, metainfo=metainfo,
    ann_file='annotations/test.json',
    data_prefix=dict(img='images/'), test_mode=True,
    pipeline=neon_test_pipeline)
