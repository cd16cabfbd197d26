# DigitsDet KD: Faster R-CNN ResNet-18 teacher -> quarter-width Faster R-CNN student, KD on the
# (C + 1)-way class logits of every sampled RoI (the teacher's RoI head runs on the student's
# RoIs), one fixed temperature T = 4.
# The teacher checkpoint: train configs/digits/frcnn_teacher.py and copy its last checkpoint to
# checkpoints/digits/frcnn_teacher.pth, or pass --cfg-options model.teacher_ckpt=<path>.
_base_ = ['./frcnn_student.py']

model = dict(
    _delete_=True,
    type='rlkd_mm.TwoStageDetDistiller',
    student='{{fileDirname}}/frcnn_student.py',
    teacher='{{fileDirname}}/frcnn_teacher.py',
    teacher_ckpt='checkpoints/digits/frcnn_teacher.pth',
    temperature=dict(type='rlkd_mm.FixedTemperature', temperature=4.0),
    kd_loss=dict(type='rlkd_mm.InstanceKDLoss', loss_weight=1.0),
)

optim_wrapper = dict(constructor='rlkd_mm.DistillerOptimWrapperConstructor')
