# Digits classification, KD with one fixed temperature (the baseline every policy is compared to).
# The teacher checkpoint is written by `make demo` / tools/benchmark/digits_cls_table.py.
_base_ = ['./cls_student_cnn.py']

model = dict(
    _delete_=True,
    type='rlkd_mm.ClassifierDistiller',
    student='{{fileDirname}}/cls_student_cnn.py',
    teacher='{{fileDirname}}/cls_teacher_cnn.py',
    teacher_ckpt='checkpoints/digits/cls_teacher_cnn.pth',
    temperature=dict(type='rlkd_mm.FixedTemperature', temperature=4.0),
    kd_loss=dict(type='rlkd_mm.InstanceKDLoss', loss_weight=1.0),
)
# keeps the frozen teacher out of the optimizer
optim_wrapper = dict(constructor='rlkd_mm.DistillerOptimWrapperConstructor')
