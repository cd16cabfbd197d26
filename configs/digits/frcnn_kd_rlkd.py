# DigitsDet KD as frcnn_kd_fixed.py, with RLKD: the agent picks one temperature per sampled RoI.
# The first 200 iterations use the fixed warm-up temperature 4; then the agent acts on every
# batch (about 188 iterations per epoch).
_base_ = ['./frcnn_kd_fixed.py', '../_base_/rlkd_hook.py']

model = dict(
    temperature=dict(
        _delete_=True,
        type='rlkd_mm.RLTemperature',
        t_min=1.0,
        t_max=10.0,
        t_init=4.0,
        warmup_temperature=4.0,
        score_type='softmax',
    )
)

# The RLKD hook of configs/_base_/rlkd_hook.py, the agent acting after 200 iterations.
# Per-instance rewards: every 8th acting iteration each sampled RoI is rewarded by the first-order
# effect of its gradient at fc_cls on a probe batch of the training split.
custom_hooks = [dict(_base_.custom_hooks[0], warmup_iters=200)]
