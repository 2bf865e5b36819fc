# Stage 5 with RetinaNet; default: the official COCO-RetinaNet-300M subnet.
_base_ = './detnas_supernet_retinanet_shufflenetv2-300m_fpn_1x_coco.py'
arch = 'COCO-RetinaNet-300M'
pretrained = ('work_dirs/detnas_subnet_shufflenetv2-300m_8xb128_in1k/'
              'iter_300000.pth')
# fixed networks train with BN momentum 0.01 in the reference code (0.1 only
# in its supernet/search configs)
norm_cfg = dict(type='SyncBN', momentum=0.01, requires_grad=True)
model = dict(
    backbone=dict(
        arch=arch, norm_cfg=norm_cfg, init_cfg=dict(checkpoint=pretrained)),
    neck=dict(norm_cfg=norm_cfg))
train_dataloader = dict(
    dataset=dict(ann_file='annotations/instances_train2017.json'))
custom_hooks = []
find_unused_parameters = False
