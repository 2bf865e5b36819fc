# Quickstart stages 4b-5: detection fine-tuning of a fixed subnet (default:
# the official COCO-FPN-300M; the quickstart passes the searched one and the
# all-3x3 baseline with --cfg-options model.backbone.arch=...), the
# quickstart form of configs/detnas/detnas_subnet_faster-rcnn_*_1x_coco.py.
# As in DetNAS Sec. 4.1 the backbone starts from its own classification
# re-training (stage 4a, detnas_subnet_shufflenetv2-300m_quick_fashion-
# mnist.py); set model.backbone.init_cfg.checkpoint to that checkpoint, or
# to the subnet's weights sliced out of the detection supernet
# (tools/model_converters/export_subnet.py) to inherit them instead.
_base_ = './detnas_supernet_faster-rcnn_shufflenetv2-300m_fpn_quick_neon-trees.py'

arch = 'COCO-FPN-300M'
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
optim_wrapper = dict(optimizer=dict(lr=0.02))
default_hooks = dict(checkpoint=dict(interval=max_iters))
