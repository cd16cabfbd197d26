# Decoupled KD (target / non-target terms) with one fixed temperature. As in DKD's own recipe
# the KD term is ramped in linearly over the first epochs (KDWarmupHook, outside the loss);
# beta was chosen on the validation split (README, "Choosing the settings").
_base_ = ['./cls_kd_fixed.py']

model = dict(
    kd_loss=dict(
        _delete_=True, type='rlkd_mm.InstanceDKDLoss', alpha=1.0, beta=8.0, loss_weight=1.0))
custom_hooks = [dict(type='rlkd_mm.KDWarmupHook', warmup=5)]
