# Evolutionary search on the quickstart classification supernet (stage 1),
# scored by Fashion-MNIST top-1 on the validation images after BN
# recalibration on training images: DetNAS's "search on the classification
# supernet" baseline (DetNAS Sec. 4.3, Table 4), and the config the ranking
# tool uses to score classification supernets:
#   python tools/search.py THIS_CONFIG work_dirs/quickstart/pretrain/iter_300.pth
_base_ = './detnas_supernet_shufflenetv2-300m_quick_fashion-mnist.py'

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
    score_key='accuracy/top1',
    calibrate_bn=True,
    calib_iters=20,
    calib_batch_size=32,
    init_archs=[['shuffle_3x3'] * 20],
    seed=0,
    retrain_config='configs/quickstart/'
    'detnas_subnet_shufflenetv2-300m_quick_fashion-mnist.py')
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=-1))
