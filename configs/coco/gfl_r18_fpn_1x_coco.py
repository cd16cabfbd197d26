# GFL with a ResNet-18 backbone on COCO (1x): the student of
# ld-{rlkd,fixed}_gfl-r101_gfl-r18_fpn_1x_coco.py and, trained alone, their no-KD baseline.
# Same detector as mmdet's ld_r18-gflv1-r101_fpn_1x_coco.py without the LD head.
_base_ = 'mmdet::gfl/gfl_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['rlkd_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(depth=18, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]),
)
