_base_ = './detnas_supernet_faster-rcnn_shufflenetv2-300m_fpn_1x_coco.py'
search_space = '1.3G'
stage_channels = [96, 240, 480, 960]
pretrained = ('work_dirs/detnas_supernet_shufflenetv2-1.3g_8xb128_in1k/'
              'iter_300000.pth')
model = dict(
    backbone=dict(
        search_space=search_space, init_cfg=dict(checkpoint=pretrained)),
    neck=dict(in_channels=stage_channels))
