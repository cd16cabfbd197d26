# Faster R-CNN with a ResNet-18 FPN on COCO (1x): the student of
# kd-rlkd_faster-rcnn-r101_faster-rcnn-r18_fpn_1x_coco.py and, trained alone, its no-KD baseline.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['rlkd_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(depth=18, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]),
)
