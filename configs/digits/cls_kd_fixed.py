# Digits classification, KD with one fixed temperature (the baseline every policy is compared to).
# T = 0.5 and KD weight 3 were chosen on the validation split among T in {0.5, 1, 2} x weight in
# {1, 3}, seeds 0 and 1, trained without the headroom quiz split
# (tools/benchmark/digits_cls_headroom_sweeps.sh; grids in configs/digits/README.md). The earlier
# tables used T = 1, weight 1 (chosen among (1, 1), (4, 1), (2, 0.3)); the configs that inherit
# this one pin their own KD weight.
# The teacher checkpoint is written by tools/benchmark/digits_table.py --task cls (trained once,
# then cached).
_base_ = ['./cls_student_cnn.py']

model = dict(
    _delete_=True,
    type='rlkd_mm.ClassifierDistiller',
    student='{{fileDirname}}/cls_student_cnn.py',
    teacher='{{fileDirname}}/cls_teacher_cnn.py',
    teacher_ckpt='checkpoints/digits/cls_teacher_cnn.pth',
    temperature=dict(type='rlkd_mm.FixedTemperature', temperature=0.5),
    kd_loss=dict(type='rlkd_mm.InstanceKDLoss', loss_weight=3.0),
)
# keeps the frozen teacher out of the optimizer
optim_wrapper = dict(constructor='rlkd_mm.DistillerOptimWrapperConstructor')
