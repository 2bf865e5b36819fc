# From-scratch training recipe of SM-NAS (Sec. 3, modular-level search):
# GroupNorm + Weight Standardization in backbone, neck and heads, no
# pre-trained weights, no frozen stages, no zero-init of residual norms, no
# weight decay on norm layers. See docs/smnas.md.
#
# Only `scratch_*` variables: mmengine forbids the same key in two bases, so
# this file can sit next to any mmdet detector config in `_base_` and the
# config merges the parts it needs, e.g. for RetinaNet:
#
#   _base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
#             '../_base_/recipes/scratch_gn-ws.py']
#   model = dict(backbone={{_base_.scratch_backbone}},
#                neck={{_base_.scratch_neck}},
#                bbox_head={{_base_.scratch_dense_head}})
#   optim_wrapper = {{_base_.scratch_optim_wrapper}}
#
# and for a two-stage detector `roi_head=dict(bbox_head=
# {{_base_.scratch_roi_bbox_head}})` (plus `mask_head=
# {{_base_.scratch_mask_head}}` for Mask R-CNN). mmdet's RPNHead has no norm
# option: its single 3x3 conv stays a plain conv, as in mmdet's own
# gn-ws-all and scratch configs. Pair it with a long schedule: mmdet's
# scratch baselines train 6x (73 epochs).
scratch_conv_cfg = dict(type='ConvWS')
scratch_norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
# merged into a ResNet-like backbone (mmdet's ResNet/ResNeXt or
# mmdetnas.SMNASResNet)
scratch_backbone = dict(
    conv_cfg=scratch_conv_cfg,
    norm_cfg=scratch_norm_cfg,
    frozen_stages=-1,
    norm_eval=False,
    zero_init_residual=False,
    init_cfg=None)
# merged into FPN / PAFPN
scratch_neck = dict(conv_cfg=scratch_conv_cfg, norm_cfg=scratch_norm_cfg)
# merged into a dense head with conv_cfg/norm_cfg (RetinaHead, FCOSHead,
# ATSSHead, ...)
scratch_dense_head = dict(
    conv_cfg=scratch_conv_cfg, norm_cfg=scratch_norm_cfg)
# merged into roi_head.bbox_head: the box head gets 4 normalised convs
scratch_roi_bbox_head = dict(
    type='Shared4Conv1FCBBoxHead',
    conv_out_channels=256,
    conv_cfg=scratch_conv_cfg,
    norm_cfg=scratch_norm_cfg)
scratch_mask_head = dict(conv_cfg=scratch_conv_cfg, norm_cfg=scratch_norm_cfg)
# merged into optim_wrapper: no weight decay on norm weights and biases
scratch_optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0.))
