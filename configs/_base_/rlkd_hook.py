# The RLKD hook shared by the RLKD configs (configs/*/*rlkd*.py): every 8th iteration the agent
# acts on is rewarded per instance, and the agent learns from every 2 such iterations. A config
# inherits it next to its model base and sets only warmup_iters, the iterations trained at the
# warm-up temperature before the agent acts (about one epoch):
#
#     _base_ = ['./cls_kd_fixed.py', '../_base_/rlkd_hook.py']
#     custom_hooks = [dict(_base_.custom_hooks[0], warmup_iters=17)]
#
# Inheritance replaces a list instead of merging it, so a config that adds hooks lists this one
# again: custom_hooks = [*_base_.custom_hooks, dict(type='rlkd_mm.KDWarmupHook', ...)].
custom_hooks = [
    dict(
        type='rlkd_mm.RLKDHook',
        reward='influence',  # the default mode, chosen on val (configs/digits/README.md)
        reward_interval=8,
        update_interval=2,
    ),
]
