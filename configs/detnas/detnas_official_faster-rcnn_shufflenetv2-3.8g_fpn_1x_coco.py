# The released DetNAS COCO-FPN-3.8G detector (reference
# e2e_faster_rcnn_DETNAS_COCO_FPN_3d8G_1x.yaml): as the 300M one, wider.
_base_ = './detnas_official_faster-rcnn_shufflenetv2-300m_fpn_1x_coco.py'
model = dict(
    backbone=dict(search_space='3.8G', arch='COCO-FPN-3.8G'),
    neck=dict(in_channels=[172, 432, 864, 1728]))
