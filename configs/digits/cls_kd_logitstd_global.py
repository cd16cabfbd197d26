# A control for RLKD on logit standardisation: the authors' objective (cls_kd_logitstd.py, tau = 1,
# KD weight 9) with every temperature times one global multiplier a (the prefactor times a^2),
# the single-multiplier choice that a per-image multiplier must beat. a was chosen on the
# validation split among {0.5, 0.707, 1.414, 2} (a = 1 is cls_kd_logitstd.py), seeds 0 and 1,
# trained without the quiz split (configs/digits/README.md).
_base_ = ['./cls_kd_logitstd.py']

model = dict(
    temperature=dict(
        _delete_=True,
        type='rlkd_mm.ScaledTemperature',
        base=dict(type='rlkd_mm.LogitStdTemperature', base_temperature=1.0),
        multiplier=0.707,
    )
)
