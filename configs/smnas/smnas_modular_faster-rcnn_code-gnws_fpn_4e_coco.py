# SM-NAS modular-level search (Sec. 3, second stage) on COCO: evolve the
# Bottleneck backbone code of a Faster R-CNN + FPN (the detector of
# smnas_scratch_faster-rcnn_r50-gnws_fpn_6x_coco.py: GN + WS in backbone, FPN
# and 4conv-1fc box head, no pre-trained weights), every candidate trained
# from scratch for a short schedule, scored by COCO box AP on val2017 and
# timed on the search device (batch 1, NMS included).
#   tools/dist_search.sh THIS_CONFIG 8 --work-dir work_dirs/smnas_s2
# Put the structural stage's front config in _base_ instead to search the
# backbone of its choice (keep its neck and heads GN + WS, see
# configs/_base_/recipes/scratch_gn-ws.py).
# The paper's candidate schedule and population are not published (see
# docs/smnas.md): 4 epochs (steps at 3) and 2 x 16 candidates are ours.
_base_ = ['./smnas_scratch_faster-rcnn_r50-gnws_fpn_6x_coco.py']
custom_imports = dict(imports=['mmdetnas'], allow_failed_imports=False)

max_epochs = 4
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[3], gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=1))

modular_space = dict(
    depth=50,  # Bottleneck codes
    min_blocks=5,
    max_blocks=30,
    base_channels=(48, 56, 64, 72),  # the original's choices
    num_widenings=3,
    # backbone MACs between 0.5x and 1.5x those of ResNet-50 at 800x1333
    flops_ratio=(0.5, 1.5),
    backbone=dict(norm_cfg=dict(type='GN', num_groups='half_base',
                                requires_grad=True)))

train_cfg = dict(
    _delete_=True,
    type='mmdetnas.ModularSearchLoop',
    # the short ("fast") schedule every candidate trains with; it is
    # scored once, by the validation that ends its training
    candidate_train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                             val_interval=max_epochs),
    population_size=16,
    max_generations=8,
    top_k=8,
    num_mutation=8,
    num_crossover=4,
    max_tries_factor=50,
    score_key='coco/bbox_mAP',
    seed=0,
    init=['r50_64_111-2111-211111-211'],
    latency_warmup=10,
    latency_repeats=50)
