# Digits classification, KD with one fixed temperature (the baseline every policy is compared to).
# T = 1 and KD weight 1 were chosen on the validation split among (T, weight) = (1, 1), (4, 1),
# (2, 0.3), seeds 0 and 1 (tools/benchmark/digits_cls_sweeps.sh; grid in configs/digits/README.md).
# The teacher checkpoint is written by tools/benchmark/digits_table.py --task cls (trained once,
# then cached).
_base_ = ['./cls_student_cnn.py']

model = dict(
    _delete_=True,
    type='rlkd_mm.ClassifierDistiller',
    student='{{fileDirname}}/cls_student_cnn.py',
    teacher='{{fileDirname}}/cls_teacher_cnn.py',
    teacher_ckpt='checkpoints/digits/cls_teacher_cnn.pth',
    temperature=dict(type='rlkd_mm.FixedTemperature', temperature=1.0),
    kd_loss=dict(type='rlkd_mm.InstanceKDLoss', loss_weight=1.0),
)
# keeps the frozen teacher out of the optimizer
optim_wrapper = dict(constructor='rlkd_mm.DistillerOptimWrapperConstructor')
