# DigitsDet teacher: GFL with a full-width ResNet-18 trained from scratch (no pretrained weights
# can be downloaded here). Anchors at strides 4-32 with octave_base_scale=4 (16-128 px) suit the
# 16-38 px digits; FPN starts at C2.
_base_ = [
    '../_base_/datasets/digits_det.py',
    '../_base_/schedules/digits_det.py',
    '../_base_/default_runtime_det.py',
]
custom_imports = dict(imports=['rlkd_mm'], allow_failed_imports=False)
default_scope = 'mmdet'

model = dict(
    type='GFL',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        # statistics of the train images (1500 x 96x96, seed 0)
        mean=[29.0, 29.0, 29.0],
        std=[32.0, 32.0, 32.0],
        bgr_to_rgb=False,
        pad_size_divisor=32,
    ),
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=64,
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
        in_channels=[64, 128, 256, 512],
        out_channels=128,
        start_level=0,
        num_outs=4,
    ),
    bbox_head=dict(
        type='GFLHead',
        num_classes=10,
        in_channels=128,
        stacked_convs=2,
        feat_channels=128,
        anchor_generator=dict(
            type='AnchorGenerator',
            ratios=[1.0],
            octave_base_scale=4,
            scales_per_octave=1,
            strides=[4, 8, 16, 32],
        ),
        loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_dfl=dict(type='DistributionFocalLoss', loss_weight=0.25),
        reg_max=16,
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
    ),
    train_cfg=dict(
        assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1, pos_weight=-1, debug=False
    ),
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=100,
    ),
)
