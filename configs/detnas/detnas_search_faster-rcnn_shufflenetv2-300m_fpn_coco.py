# Stage 3: evolutionary search on the trained Faster R-CNN supernet (DetNAS
# Sec. 3.4 / recipe 5): population 50, top-k 10, 20 mutations (p=0.1), 20
# crossovers, 20 generations, backbone FLOPs <= 300M MACs (224x224), BN
# recalibration (500 x 8 training images) before each candidate, scored by
# mmdet's CocoMetric on the 5k search split.
#   python tools/search.py THIS_CONFIG SUPERNET_CKPT
_base_ = './detnas_supernet_faster-rcnn_shufflenetv2-300m_fpn_1x_coco.py'

model = dict(backbone=dict(init_cfg=None))  # weights come from the ckpt
custom_hooks = []  # the search loop chooses the path
train_cfg = dict(
    _delete_=True,
    type='mmdetnas.EvolutionSearchLoop',
    max_generations=20,
    population_size=50,
    top_k=10,
    num_mutation=20,
    num_crossover=20,
    mutate_prob=0.1,
    max_tries_factor=10,
    flops=(None, 300e6),
    score_key='coco/bbox_mAP',
    calibrate_bn=True,
    calib_iters=500,
    calib_batch_size=8,
    seed=0,
    retrain_config='configs/detnas/'
    'detnas_subnet_faster-rcnn_shufflenetv2-300m_fpn_1x_coco.py')
val_dataloader = dict(
    dataset=dict(ann_file={{_base_.search_val_ann}}))
# mmdet's CocoMetric with unrounded mAP (mmdet rounds to 3 decimals)
val_evaluator = dict(
    type='mmdetnas.FullPrecisionCocoMetric',
    ann_file={{_base_.search_val_ann_file}})
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=-1))
