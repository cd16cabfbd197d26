# RLKD on RoI-level KD: Faster R-CNN ResNet-101 FPN (mmdet model zoo, 39.8 AP) -> Faster R-CNN
# ResNet-18 FPN, COCO 1x. DKD paper (R101 -> R18): KD 33.97 AP, DKD 35.05 AP.
# The agent picks one temperature per sampled RoI; the teacher's RoI head runs on the student's
# sampled RoIs so both give (C + 1)-way logits for the same RoI.
# The teacher's weights are mmdet's released checkpoint, downloaded once into torch hub's cache
# and loaded weights-only (a local path works as well).
_base_ = ['./faster-rcnn_r18_fpn_1x_coco.py', '../_base_/rlkd_hook.py']

model = dict(
    _delete_=True,
    type='rlkd_mm.TwoStageDetDistiller',
    student='{{fileDirname}}/faster-rcnn_r18_fpn_1x_coco.py',
    teacher='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py',
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/'
    'faster_rcnn_r101_fpn_2x_coco/'
    'faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_20200504_210455-1d2dac9c.pth',
    temperature=dict(type='rlkd_mm.RLTemperature', score_type='softmax'),
    kd_loss=dict(type='rlkd_mm.InstanceKDLoss', loss_weight=1.0),
)

optim_wrapper = dict(constructor='rlkd_mm.DistillerOptimWrapperConstructor')

# The RLKD hook of configs/_base_/rlkd_hook.py. 7330 iterations per epoch at 16 images per
# batch: the agent acts after 1000 iterations
custom_hooks = [dict(_base_.custom_hooks[0], warmup_iters=1000)]
