# DigitsDet KD as gfl_ld_fixed.py, with DTKD (rlkd_mm.DTKDTemperature): per-prior student and
# teacher temperatures from the two models' largest absolute logits (our sigmoid adaptation of
# the largest logit, see DTKDTemperature), and the authors' loss alpha * T_s * T_t * KL(T_s, T_t)
# + beta * tau^2 * KL(tau) with the gradient through both temperatures; alpha = 3 and beta = 1
# are the authors' defaults. tau = 2 was chosen on the validation split among 2 / 4 (seeds 0, 1;
# tools/benchmark/digits_det_sweeps.sh, grid in configs/digits/README.md) for the variant this
# config trained before (alpha=1.0, beta=0.0, detach=True). The class-score KD weight 0.033
# (a third of fixed T's, as alpha = 3 triples the first term) was chosen on the validation split
# among 0.033 / 0.1 (seed 0, configs/digits/README.md#digitsdet-the-authors-logit-std-and-dtkd);
# the LD weight is gfl_ld_fixed.py's.
# The LD box-side term uses the teacher temperature on both sides (ld_temperature='teacher', with
# the plain T_t^2 scale and no vanilla term): with the student's own temperature it blurred the
# box distributions (configs/digits/README.md).
# Warm-up: the authors ramp the KD loss in over 20 of 240 epochs (1/12): here 1 of 12 epochs.
_base_ = ['./gfl_ld_fixed.py']

model = dict(
    ld_temperature='teacher',
    kd_loss=dict(loss_weight=0.033),
    temperature=dict(
        _delete_=True,
        type='rlkd_mm.DTKDTemperature',
        base_temperature=2.0,
        alpha=3.0,
        beta=1.0,
        score_type='sigmoid',
    ),
)
custom_hooks = [dict(type='rlkd_mm.KDWarmupHook', warmup=1)]
