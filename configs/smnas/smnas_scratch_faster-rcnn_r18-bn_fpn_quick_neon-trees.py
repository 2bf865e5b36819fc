# The control of the SM-NAS "fast from scratch" claim on the tree data: the
# detector, data and schedule of
# smnas_scratch_faster-rcnn_r18-gnws_fpn_quick_neon-trees.py with BatchNorm
# and plain convs in place of GroupNorm + Weight Standardization (backbone,
# FPN and 4conv-1fc box head), still from scratch. Results: README, SM-NAS.
_base_ = ['./smnas_scratch_faster-rcnn_r18-gnws_fpn_quick_neon-trees.py']
bn = dict(_delete_=True, type='BN', requires_grad=True)
model = dict(
    backbone=dict(conv_cfg=None, norm_cfg=bn),
    neck=dict(conv_cfg=None, norm_cfg=bn),
    roi_head=dict(bbox_head=dict(conv_cfg=None, norm_cfg=bn)))
