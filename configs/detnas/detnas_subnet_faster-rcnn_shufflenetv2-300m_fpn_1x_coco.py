# Stage 5: the searched subnet fine-tuned on COCO with the standard 1x
# schedule and SyncBN (DetNAS Sec. 4.1), trained on the full train set and
# evaluated on val2017. Default: the official COCO-FPN-300M architecture;
# use your own with --cfg-options model.backbone.arch=path/to/arch.yaml
# The backbone starts from its ImageNet re-training (stage 4); to start from
# the sliced supernet weights instead (tools/model_converters/
# export_subnet.py), set model.backbone.init_cfg.checkpoint to that file.
_base_ = './detnas_supernet_faster-rcnn_shufflenetv2-300m_fpn_1x_coco.py'
arch = 'COCO-FPN-300M'
pretrained = ('work_dirs/detnas_subnet_shufflenetv2-300m_8xb128_in1k/'
              'iter_300000.pth')
# fixed networks train with BN momentum 0.01 in the reference code (0.1 only
# in its supernet/search configs), in backbone, FPN and box head
norm_cfg = dict(type='SyncBN', momentum=0.01, requires_grad=True)
model = dict(
    backbone=dict(
        arch=arch, norm_cfg=norm_cfg, init_cfg=dict(checkpoint=pretrained)),
    neck=dict(norm_cfg=norm_cfg),
    roi_head=dict(bbox_head=dict(norm_cfg=norm_cfg)))
train_dataloader = dict(
    dataset=dict(ann_file='annotations/instances_train2017.json'))
custom_hooks = []
find_unused_parameters = False
