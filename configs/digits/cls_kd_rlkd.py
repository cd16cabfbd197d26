# KD with RLKD: an RL agent picks each image's temperature in [1, 3] (mean 1.5 at start),
# rewarded per image by the first-order effect of its gradient on a probe batch from the training
# split (the `influence` reward, configs/digits/README.md). The range
# and initial temperature were chosen on the validation split among [1, 10] / 4, [1, 5] / 2 and
# [1, 3] / 1.5, seeds 0 and 1 (tools/benchmark/digits_cls_sweeps.sh, configs/digits/README.md).
_base_ = ['./cls_kd_fixed.py', '../_base_/rlkd_hook.py']

model = dict(
    kd_loss=dict(loss_weight=1.0),  # this policy's own weight, not fixed T's
    temperature=dict(
        _delete_=True,
        type='rlkd_mm.RLTemperature',
        t_min=1.0,
        t_max=3.0,
        t_init=1.5,
        warmup_temperature=1.5,
        hq_tau=0.5,
        agent=dict(lr=3e-4, gamma=0.9, explore_updates=8, minibatch_size=256),
        dump_size=4096,
    ))
# The RLKD hook of configs/_base_/rlkd_hook.py. 17 iterations per epoch: the agent acts after one
# epoch. Every 8th acting iteration is rewarded per image (its gradient's effect on the probe
# batch, measured after the step it took part in); the agent learns from every 2 such iterations.
custom_hooks = [dict(_base_.custom_hooks[0], warmup_iters=17)]
