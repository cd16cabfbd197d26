# DigitsDet KD as gfl_ld_fixed.py, with DTKD: per-prior student and teacher temperatures from
# the two models' largest logits (tau = 4).
# The LD box-side term uses the teacher temperature on both sides (ld_temperature='teacher'):
# with the student's own temperature it blurred the box distributions (-3 to -27 mAP, README).
_base_ = ['./gfl_ld_fixed.py']

model = dict(
    ld_temperature='teacher',
    temperature=dict(
        _delete_=True,
        type='rlkd_mm.DTKDTemperature',
        base_temperature=4.0,
        score_type='sigmoid',
    )
)
