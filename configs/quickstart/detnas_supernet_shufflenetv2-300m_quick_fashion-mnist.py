# Quickstart stage 1: the real ImageNet supernet pre-training config, shrunk
# to Fashion-MNIST (10 classes, 64x64, prepared in the ImageNet layout by
# tools/dataset_converters/prepare_fashion_mnist.py) and a CPU schedule.
_base_ = '../detnas/detnas_supernet_shufflenetv2-300m_8xb128_in1k.py'

data_root = 'data/fashion_mnist/'
max_iters = 300
# The quickstart searches the kernel sizes of the 300M space with a
# weight-entangled supernet: its k x k choices share one 7x7 block per layer
# (smaller kernels are its centre). With independent weights per choice (the
# DetNAS/SPOS layout) a random-path supernet stays at chance for thousands
# of iterations; see docs/supernet_training.md for the measurements.
search_space = '300M-kernel'
weight_sharing = 'kernel'
model = dict(
    num_classes=10,
    backbone=dict(
        search_space=search_space,
        weight_sharing=weight_sharing,
        norm_cfg=dict(type='BN')))
custom_hooks = [
    dict(
        type='mmdetnas.PathSamplerHook',
        sampler=dict(type='mmdetnas.UniformPathSampler'),
        calib_iters=10)
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdetnas.RandomResizedCrop', size=64, scale=(0.35, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmdetnas.PackClsInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdetnas.PackClsInputs'),
]
train_dataloader = dict(
    batch_size=32, num_workers=1, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
# lr 0.5 x 32 / 1024 (linear scaling of the paper's recipe), rounded
optim_wrapper = dict(optimizer=dict(lr=0.02))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0, end_factor=1e-3, by_epoch=False,
         begin=0, end=max_iters)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
# backend by device: the tools start NCCL with CUDA and gloo without
# (mmdetnas.utils.dist.dist_backend); None lets torch choose the same
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend=None))
