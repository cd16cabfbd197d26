# DigitsDet KD as frcnn_kd_fixed.py, with RLKD: the agent picks one temperature per sampled RoI.
# The first 200 iterations use the fixed warm-up temperature 4; then the agent acts on every
# batch (about 188 iterations per epoch).
_base_ = ['./frcnn_kd_fixed.py']

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

# Per-instance rewards: every 8th acting iteration each sampled RoI is rewarded by the first-order
# effect of its gradient at fc_cls on a probe batch of the training split.
custom_hooks = [
    dict(
        type='rlkd_mm.RLKDHook',
        reward='influence',  # the default mode, chosen on val (configs/digits/README.md)
        reward_interval=8,
        update_interval=2,
        warmup_iters=200,
    )
]
