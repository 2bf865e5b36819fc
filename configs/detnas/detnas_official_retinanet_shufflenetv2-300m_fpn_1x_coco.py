# The released DetNAS COCO-RetinaNet-300M detector as the reference code
# built it (retinanet_DETNAS_COCO_FPN_300M_1x.yaml): FPN on C3-C5 without
# norms, P6 from the P5 output and P7 from ReLU(P6), SyncBN (momentum 0.01)
# in the backbone, 'interleave' channel shuffle, BGR 0-255 input without
# mean/std. For the released weights converted with
#   python tools/model_converters/detnas_to_mmdetnas.py REF.pth det.pth \
#       --config THIS_CONFIG
#   python tools/test.py THIS_CONFIG det.pth
_base_ = './detnas_subnet_retinanet_shufflenetv2-300m_fpn_1x_coco.py'
arch = 'COCO-RetinaNet-300M'
model = dict(
    data_preprocessor=dict(
        mean=[0., 0., 0.], std=[1., 1., 1.], bgr_to_rgb=False),
    backbone=dict(arch=arch, shuffle_order='interleave', init_cfg=None),
    neck=dict(
        norm_cfg=None,
        start_level=1,
        add_extra_convs='on_output',
        relu_before_extra_convs=True))
