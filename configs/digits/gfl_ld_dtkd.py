# DigitsDet KD as gfl_ld_fixed.py, with DTKD: per-prior student and teacher temperatures from
# the two models' largest logits (tau = 4).
_base_ = ['./gfl_ld_fixed.py']

model = dict(
    temperature=dict(
        _delete_=True,
        type='rlkd_mm.DTKDTemperature',
        base_temperature=4.0,
        score_type='sigmoid',
    )
)
