# SM-NAS from-scratch recipe (Sec. 3) on COCO: Faster R-CNN + FPN with an
# SMNASResNet backbone, GroupNorm + Weight Standardization in backbone, FPN
# and a 4conv-1fc box head, no pre-trained weights, no weight decay on norm
# layers. Default backbone: the ResNet-50 stage layout (with the SM-NAS 3x3
# stem), so the result compares with mmdet's
# scratch/faster-rcnn_r50-scratch_fpn_gn-all_6x_coco.py (GN, no WS: 40.7 box
# AP), whose 6x schedule (73 epochs, steps 65 and 71) this config uses.
# Another backbone: --cfg-options model.backbone.arch=CODE
# model.neck.in_channels=[...] (mmdetnas.spaces.parse_code(CODE)
# .stage_channels).
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    '../_base_/recipes/scratch_gn-ws.py'
]
arch = 'r50_64_111-2111-211111-211'
stage_channels = [256, 512, 1024, 2048]  # parse_code(arch).stage_channels
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmdetnas.SMNASResNet',
        arch=arch,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_eval=False,
        zero_init_residual=False,
        conv_cfg={{_base_.scratch_conv_cfg}},
        norm_cfg={{_base_.scratch_norm_cfg}},
        init_cfg=None),
    neck=dict(
        in_channels=stage_channels,
        conv_cfg={{_base_.scratch_conv_cfg}},
        norm_cfg={{_base_.scratch_norm_cfg}}),
    roi_head=dict(bbox_head={{_base_.scratch_roi_bbox_head}}))
optim_wrapper = {{_base_.scratch_optim_wrapper}}

max_epochs = 73
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[65, 71],
        gamma=0.1)
]
train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
auto_scale_lr = dict(enable=False, base_batch_size=16)
