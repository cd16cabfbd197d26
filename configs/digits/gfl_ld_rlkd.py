# DigitsDet KD as gfl_ld_fixed.py, with RLKD: the agent picks one temperature per positive prior
# (shared by its class scores and its 4 box-side distributions). The first 200 iterations use
# the fixed warm-up temperature 2; then the agent acts on every batch
# (about 188 iterations per epoch). Range [1, 5] and initial T = 2 were chosen on the validation
# split among [1, 5] / 2 and [1, 10] / 4, seeds 0 and 1 (tools/benchmark/digits_det_sweeps.sh;
# grid in configs/digits/README.md).
_base_ = ['./gfl_ld_fixed.py', '../_base_/rlkd_hook.py']

model = dict(
    temperature=dict(
        _delete_=True,
        type='rlkd_mm.RLTemperature',
        t_min=1.0,
        t_max=5.0,
        t_init=2.0,
        warmup_temperature=2.0,
        score_type='sigmoid',
        dump_size=4096,  # last positives' (T, confidence) for tools/analysis
    )
)

# The RLKD hook of configs/_base_/rlkd_hook.py, the agent acting after 200 iterations.
# Per-instance rewards: every 8th acting iteration each positive is rewarded by the first-order
# effect of its gradient at the last class conv on a probe batch of the training split.
custom_hooks = [dict(_base_.custom_hooks[0], warmup_iters=200)]
