# Stage 2 with RetinaNet (DetNAS Sec. 4.1): lr 0.01, SyncBN in backbone and
# FPN, one path per iteration (the same on every GPU).
_base_ = [
    'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    '../_base_/datasets/coco_search_split.py'
]
custom_imports = dict(imports=['mmdetnas'], allow_failed_imports=False)

search_space = '300M'
stage_channels = [64, 160, 320, 640]
pretrained = ('work_dirs/detnas_supernet_shufflenetv2-300m_8xb128_in1k/'
              'iter_300000.pth')
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmdetnas.DetNASShuffleNetV2',
        search_space=search_space,
        out_indices=(0, 1, 2, 3),
        norm_cfg=norm_cfg,
        norm_eval=False,
        frozen_stages=-1,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=stage_channels, norm_cfg=norm_cfg))

train_dataloader = dict(
    dataset=dict(ann_file={{_base_.supernet_train_ann}}))
optim_wrapper = dict(optimizer=dict(lr=0.01))

custom_hooks = [
    dict(
        type='mmdetnas.PathSamplerHook',
        sampler=dict(type='mmdetnas.UniformPathSampler'),
        calib_iters=100)  # BN recalibration before validating a path
]
find_unused_parameters = True
auto_scale_lr = dict(enable=False, base_batch_size=16)
