# The noisy-teacher testbed: fixed-T KD (T = 0.5, KD weight 3, the setting of cls_kd_fixed.py)
# from cls_teacher_cnn_noisy.py, whose labels were partly swapped between class pairs, so its
# reliability varies by instance. The student's data and labels are the clean ones. The teacher
# checkpoint is written by tools/benchmark/digits_table.py --task cls_noisy (trained once, then
# cached).
_base_ = ['./cls_kd_fixed.py']

model = dict(
    teacher='{{fileDirname}}/cls_teacher_cnn_noisy.py',
    teacher_ckpt='checkpoints/digits/cls_teacher_cnn_noisy.pth',
)
