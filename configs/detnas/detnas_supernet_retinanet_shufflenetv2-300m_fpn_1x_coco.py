# Stage 2 with RetinaNet (DetNAS Sec. 4.1): lr 0.01, SyncBN in backbone and
# FPN, one path per iteration (the same on every GPU).
_base_ = [
    'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    '../_base_/datasets/coco_search_split.py',
    '../_base_/models/detnas_shufflenetv2-300m_supernet.py'
]
model = dict(
    backbone={{_base_.detnas_backbone}},
    neck=dict(
        in_channels={{_base_.stage_channels}},
        norm_cfg={{_base_.norm_cfg}}))

train_dataloader = dict(
    dataset=dict(ann_file={{_base_.supernet_train_ann}}))
optim_wrapper = dict(optimizer=dict(lr=0.01))

auto_scale_lr = dict(enable=False, base_batch_size=16)
