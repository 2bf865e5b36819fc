# Quickstart stages 4-5 with RetinaNet (see the Faster R-CNN subnet config).
_base_ = './detnas_supernet_retinanet_shufflenetv2-300m_fpn_quick_neon-trees.py'

arch = 'COCO-RetinaNet-300M'
pretrained = 'work_dirs/quickstart/pretrain_searched/iter_600.pth'
model = dict(
    backbone=dict(
        arch=arch, search_space=None,
        init_cfg=dict(checkpoint=pretrained)))
custom_hooks = []
find_unused_parameters = False
max_iters = 150
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=20),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75)], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=0.01))
default_hooks = dict(checkpoint=dict(interval=max_iters))
