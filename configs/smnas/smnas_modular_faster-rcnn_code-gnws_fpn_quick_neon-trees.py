# SM-NAS modular-level search (Sec. 3, second stage), quickstart size: evolve
# the backbone code (BasicBlocks: blocks per stage, where the width doubles,
# where the resolution halves, base channels) of a Faster R-CNN + FPN on the
# embedded tree tiles, every candidate trained from scratch with GroupNorm +
# Weight Standardization (the SM-NAS recipe), scored on search_val and timed
# (CPU, batch 1); the front trades mAP@0.5 against latency.
#   python tools/search.py THIS_CONFIG --work-dir work_dirs/smnas_mod
# The detector around the backbone is the base below. To search the backbone
# of the structural stage's choice instead, put its front config in _base_
# (with the recipe's GN+WS neck and heads) and keep the two dicts below.
_base_ = ['./smnas_scratch_faster-rcnn_r18-gnws_fpn_quick_neon-trees.py']
custom_imports = dict(imports=['mmdetnas'], allow_failed_imports=False)

# the fast schedule of every candidate (the base trains 300 iterations)
max_iters = 60
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=20),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75)], gamma=0.1)
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval=20, max_keep_ckpts=1))

modular_space = dict(
    depth=18,  # BasicBlock codes
    min_blocks=4,
    max_blocks=10,
    base_channels=(32, 48, 64),
    num_widenings=3,
    # backbone MACs between 0.1x and 1.25x those of ResNet-18 at 400x400
    flops_ratio=(0.1, 1.25),
    # GN groups base/2 (the original's rule; 32 at base 64), ConvWS
    backbone=dict(norm_cfg=dict(type='GN', num_groups='half_base',
                                requires_grad=True)))

train_cfg = dict(
    _delete_=True,
    type='mmdetnas.ModularSearchLoop',
    # the short ("fast") schedule every candidate trains with; it is
    # scored once, by the validation that ends its training
    candidate_train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters,
                             val_interval=10 * max_iters),
    population_size=4,
    max_generations=2,
    top_k=2,
    num_mutation=2,
    num_crossover=1,
    max_tries_factor=50,
    score_key='coco/bbox_mAP_50',
    seed=0,
    # generation 1 starts from the ResNet-18 layout and a thinner variant
    init=['r18_64_11-21-21-21', 'r18_32_11-21-21-21'],
    latency_warmup=1,
    latency_repeats=3)
