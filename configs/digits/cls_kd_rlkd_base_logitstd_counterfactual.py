# RLKD on logit standardisation (cls_kd_rlkd_base_logitstd.py: tau = 1, KD weight 9) with the
# counterfactual reward and mean-multiplier training of cls_kd_rlkd_base_fixed_counterfactual.py.
_base_ = ['./cls_kd_rlkd_base_fixed_counterfactual.py']

model = dict(
    kd_loss=dict(loss_weight=9.0),
    temperature=dict(
        base=dict(_delete_=True, type='rlkd_mm.LogitStdTemperature', base_temperature=1.0)
    ),
)
