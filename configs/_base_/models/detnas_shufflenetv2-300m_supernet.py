# The DetNAS 300M search space as the backbone of an mmdet detector, in its
# supernet form (DetNAS Sec. 3.2 / 4.1): four stage outputs (strides 4, 8,
# 16, 32; 64/160/320/640 channels), SyncBN trained with the detector (the
# paper's fine-tuning recipe), initialised from the ImageNet supernet, one
# path per iteration sampled on rank 0 and broadcast. Used by the detection
# supernet configs:
#   model = dict(backbone={{_base_.detnas_backbone}},
#                neck=dict(in_channels={{_base_.stage_channels}}, ...))
custom_imports = dict(imports=['mmdetnas'], allow_failed_imports=False)

search_space = '300M'
stage_channels = [64, 160, 320, 640]
pretrained = ('work_dirs/detnas_supernet_shufflenetv2-300m_8xb128_in1k/'
              'iter_300000.pth')
norm_cfg = dict(type='SyncBN', requires_grad=True)
detnas_backbone = dict(
    _delete_=True,  # replaces the ResNet of the mmdet base config
    type='mmdetnas.DetNASShuffleNetV2',
    search_space=search_space,
    out_indices=(0, 1, 2, 3),
    norm_cfg=norm_cfg,
    norm_eval=False,
    frozen_stages=-1,
    init_cfg=dict(
        type='Pretrained', checkpoint=pretrained, prefix='backbone.'))

custom_hooks = [
    dict(
        type='mmdetnas.PathSamplerHook',
        sampler=dict(type='mmdetnas.UniformPathSampler'),
        calib_iters=100)  # BN recalibration before validating a path
]
# unselected choices get no gradient in an iteration
find_unused_parameters = True
