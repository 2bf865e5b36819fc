# Stage 5 with RetinaNet; default: the official COCO-RetinaNet-300M subnet.
_base_ = './detnas_supernet_retinanet_shufflenetv2-300m_fpn_1x_coco.py'
arch = 'COCO-RetinaNet-300M'
pretrained = ('work_dirs/detnas_subnet_shufflenetv2-300m_8xb128_in1k/'
              'iter_300000.pth')
model = dict(
    backbone=dict(arch=arch, init_cfg=dict(checkpoint=pretrained)))
train_dataloader = dict(
    dataset=dict(ann_file='annotations/instances_train2017.json'))
custom_hooks = []
find_unused_parameters = False
