# Quickstart stage 4a: classification re-training of a fixed subnet from
# scratch, the quickstart form of
# configs/detnas/detnas_subnet_shufflenetv2-300m_8xb128_in1k.py (stage-1
# Fashion-MNIST schedule, fixed architecture, no path sampling). DetNAS
# Sec. 4.1 re-trains the searched architecture on ImageNet before
# fine-tuning it on the detection data; the quickstart does the same on
# Fashion-MNIST. Set the architecture with
#   --cfg-options model.backbone.arch=path/to/arch.yaml
_base_ = './detnas_supernet_shufflenetv2-300m_quick_fashion-mnist.py'
arch = 'COCO-FPN-300M'
# search_space=None: the architecture names its space (300M-kernel for the
# quickstart's searched subnets, 300M for official ones)
model = dict(backbone=dict(arch=arch, search_space=None))
custom_hooks = []
find_unused_parameters = False
# twice the supernet's iterations: a fixed path learns fast (about 70%
# top-1 after 600 iterations on the 2-core CPU, 2 minutes)
max_iters = 600
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0, end_factor=1e-3, by_epoch=False,
         begin=0, end=max_iters)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
