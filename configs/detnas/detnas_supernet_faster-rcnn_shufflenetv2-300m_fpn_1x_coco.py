# Stage 2: supernet fine-tuning inside Faster R-CNN + FPN on COCO (DetNAS
# Sec. 4.1 / recipe 4): 1x schedule, 16 images per batch, lr 0.02, SyncBN in
# backbone, FPN and a 4conv-1fc box head, one path per iteration (the same
# on every GPU). The backbone starts from the stage-1 supernet (classifier
# dropped):
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    '../_base_/datasets/coco_search_split.py',
    '../_base_/models/detnas_shufflenetv2-300m_supernet.py'
]
model = dict(
    backbone={{_base_.detnas_backbone}},
    neck=dict(
        in_channels={{_base_.stage_channels}},
        norm_cfg={{_base_.norm_cfg}}),
    roi_head=dict(
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead',
            conv_out_channels=256,
            norm_cfg={{_base_.norm_cfg}})))

train_dataloader = dict(
    dataset=dict(ann_file={{_base_.supernet_train_ann}}))

auto_scale_lr = dict(enable=False, base_batch_size=16)
