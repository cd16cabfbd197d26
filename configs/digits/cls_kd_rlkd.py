# KD with RLKD: an RL agent picks each image's temperature in [1, 10] (mean 4 at start),
# rewarded by the improvement of the student's own loss after the update it influenced.
_base_ = ['./cls_kd_fixed.py']

model = dict(
    temperature=dict(
        _delete_=True,
        type='rlkd_mm.RLTemperature',
        t_min=1.0,
        t_max=10.0,
        t_init=4.0,
        warmup_temperature=4.0,
        hq_tau=0.5,
        agent=dict(lr=3e-4, gamma=0.9, explore_updates=8, minibatch_size=256),
        dump_size=4096,
    ))
# 17 iterations per epoch: the agent acts after one epoch. Every 8th acting iteration is
# re-evaluated for per-instance rewards (the change of each image's own loss after the step it
# took part in); the agent learns from every 2 such iterations.
custom_hooks = [
    dict(
        type='rlkd_mm.RLKDHook',
        reward='instance',
        reward_interval=8,
        update_interval=2,
        warmup_iters=17,
    ),
]
