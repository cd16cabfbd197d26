# Faster R-CNN teacher on DigitsDet: ResNet-18 at full width, FPN from stride 4, trained from
# scratch (no pretrained weights can be downloaded here). Data, schedule, runtime and input
# normalisation are those of the GFL teacher (det_teacher_gfl.py).
_base_ = ['./det_teacher_gfl.py']
custom_imports = dict(imports=['rlkd_mm'], allow_failed_imports=False)
default_scope = 'mmdet'

backbone_channels = 64  # ResNet-18 stage widths: 1x, 2x, 4x, 8x this
neck_channels = 64
fc_channels = 256

model = dict(
    _delete_=True,
    type='FasterRCNN',
    data_preprocessor={{_base_.model.data_preprocessor}},
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=backbone_channels,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None,
    ),
    neck=dict(
        type='FPN',
        in_channels=[backbone_channels * m for m in (1, 2, 4, 8)],
        out_channels=neck_channels,
        num_outs=4,
    ),
    rpn_head=dict(
        type='RPNHead',
        in_channels=neck_channels,
        feat_channels=neck_channels,
        # digits are 16-38 px: anchors of 16-128 px over strides 4-32
        anchor_generator=dict(
            type='AnchorGenerator', scales=[4], ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16, 32]
        ),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0.0, 0.0, 0.0, 0.0],
            target_stds=[1.0, 1.0, 1.0, 1.0],
        ),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0),
    ),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=neck_channels,
            featmap_strides=[4, 8, 16, 32],
        ),
        bbox_head=dict(
            type='Shared2FCBBoxHead',
            in_channels=neck_channels,
            fc_out_channels=fc_channels,
            roi_feat_size=7,
            num_classes=10,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0.0, 0.0, 0.0, 0.0],
                target_stds=[0.1, 0.1, 0.2, 0.2],
            ),
            reg_class_agnostic=False,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0),
        ),
    ),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                match_low_quality=True,
                ignore_iof_thr=-1,
            ),
            sampler=dict(
                type='RandomSampler',
                num=128,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=False,
            ),
            allowed_border=-1,
            pos_weight=-1,
            debug=False,
        ),
        # at most 4 digits per canvas: a few hundred proposals are plenty (and RoIAlign on CPU
        # is a large part of the iteration time)
        rpn_proposal=dict(
            nms_pre=500, max_per_img=100, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0
        ),
        rcnn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.5,
                min_pos_iou=0.5,
                match_low_quality=False,
                ignore_iof_thr=-1,
            ),
            # few objects per 96x96 canvas: 64 RoIs per image, a quarter positive at most
            sampler=dict(
                type='RandomSampler',
                num=64,
                pos_fraction=0.25,
                neg_pos_ub=-1,
                add_gt_as_proposals=True,
            ),
            pos_weight=-1,
            debug=False,
        ),
    ),
    test_cfg=dict(
        rpn=dict(
            nms_pre=500, max_per_img=100, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0
        ),
        rcnn=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100),
    ),
)
