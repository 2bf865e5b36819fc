# SM-NAS structural search (Sec. 3.1) on COCO with the space of the original
# code (see docs/smnas.md): detector Faster R-CNN or Cascade R-CNN with 2 or
# 3 stages (plus one-stage RetinaNet, FCOS and ATSS on the same FPN, which
# the original code did not have); backbones ResNet-18/34/50/101 and
# ResNeXt-50/101 (32x4d), ImageNet-initialised; FPN with 128, 256 or 384
# channels; RPNHead or GA-RPN; input 512x512, 800x600 or 1000x600. Each
# candidate is trained with a "fast" schedule (2 epochs here: the paper's is
# not known) on the DetNAS search split's training part and scored on its
# 5,000 held-out images (make them with tools/dataset_converters/
# split_search_set.py, see configs/_base_/datasets/coco_search_split.py).
#   tools/dist_search.sh THIS_CONFIG 8 --work-dir work_dirs/smnas
# Latency is measured on rank 0's GPU, batch 1, NMS included.
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    '../_base_/datasets/coco_search_split.py'
]
custom_imports = dict(imports=['mmdetnas'], allow_failed_imports=False)

train_dataloader = dict(
    dataset=dict(ann_file={{_base_.supernet_train_ann}}))
val_dataloader = dict(dataset=dict(ann_file={{_base_.search_val_ann}},
                                   data_prefix=dict(img='train2017/')))
val_evaluator = dict(
    type='mmdetnas.FullPrecisionCocoMetric',
    ann_file={{_base_.search_val_ann_file}})
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=2, by_epoch=True,
         milestones=[2], gamma=0.1)
]
auto_scale_lr = dict(enable=True, base_batch_size=16)


def _resnet(depth):
    return dict(
        out_channels=[64, 128, 256, 512] if depth < 50 else
        [256, 512, 1024, 2048],
        cfg=dict(model=dict(backbone=dict(
            depth=depth,
            init_cfg=dict(type='Pretrained',
                          checkpoint=f'torchvision://resnet{depth}')))))


def _resnext(depth):
    return dict(
        out_channels=[256, 512, 1024, 2048],
        cfg=dict(model=dict(backbone=dict(
            type='ResNeXt', depth=depth, groups=32, base_width=4,
            init_cfg=dict(type='Pretrained',
                          checkpoint=f'open-mmlab://resnext{depth}_32x4d')))))


def _fpn(width):
    return dict(cfg=dict(model=dict(neck=dict(out_channels=width))))


def _cascade(num_stages):
    stds = ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
            [0.033, 0.033, 0.067, 0.067])[:num_stages]
    ious = (0.5, 0.6, 0.7)[:num_stages]
    return dict(cfg=dict(model=dict(
        type='CascadeRCNN',
        roi_head=dict(
            _delete_=True, type='CascadeRoIHead', num_stages=num_stages,
            stage_loss_weights=[1, 0.5, 0.25][:num_stages],
            bbox_roi_extractor=dict(
                type='SingleRoIExtractor',
                roi_layer=dict(type='RoIAlign', output_size=7,
                               sampling_ratio=0),
                out_channels=256, featmap_strides=[4, 8, 16, 32]),
            bbox_head=[
                dict(type='Shared2FCBBoxHead', in_channels=256,
                     fc_out_channels=1024, roi_feat_size=7, num_classes=80,
                     bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                                     target_means=[0., 0., 0., 0.],
                                     target_stds=std),
                     reg_class_agnostic=True,
                     loss_cls=dict(type='CrossEntropyLoss',
                                   use_sigmoid=False, loss_weight=1.0),
                     loss_bbox=dict(type='SmoothL1Loss', beta=1.0,
                                    loss_weight=1.0)) for std in stds
            ]),
        train_cfg=dict(rcnn=[
            dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=iou,
                               neg_iou_thr=iou, min_pos_iou=iou,
                               match_low_quality=False, ignore_iof_thr=-1),
                 sampler=dict(type='RandomSampler', num=512,
                              pos_fraction=0.25, neg_pos_ub=-1,
                              add_gt_as_proposals=True),
                 pos_weight=-1, debug=False) for iou in ious
        ]))))


ga_rpn = dict(cfg=dict(model=dict(
    rpn_head=dict(
        _delete_=True, type='GARPNHead', in_channels=256, feat_channels=256,
        approx_anchor_generator=dict(
            type='AnchorGenerator', octave_base_scale=8, scales_per_octave=3,
            ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16, 32, 64]),
        square_anchor_generator=dict(
            type='AnchorGenerator', ratios=[1.0], scales=[8],
            strides=[4, 8, 16, 32, 64]),
        anchor_coder=dict(type='DeltaXYWHBBoxCoder',
                          target_means=[.0, .0, .0, .0],
                          target_stds=[0.07, 0.07, 0.14, 0.14]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                        target_means=[.0, .0, .0, .0],
                        target_stds=[0.07, 0.07, 0.11, 0.11]),
        loc_filter_thr=0.01,
        loss_loc=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0,
                      alpha=0.25, loss_weight=1.0),
        loss_shape=dict(type='BoundedIoULoss', beta=0.2, loss_weight=1.0),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True,
                      loss_weight=1.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
    train_cfg=dict(
        rpn=dict(
            ga_assigner=dict(type='ApproxMaxIoUAssigner', pos_iou_thr=0.7,
                             neg_iou_thr=0.3, min_pos_iou=0.3,
                             ignore_iof_thr=-1),
            ga_sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5,
                            neg_pos_ub=-1, add_gt_as_proposals=False),
            allowed_border=-1, center_ratio=0.2, ignore_ratio=0.5),
        rpn_proposal=dict(max_per_img=300)),
    test_cfg=dict(rpn=dict(max_per_img=300)))))

one_stage_test = dict(_delete_=True, nms_pre=1000, min_bbox_size=0,
                      score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5),
                      max_per_img=100)
focal = dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
             loss_weight=1.0)
centerness = dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)
strides = [4, 8, 16, 32, 64]  # the neck's P2-P6


def _one_stage(detector, head, train_cfg):
    return dict(drop=['model.rpn_head', 'model.roi_head'],
                cfg=dict(model=dict(
                    type=detector, bbox_head=dict(head, num_classes=80,
                                                  in_channels=256),
                    train_cfg=train_cfg,
                    test_cfg=one_stage_test)))


retinanet = _one_stage(
    'RetinaNet',
    dict(type='RetinaHead', stacked_convs=4, feat_channels=256,
         anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                               scales_per_octave=3, ratios=[0.5, 1.0, 2.0],
                               strides=strides),
         bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                         target_means=[.0, .0, .0, .0],
                         target_stds=[1.0, 1.0, 1.0, 1.0]),
         loss_cls=focal, loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    dict(_delete_=True,
         assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                       neg_iou_thr=0.4, min_pos_iou=0, ignore_iof_thr=-1),
         sampler=dict(type='PseudoSampler'), allowed_border=-1,
         pos_weight=-1, debug=False))
fcos = _one_stage(
    'FCOS',
    dict(type='FCOSHead', stacked_convs=4, feat_channels=256,
         strides=strides,
         regress_ranges=((-1, 64), (64, 128), (128, 256), (256, 512),
                         (512, 1e8)),
         norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
         loss_cls=focal, loss_bbox=dict(type='IoULoss', loss_weight=1.0),
         loss_centerness=centerness), None)
atss = _one_stage(
    'ATSS',
    dict(type='ATSSHead', stacked_convs=4, feat_channels=256,
         anchor_generator=dict(type='AnchorGenerator', ratios=[1.0],
                               octave_base_scale=8, scales_per_octave=1,
                               strides=strides),
         bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                         target_means=[.0, .0, .0, .0],
                         target_stds=[0.1, 0.1, 0.2, 0.2]),
         loss_cls=focal, loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
         loss_centerness=centerness),
    dict(_delete_=True, assigner=dict(type='ATSSAssigner', topk=9),
         allowed_border=-1, pos_weight=-1, debug=False))

structural_space = dict(
    num_classes=80,
    components=dict(
        backbone=dict(choices=dict(
            r18=_resnet(18), r34=_resnet(34), r50=_resnet(50),
            r101=_resnet(101), x50=_resnext(50), x101=_resnext(101))),
        neck=dict(choices=dict(
            fpn128=_fpn(128), fpn256=_fpn(256), fpn384=_fpn(384))),
        # the original code had two-stage detectors only; the one-stage
        # families are the additions
        head=dict(choices=dict(two_stage=dict(), retinanet=retinanet,
                               fcos=fcos, atss=atss)),
        rpn=dict(when=dict(head=['two_stage']),
                 choices=dict(rpn=dict(), ga_rpn=ga_rpn)),
        roi_head=dict(when=dict(head=['two_stage']), choices=dict(
            fc2=dict(), cascade2=_cascade(2), cascade3=_cascade(3))),
        input_size=dict(choices=dict(
            s512=dict(scale=(512, 512)), s800=dict(scale=(800, 600)),
            s1000=dict(scale=(1000, 600)))),
    ))

train_cfg = dict(
    _delete_=True,
    type='mmdetnas.StructuralSearchLoop',
    # the short ("fast") schedule every candidate trains with; it is
    # scored once, by the validation that ends its training
    candidate_train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=2, val_interval=100),
    population_size=16, max_generations=4, top_k=4, num_mutation=6,
    num_crossover=4, max_tries_factor=50, score_key='coco/bbox_mAP',
    seed=0,
    init=[dict(backbone='r50', neck='fpn256', head='two_stage', rpn='rpn',
               roi_head='fc2', input_size='s800')])
