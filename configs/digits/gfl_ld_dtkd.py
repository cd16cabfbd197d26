# DigitsDet KD as gfl_ld_fixed.py, with DTKD: per-prior student and teacher temperatures from
# the two models' largest logits. tau = 2 was chosen on the validation split among 2 / 4 (seeds
# 0, 1: 86.7 / 85.5 mAP val; tools/benchmark/digits_det_sweeps.sh).
# The LD box-side term uses the teacher temperature on both sides (ld_temperature='teacher'):
# with the student's own temperature it blurred the box distributions (-3 to -27 mAP, README).
_base_ = ['./gfl_ld_fixed.py']

model = dict(
    ld_temperature='teacher',
    temperature=dict(
        _delete_=True,
        type='rlkd_mm.DTKDTemperature',
        base_temperature=2.0,
        score_type='sigmoid',
    )
)
