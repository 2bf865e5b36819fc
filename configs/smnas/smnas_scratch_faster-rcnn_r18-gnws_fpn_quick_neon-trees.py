# The SM-NAS from-scratch recipe at quickstart size: Faster R-CNN + FPN with
# the ResNet-18 stage layout (SMNASResNet, SM-NAS 3x3 stem), GroupNorm +
# Weight Standardization in backbone, FPN and box head, no pre-trained
# weights, trained on the embedded NEON tree tiles on a CPU. The data,
# evaluation and head sizes are those of the DetNAS quickstart detection
# configs (configs/quickstart/); the schedule is longer and has a longer
# warm-up, as training from scratch needs.
_base_ = [
    './smnas_scratch_faster-rcnn_r50-gnws_fpn_6x_coco.py',
    '../quickstart/neon-trees_detection.py'
]
arch = 'r18_64_11-21-21-21'
stage_channels = [64, 128, 256, 512]  # parse_code(arch).stage_channels
fpn_channels = 64  # 256 in the COCO config; 64 keeps a CPU iteration short
model = dict(
    backbone=dict(arch=arch),
    neck=dict(in_channels=stage_channels, out_channels=fpn_channels),
    rpn_head=dict(
        in_channels=fpn_channels,
        feat_channels=fpn_channels,
        anchor_generator=dict(scales=[4], ratios=[0.5, 1.0, 2.0])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=fpn_channels),
        bbox_head=dict(
            num_classes=1,
            in_channels=fpn_channels,
            conv_out_channels=fpn_channels)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=500),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=300),
        rcnn=dict(score_thr=0.001, max_per_img=150)))

max_iters = 300
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
# is detected (a short from-scratch run may detect nothing)
val_evaluator = dict(
    type='mmdetnas.FullPrecisionCocoMetric',
    ann_file={{_base_.neon_search_val_ann_file}},
    classwise=False)
test_evaluator = dict(
    type='mmdetnas.FullPrecisionCocoMetric',
    ann_file={{_base_.neon_test_ann_file}})

train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
    val_interval=max_iters)
optim_wrapper = dict(
    optimizer=dict(lr=0.02), clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
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
