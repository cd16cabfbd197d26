# DigitsDet KD as gfl_ld_fixed.py, with CTKD: one learnable, adversarial temperature (gradient
# reversal ramped up over the first ~2 epochs), trained by the student's optimizer.
_base_ = ['./gfl_ld_fixed.py']

model = dict(
    temperature=dict(
        _delete_=True,
        type='rlkd_mm.CTKDTemperature',
        mode='global',
        t_min=1.0,
        t_max=21.0,
        t_init=4.0,
        ramp_iters=400,
        score_type='sigmoid',
    )
)
