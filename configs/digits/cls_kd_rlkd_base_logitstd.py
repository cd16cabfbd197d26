# KD with RLKD on the best peer as its base: logit standardisation as its authors train it
# (tau = 1, KD weight 9, the setting chosen on val for cls_kd_logitstd.py) gives every image its
# student and teacher temperatures tau * std(z) and the prefactor tau^2; the agent multiplies both
# temperatures per image by a in [0.5, 2] (the prefactor by a^2), rewarded as in
# cls_kd_rlkd_base_fixed.py.
_base_ = ['./cls_kd_rlkd_base_fixed.py']

model = dict(
    kd_loss=dict(loss_weight=9.0),
    temperature=dict(
        base=dict(_delete_=True, type='rlkd_mm.LogitStdTemperature', base_temperature=1.0)
    ),
)
