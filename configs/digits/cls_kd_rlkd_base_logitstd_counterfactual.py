# RLKD on logit standardisation (cls_kd_rlkd_base_logitstd.py) with the counterfactual reward and
# mean-multiplier training of cls_kd_rlkd_base_fixed_counterfactual.py.
_base_ = ['./cls_kd_rlkd_base_logitstd.py']

model = dict(temperature=dict(deterministic=True))
custom_hooks = [
    dict(
        _base_.custom_hooks[0],
        reward=dict(type='counterfactual', quiz_dataset={{_base_.quiz_dataset}}, num_samples=4),
        reward_interval=2,
        update_interval=4,
    )
]
