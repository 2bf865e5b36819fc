# The released DetNAS COCO-FPN-300M detector as the reference code built it
# (megvii-model/DetNAS, e2e_faster_rcnn_DETNAS_COCO_FPN_300M_1x.yaml):
# Faster R-CNN + FPN, 4conv-1fc box head, SyncBN (momentum 0.01) in
# backbone, FPN and box head, 'interleave' channel shuffle, BGR 0-255 input
# without mean/std, RoIAlign with 2 samples and no half-pixel alignment.
# For the released weights converted with
#   python tools/model_converters/detnas_to_mmdetnas.py REF.pth det.pth \
#       --config THIS_CONFIG
#   python tools/test.py THIS_CONFIG det.pth
# (mmdet computes boxes without the legacy +1 pixel of maskrcnn-benchmark,
# so scores can differ slightly from the reference's).
_base_ = './detnas_subnet_faster-rcnn_shufflenetv2-300m_fpn_1x_coco.py'
arch = 'COCO-FPN-300M'
model = dict(
    data_preprocessor=dict(
        mean=[0., 0., 0.], std=[1., 1., 1.], bgr_to_rgb=False),
    backbone=dict(arch=arch, shuffle_order='interleave', init_cfg=None),
    roi_head=dict(
        bbox_roi_extractor=dict(
            roi_layer=dict(sampling_ratio=2, aligned=False))))
