# Digits classification student: the first three stages of a CIFAR-style ResNet-18 at 1/8 width
# (8-16-32 channels, 44k parameters against the teacher's 175k). Trained on the cluttered digits
# (see the dataset base), 30 epochs. At 1/16 width (11k parameters) the student could not fit
# its training set and every KD setting we tried lowered it (single-seed design runs).
_base_ = [
    '../_base_/datasets/digits_clutter_cls.py',
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
        mean=[69.2, 69.2, 69.2],
        std=[70.4, 70.4, 70.4],
        to_rgb=False,
    ),
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        stem_channels=8,
        base_channels=8,
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
        in_channels=32,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    ),
    init_cfg=None,
)
