# DigitsDet student: GFL with ResNet-18 at 1/4 width (base_channels=16), a 32-channel FPN and one
# stacked head conv; same anchors, data and schedule as det_teacher_gfl.py.
_base_ = ['./det_teacher_gfl.py']
custom_imports = dict(imports=['rlkd_mm'], allow_failed_imports=False)
default_scope = 'mmdet'

model = dict(
    backbone=dict(base_channels=16),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    bbox_head=dict(in_channels=32, stacked_convs=1, feat_channels=32),
)
