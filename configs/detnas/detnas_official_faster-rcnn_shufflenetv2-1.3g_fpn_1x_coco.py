# The released DetNAS COCO-FPN-1.3G detector (reference
# e2e_faster_rcnn_DETNAS_COCO_FPN_1d3G_1x.yaml): as the 300M one, wider.
_base_ = './detnas_official_faster-rcnn_shufflenetv2-300m_fpn_1x_coco.py'
model = dict(
    backbone=dict(search_space='1.3G', arch='COCO-FPN-1.3G'),
    neck=dict(in_channels=[96, 240, 480, 960]))
