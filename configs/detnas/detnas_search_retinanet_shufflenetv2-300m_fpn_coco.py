# Stage 3 on the RetinaNet supernet (see the Faster R-CNN search config).
_base_ = './detnas_supernet_retinanet_shufflenetv2-300m_fpn_1x_coco.py'

model = dict(backbone=dict(init_cfg=None))
custom_hooks = []
train_cfg = dict(
    _delete_=True,
    type='mmdetnas.EvolutionSearchLoop',
    max_generations=20,
    population_size=50,
    top_k=10,
    num_mutation=20,
    num_crossover=20,
    mutate_prob=0.1,
    flops=(None, 300e6),
    score_key='coco/bbox_mAP',
    calib_iters=500,
    calib_batch_size=8,
    retrain_config='configs/detnas/'
    'detnas_subnet_retinanet_shufflenetv2-300m_fpn_1x_coco.py')
val_dataloader = dict(
    dataset=dict(ann_file={{_base_.search_val_ann}}))
# mmdet's CocoMetric with unrounded mAP (mmdet rounds to 3 decimals)
val_evaluator = dict(
    type='mmdetnas.FullPrecisionCocoMetric',
    ann_file={{_base_.search_val_ann_file}})
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=-1))
