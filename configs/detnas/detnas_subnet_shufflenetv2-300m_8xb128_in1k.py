# Stage 4: ImageNet re-training of the searched subnet from scratch (same
# recipe as the supernet, fixed architecture, no path sampling). Override
# the architecture with --cfg-options model.backbone.arch=path/to/arch.yaml
_base_ = './detnas_supernet_shufflenetv2-300m_8xb128_in1k.py'
arch = 'COCO-FPN-300M'
# fixed networks train with BN momentum 0.01 in the reference code (0.1 only
# in its supernet/search configs)
norm_cfg = dict(type='SyncBN', momentum=0.01, requires_grad=True)
model = dict(backbone=dict(arch=arch, norm_cfg=norm_cfg))
custom_hooks = []
find_unused_parameters = False
