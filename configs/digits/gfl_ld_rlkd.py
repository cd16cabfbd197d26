# DigitsDet KD as gfl_ld_fixed.py, with RLKD: the agent picks one temperature per positive prior
# (shared by its class scores and its 4 box-side distributions). The first 200 iterations use
# the fixed warm-up temperature 4; the agent is updated every 20 iterations
# (about 188 iterations per epoch).
_base_ = ['./gfl_ld_fixed.py']

model = dict(
    temperature=dict(
        _delete_=True,
        type='rlkd_mm.RLTemperature',
        t_min=1.0,
        t_max=10.0,
        t_init=4.0,
        warmup_temperature=4.0,
        score_type='sigmoid',
        dump_size=4096,  # last positives' (T, confidence) for tools/analysis
    )
)

custom_hooks = [dict(type='rlkd_mm.RLKDHook', update_interval=20, warmup_iters=200)]
