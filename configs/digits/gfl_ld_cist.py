# DigitsDet KD as gfl_ld_fixed.py, with CIST: per-prior teacher and student temperatures from
# each model's largest absolute class logit (rho = 2) and a per-prior KD weight (teacher
# confidence x student difficulty). The LD box-side term uses the teacher temperature on both
# sides (ld_temperature='teacher'): a student temperature from the class scores would ask for box
# distributions flatter or sharper than the teacher's.
_base_ = ['./gfl_ld_fixed.py']

model = dict(
    ld_temperature='teacher',
    temperature=dict(
        _delete_=True,
        type='rlkd_mm.CISTTemperature',
        rho=2.0,
        t_min=0.5,
        t_max=20.0,
        score_type='sigmoid',
    ),
)
