# Quickstart stage 2 with RetinaNet (quickstart --retinanet): the real
# RetinaNet supernet config on the tree tiles with a CPU schedule.
_base_ = [
    '../detnas/detnas_supernet_retinanet_shufflenetv2-300m_fpn_1x_coco.py',
    './neon-trees_detection.py'
]
pretrained = ('work_dirs/quickstart/pretrain/iter_300.pth')
fpn_channels = 64  # 256 in the real config
# the quickstart's weight-entangled kernel-size supernet (see the stage-1
# config and docs/supernet_training.md)
model = dict(
    backbone=dict(
        search_space='300M-kernel',
        weight_sharing='kernel',
        init_cfg=dict(checkpoint=pretrained)),
    neck=dict(out_channels=fpn_channels),
    bbox_head=dict(
        num_classes=1,
        in_channels=fpn_channels,
        feat_channels=fpn_channels,
        anchor_generator=dict(octave_base_scale=2)),
    test_cfg=dict(nms_pre=500, max_per_img=150))

max_iters = 200
train_dataloader = dict(
    batch_size=4, num_workers=1, persistent_workers=False,
    batch_sampler=None,
    dataset={{_base_.train_dataset}})
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset={{_base_.search_val_dataset}})
test_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset={{_base_.test_dataset}})
# mmdet's CocoMetric, unrounded, and 0 instead of no metric when nothing
# is detected (a weak CPU-trained model may detect nothing)
val_evaluator = dict(
    type='mmdetnas.FullPrecisionCocoMetric',
    ann_file={{_base_.neon_search_val_ann_file}})
test_evaluator = dict(
    type='mmdetnas.FullPrecisionCocoMetric',
    ann_file={{_base_.neon_test_ann_file}})
train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
    val_interval=max_iters)
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75)], gamma=0.1)
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
# backend by device: the tools start NCCL with CUDA and gloo without
# (mmdetnas.utils.dist.dist_backend); None lets torch choose the same
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend=None))
custom_hooks = [
    dict(
        type='mmdetnas.PathSamplerHook',
        sampler=dict(type='mmdetnas.UniformPathSampler'),
        calib_iters=5)
]
