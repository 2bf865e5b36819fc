# Stage 3 on VOC: scored by mmdet's VOCMetric (pascal_voc/mAP) on the
# 07+12 search split.
_base_ = './detnas_supernet_retinanet_shufflenetv2-300m_fpn_1x_voc0712.py'

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
    score_key='pascal_voc/mAP',
    calib_iters=500,
    calib_batch_size=8)
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        ignore_keys=['dataset_type'],
        datasets=[
            dict(
                type='VOCDataset',
                data_root={{_base_.data_root}},
                ann_file={{_base_.voc07_search_val}},
                data_prefix=dict(sub_data_root='VOC2007/'),
                test_mode=True,
                pipeline={{_base_.test_pipeline}}),
            dict(
                type='VOCDataset',
                data_root={{_base_.data_root}},
                ann_file={{_base_.voc12_search_val}},
                data_prefix=dict(sub_data_root='VOC2012/'),
                test_mode=True,
                pipeline={{_base_.test_pipeline}})
        ]))
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=-1))
