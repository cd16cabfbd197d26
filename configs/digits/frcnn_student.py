# Faster R-CNN student on DigitsDet: ResNet-18 at a quarter width (base_channels=16), narrow
# FPN and box head. Trained alone it is the no-KD baseline of frcnn_kd_*.py.
_base_ = ['./frcnn_teacher.py']

backbone_channels = 16
neck_channels = 32
fc_channels = 64

model = dict(
    backbone=dict(base_channels=backbone_channels),
    neck=dict(
        in_channels=[backbone_channels * m for m in (1, 2, 4, 8)], out_channels=neck_channels
    ),
    rpn_head=dict(in_channels=neck_channels, feat_channels=neck_channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=neck_channels),
        bbox_head=dict(in_channels=neck_channels, fc_out_channels=fc_channels),
    ),
)
