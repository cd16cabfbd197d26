# Control: KD with a one-knob state rule (rlkd_mm.RuleTemperature), T_i = T0 * f_i^k clamped to
# [t_min, t_max], f_i the teacher's probability of the image's label; power = 0 is exactly
# configs/digits/cls_kd_fixed.py. T0 = 1 is the fixed-T baseline's temperature; k = -0.5 (softer
# soft labels where the teacher is unsure) is a starting point, not tuned: tune k on the
# validation split, e.g. python tools/benchmark/sweep.py configs/digits/cls_kd_rule.py
# --metric accuracy/top1 --scale 1 --seeds 0 1 --grid model.temperature.power=-1.0,-0.5,0.5,1.0
_base_ = ['./cls_kd_fixed.py']

model = dict(
    temperature=dict(
        _delete_=True,
        type='rlkd_mm.RuleTemperature',
        temperature=1.0,
        power=-0.5,
        feature='teacher_gt_prob',
        t_min=0.25,
        t_max=8.0,
    )
)
