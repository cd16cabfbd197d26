# Control: KD with a one-knob state rule (rlkd_mm.RuleTemperature), T_i = T0 * f_i^k clamped to
# [t_min, t_max], f_i the teacher's probability of the image's label; power = 0 is exactly
# configs/digits/cls_kd_fixed.py, whose T0 = 0.5 and KD weight 3 it keeps. k = 1 (sharper soft
# labels where the teacher is unsure) was chosen on the validation split among -1, -0.5, 0.5, 1
# (k = 0 is the fixed-T row), seeds 0 and 1 (tools/benchmark/digits_cls_headroom_sweeps.sh).
_base_ = ['./cls_kd_fixed.py']

model = dict(
    temperature=dict(
        _delete_=True,
        type='rlkd_mm.RuleTemperature',
        temperature=0.5,
        power=1.0,
        feature='teacher_gt_prob',
        t_min=0.25,
        t_max=8.0,
    )
)
