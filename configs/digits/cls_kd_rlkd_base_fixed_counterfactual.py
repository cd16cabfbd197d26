# RLKD on fixed T (cls_kd_rlkd_base_fixed.py) rewarded counterfactually: for every image of a
# rewarded iteration, 4 multipliers of the current policy (the taken one among them) are scored
# by the first-order decrease of the task loss on the quiz split held out of the training set,
# each against the mean of the other three (a contextual bandit without look-ahead;
# docs/reward_modes.md). The sampled multipliers explore, so the images train with the policy's
# mean multiplier (deterministic=True, chosen on val over sampled multipliers:
# configs/digits/README.md). Every 2nd acting iteration is rewarded; the agent learns from every
# 4 such iterations.
_base_ = ['./cls_kd_rlkd_base_fixed.py']

model = dict(temperature=dict(deterministic=True))
custom_hooks = [
    dict(
        _base_.custom_hooks[0],
        reward=dict(type='counterfactual', quiz_dataset={{_base_.quiz_dataset}}, num_samples=4),
        reward_interval=2,
        update_interval=4,
    )
]
