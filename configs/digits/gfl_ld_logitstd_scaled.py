# DigitsDet KD as gfl_ld_fixed.py, with our scaled logit standardisation
# (rlkd_mm.ScaledLogitStdTemperature): per positive prior and per model T = tau * std(z), each
# prior's class-score KL scaled by T_s * T_t = tau^2 * std(z_s) * std(z_t) (a per-prior KD
# weight) instead of the authors' tau^2; T_s detached for sigmoid scores. This is what
# gfl_ld_logitstd.py trained before, with its settings: tau = 1, chosen on the validation split
# among 1 / 2 (seeds 0, 1; tools/benchmark/digits_det_sweeps.sh, grid in configs/digits/README.md).
# The LD box-side term uses the teacher temperature on both sides (ld_temperature='teacher'):
# with the student's own temperature it blurred the box distributions (configs/digits/README.md).
_base_ = ['./gfl_ld_fixed.py']

model = dict(
    ld_temperature='teacher',
    temperature=dict(
        _delete_=True,
        type='rlkd_mm.ScaledLogitStdTemperature',
        base_temperature=1.0,
        score_type='sigmoid',
    ),
)
