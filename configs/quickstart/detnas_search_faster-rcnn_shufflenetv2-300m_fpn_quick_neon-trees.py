# Quickstart stage 3: the evolutionary search on the quickstart supernet,
# scored by CocoMetric mAP@0.5 (unrounded) on the search_val tiles, with BN
# recalibration on supernet_train tiles. Same loop as
# configs/detnas/detnas_search_faster-rcnn_shufflenetv2-300m_fpn_coco.py,
# a CPU-sized population.
_base_ = './detnas_supernet_faster-rcnn_shufflenetv2-300m_fpn_quick_neon-trees.py'

model = dict(backbone=dict(init_cfg=None))  # weights come from the ckpt
custom_hooks = []  # the search loop chooses the path
train_cfg = dict(
    _delete_=True,
    type='mmdetnas.EvolutionSearchLoop',
    max_generations=3,
    population_size=8,
    top_k=3,
    num_mutation=3,
    num_crossover=3,
    mutate_prob=0.1,
    # matched FLOPs: within 5% of the all-3x3 baseline (262.7M MACs)
    flops=(None, 275e6),
    # few uniform random paths are that small (the mean is ~284M): draw
    # more before a generation gives up (a FLOPs check costs ~20 us)
    max_tries_factor=200,
    score_key='coco/bbox_mAP_50',  # the quickstart compares test mAP@0.5
    calibrate_bn=True,
    calib_iters=4,
    calib_batch_size=4,
    init_archs=[['shuffle_3x3'] * 20],
    seed=0,
    retrain_config='configs/quickstart/'
    'detnas_subnet_faster-rcnn_shufflenetv2-300m_fpn_quick_neon-trees.py')
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=-1),
    logger=dict(interval=50))
