# SM-NAS structural search (Sec. 3.1), quickstart size: which backbone, neck,
# head family (two-stage with RPN + RoI head, or one-stage RetinaNet / FCOS /
# ATSS),
# RoI head and input size to combine on the embedded tree tiles, trading
# search-val mAP against measured latency (CPU, batch 1).
#   python tools/search.py THIS_CONFIG --work-dir work_dirs/smnas_qs
# Every candidate trains from scratch (GroupNorm + Weight Standardization,
# the SM-NAS recipe; no pre-trained weights can be downloaded here) with the
# short schedule below, then is scored on search_val and timed.
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    '../quickstart/neon-trees_detection.py'
]
custom_imports = dict(imports=['mmdetnas'], allow_failed_imports=False)

width = 64  # neck width of the base; the neck choices set their own
gn = dict(type='GN', num_groups=16, requires_grad=True)
ws = dict(type='ConvWS')
num_classes = 1

# ------------------------------------------------------------ the base
model = dict(
    backbone=dict(
        depth=18, conv_cfg=ws, norm_cfg=gn, norm_eval=False,
        frozen_stages=-1, zero_init_residual=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=width,
              conv_cfg=ws, norm_cfg=gn),
    rpn_head=dict(
        in_channels=width, feat_channels=width,
        anchor_generator=dict(scales=[4], ratios=[0.5, 1.0, 2.0])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead', in_channels=width,
            conv_out_channels=width, fc_out_channels=256, conv_cfg=ws,
            norm_cfg=gn, num_classes=num_classes)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(score_thr=0.001, max_per_img=100)))

# the fast schedule of every candidate
max_iters = 40
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    batch_sampler=None, dataset={{_base_.train_dataset}})
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset={{_base_.search_val_dataset}})
test_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset={{_base_.test_dataset}})
val_evaluator = dict(
    type='mmdetnas.FullPrecisionCocoMetric',
    ann_file={{_base_.neon_search_val_ann_file}})
test_evaluator = dict(
    type='mmdetnas.FullPrecisionCocoMetric',
    ann_file={{_base_.neon_test_ann_file}})
optim_wrapper = dict(
    optimizer=dict(lr=0.02),
    paramwise_cfg=dict(norm_decay_mult=0.0),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=10),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75)], gamma=0.1)
]
default_hooks = dict(
    checkpoint=dict(interval=20, by_epoch=False, max_keep_ckpts=1),
    logger=dict(interval=10))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False)

# ------------------------------------------------------ the search space
# shared by the one-stage head choices
one_stage_drop = ['model.rpn_head', 'model.roi_head']
one_stage_test = dict(
    _delete_=True, nms_pre=500, min_bbox_size=0, score_thr=0.01,
    nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)
focal = dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
             loss_weight=1.0)
centerness = dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)
structural_space = dict(
    num_classes=num_classes,
    components=dict(
        backbone=dict(choices=dict(
            r18=dict(out_channels=[64, 128, 256, 512]),  # the base's
            mbv2=dict(
                out_channels=[24, 32, 96, 320],
                cfg=dict(model=dict(backbone=dict(
                    _delete_=True, type='MobileNetV2',
                    out_indices=(1, 2, 4, 6), conv_cfg=ws,
                    norm_cfg=dict(type='GN', num_groups=8,
                                  requires_grad=True),
                    init_cfg=None)))),
            detnas300m=dict(
                out_channels=[64, 160, 320, 640],
                cfg=dict(model=dict(backbone=dict(
                    _delete_=True, type='mmdetnas.DetNASShuffleNetV2',
                    arch='COCO-FPN-300M', search_space=None,
                    out_indices=(0, 1, 2, 3),
                    norm_cfg=dict(type='BN', requires_grad=True))))))),
        neck=dict(choices=dict(
            fpn64=dict(),  # the base's
            fpn32=dict(cfg=dict(model=dict(neck=dict(out_channels=32)))),
            pafpn64=dict(cfg=dict(model=dict(neck=dict(
                type='PAFPN', out_channels=64)))))),
        head=dict(choices=dict(
            two_stage=dict(),  # the base's RPN + RoI head
            retinanet=dict(
                drop=one_stage_drop,
                cfg=dict(model=dict(
                    type='RetinaNet',
                    bbox_head=dict(
                        type='RetinaHead', num_classes=num_classes,
                        in_channels=width, stacked_convs=2,
                        feat_channels=64, conv_cfg=ws, norm_cfg=gn,
                        anchor_generator=dict(
                            type='AnchorGenerator', octave_base_scale=4,
                            scales_per_octave=2, ratios=[0.5, 1.0, 2.0],
                            strides=[4, 8, 16, 32, 64]),
                        bbox_coder=dict(
                            type='DeltaXYWHBBoxCoder',
                            target_means=[.0, .0, .0, .0],
                            target_stds=[1.0, 1.0, 1.0, 1.0]),
                        loss_cls=focal,
                        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
                    train_cfg=dict(
                        _delete_=True,
                        assigner=dict(
                            type='MaxIoUAssigner', pos_iou_thr=0.5,
                            neg_iou_thr=0.4, min_pos_iou=0,
                            ignore_iof_thr=-1),
                        sampler=dict(type='PseudoSampler'),
                        allowed_border=-1, pos_weight=-1, debug=False),
                    test_cfg=one_stage_test))),
            fcos=dict(
                drop=one_stage_drop,
                cfg=dict(model=dict(
                    type='FCOS',
                    bbox_head=dict(
                        type='FCOSHead', num_classes=num_classes,
                        in_channels=width, stacked_convs=2,
                        feat_channels=64, strides=[4, 8, 16, 32, 64],
                        regress_ranges=((-1, 32), (32, 64), (64, 128),
                                        (128, 256), (256, 1e8)),
                        conv_cfg=ws, norm_cfg=gn,
                        loss_cls=focal,
                        loss_bbox=dict(type='IoULoss', loss_weight=1.0),
                        loss_centerness=centerness),
                    train_cfg=None,
                    test_cfg=one_stage_test))),
            atss=dict(
                drop=one_stage_drop,
                cfg=dict(model=dict(
                    type='ATSS',
                    bbox_head=dict(
                        type='ATSSHead', num_classes=num_classes,
                        in_channels=width, stacked_convs=2,
                        feat_channels=64, conv_cfg=ws, norm_cfg=gn,
                        anchor_generator=dict(
                            type='AnchorGenerator', ratios=[1.0],
                            octave_base_scale=4, scales_per_octave=1,
                            strides=[4, 8, 16, 32, 64]),
                        bbox_coder=dict(
                            type='DeltaXYWHBBoxCoder',
                            target_means=[.0, .0, .0, .0],
                            target_stds=[0.1, 0.1, 0.2, 0.2]),
                        loss_cls=focal,
                        loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
                        loss_centerness=centerness),
                    train_cfg=dict(
                        _delete_=True,
                        assigner=dict(type='ATSSAssigner', topk=9),
                        allowed_border=-1, pos_weight=-1, debug=False),
                    test_cfg=one_stage_test))),
        )),
        roi_head=dict(
            when=dict(head=['two_stage']),
            choices=dict(
                conv4fc1=dict(),  # the base's Shared4Conv1FC head
                cascade2=dict(cfg=dict(model=dict(
                    type='CascadeRCNN',
                    roi_head=dict(
                        _delete_=True, type='CascadeRoIHead', num_stages=2,
                        stage_loss_weights=[1, 0.5],
                        bbox_roi_extractor=dict(
                            type='SingleRoIExtractor',
                            roi_layer=dict(type='RoIAlign', output_size=7,
                                           sampling_ratio=0),
                            out_channels=width,
                            featmap_strides=[4, 8, 16, 32]),
                        bbox_head=[
                            dict(type='Shared2FCBBoxHead', in_channels=width,
                                 fc_out_channels=256, roi_feat_size=7,
                                 num_classes=num_classes,
                                 bbox_coder=dict(
                                     type='DeltaXYWHBBoxCoder',
                                     target_means=[0., 0., 0., 0.],
                                     target_stds=std),
                                 reg_class_agnostic=True,
                                 loss_cls=dict(type='CrossEntropyLoss',
                                               use_sigmoid=False,
                                               loss_weight=1.0),
                                 loss_bbox=dict(type='SmoothL1Loss',
                                                beta=1.0, loss_weight=1.0))
                            for std in ([0.1, 0.1, 0.2, 0.2],
                                        [0.05, 0.05, 0.1, 0.1])
                        ]),
                    train_cfg=dict(rcnn=[
                        dict(assigner=dict(type='MaxIoUAssigner',
                                           pos_iou_thr=iou, neg_iou_thr=iou,
                                           min_pos_iou=iou,
                                           match_low_quality=False,
                                           ignore_iof_thr=-1),
                             sampler=dict(type='RandomSampler', num=128,
                                          pos_fraction=0.25,
                                          neg_pos_ub=-1,
                                          add_gt_as_proposals=True),
                             pos_weight=-1, debug=False)
                        for iou in (0.5, 0.6)
                    ])))))),
        input_size=dict(choices=dict(
            s256=dict(scale=(256, 256)),
            s320=dict(scale=(320, 320)))),
    ))

train_cfg = dict(
    _delete_=True,
    type='mmdetnas.StructuralSearchLoop',
    # the short ("fast") schedule every candidate trains with; it is
    # scored once, by the validation that ends its training
    candidate_train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters,
                             val_interval=10 * max_iters),
    population_size=4,
    max_generations=2,
    top_k=2,
    num_mutation=2,
    num_crossover=1,
    max_tries_factor=50,
    score_key='coco/bbox_mAP_50',
    seed=0,
    # the first generation holds one two-stage and one one-stage detector
    init=[
        dict(backbone='r18', neck='fpn64', head='two_stage',
             roi_head='conv4fc1', input_size='s320'),
        dict(backbone='r18', neck='fpn64', head='retinanet', roi_head=None,
             input_size='s320'),
    ],
    latency_warmup=1,
    latency_repeats=3)
