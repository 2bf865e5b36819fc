# Stage 2 on VOC 07+12 (DetNAS recipe 4): 22.5k iterations of 16 images,
# lr 0.01 divided by 10 at 15k and 20k, SyncBN, one path per iteration.
_base_ = [
    'mmdet::pascal_voc/retinanet_r50_fpn_1x_voc0712.py',
    '../_base_/datasets/voc0712_search_split.py',
    '../_base_/models/detnas_shufflenetv2-300m_supernet.py'
]
model = dict(
    backbone={{_base_.detnas_backbone}},
    neck=dict(
        in_channels={{_base_.stage_channels}},
        norm_cfg={{_base_.norm_cfg}}))

data_root = 'data/VOCdevkit/'
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        ignore_keys=['dataset_type'],
        datasets=[
            dict(
                type='VOCDataset',
                data_root=data_root,
                ann_file={{_base_.voc07_supernet_train}},
                data_prefix=dict(sub_data_root='VOC2007/'),
                filter_cfg=dict(
                    filter_empty_gt=True, min_size=32, bbox_min_size=32),
                pipeline={{_base_.train_pipeline}}),
            dict(
                type='VOCDataset',
                data_root=data_root,
                ann_file={{_base_.voc12_supernet_train}},
                data_prefix=dict(sub_data_root='VOC2012/'),
                filter_cfg=dict(
                    filter_empty_gt=True, min_size=32, bbox_min_size=32),
                pipeline={{_base_.train_pipeline}})
        ]))

max_iters = 22500
train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
    val_interval=7500)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[15000, 20000], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=0.01))
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2500))
log_processor = dict(by_epoch=False)

auto_scale_lr = dict(enable=False, base_batch_size=16)
