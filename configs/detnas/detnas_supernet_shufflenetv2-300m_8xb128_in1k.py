# Stage 1: supernet pre-training on ImageNet (DetNAS Sec. 4.1 / recipe 4):
# 8 GPUs x 128, 300k iterations, SGD momentum 0.9, lr 0.5 linearly to 0,
# weight decay 4e-5, label smoothing 0.1, one path per iteration (the same on
# every GPU, broadcast from rank 0).
_base_ = ['../_base_/datasets/imagenet_bs128.py', '../_base_/cls_runtime.py']

search_space = '300M'
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='mmdetnas.ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='mmdetnas.DetNASShuffleNetV2',
        search_space=search_space,
        out_indices=(3, ),
        with_last_conv=True,
        norm_cfg=norm_cfg),
    num_classes=1000,
    label_smoothing=0.1)

# Uniform sampling (DetNAS/SPOS). The reference ImageNet supernet sampled
# FLOPs bins instead; use for example
#   sampler=dict(type='mmdetnas.FlopsBinPathSampler',
#                flops_range=(250e6, 330e6), bin_width=10e6)
custom_hooks = [
    dict(
        type='mmdetnas.PathSamplerHook',
        sampler=dict(type='mmdetnas.UniformPathSampler'),
        calib_iters=20)  # BN recalibration before validating a path
]
# unselected choices get no gradient in an iteration
find_unused_parameters = True

max_iters = 300000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.5, momentum=0.9, weight_decay=4e-5),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1.0,
        end_factor=1e-4,
        by_epoch=False,
        begin=0,
        end=max_iters)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=10000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=1024)
