# Stage 4: ImageNet re-training of the searched subnet from scratch (same
# recipe as the supernet, fixed architecture, no path sampling). Override
# the architecture with --cfg-options model.backbone.arch=path/to/arch.yaml
_base_ = './detnas_supernet_shufflenetv2-300m_8xb128_in1k.py'
arch = 'COCO-FPN-300M'
model = dict(backbone=dict(arch=arch))
custom_hooks = []
find_unused_parameters = False
