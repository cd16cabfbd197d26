# Digits classification student: the first three stages of a CIFAR-style ResNet-18 at 1/16 width
# (4-8-16 channels, 11k parameters against the teacher's 0.7M).
_base_ = [
    '../_base_/datasets/digits_cls.py',
    '../_base_/schedules/digits_cls.py',
    '../_base_/default_runtime_cls.py',
]
custom_imports = dict(imports=['rlkd_mm'], allow_failed_imports=False)
default_scope = 'mmpretrain'

model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        num_classes=10,
        mean=[77.7, 77.7, 77.7],
        std=[82.4, 82.4, 82.4],
        to_rgb=False,
    ),
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        stem_channels=4,
        base_channels=4,
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2,),
        style='pytorch',
    ),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=16,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    ),
    init_cfg=None,
)
