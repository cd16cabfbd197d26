# Decoupled KD with RLKD temperatures (the same agent, T inside both DKD terms), with the KD
# term ramped in over the first epochs and beta as in cls_dkd_fixed.py.
_base_ = ['./cls_kd_rlkd.py']

model = dict(
    kd_loss=dict(
        _delete_=True, type='rlkd_mm.InstanceDKDLoss', alpha=1.0, beta=2.0, loss_weight=1.0))
# cls_kd_rlkd.py's RLKD hook, then the KD ramp (a list is replaced, not merged, by inheritance)
custom_hooks = [*_base_.custom_hooks, dict(type='rlkd_mm.KDWarmupHook', warmup=5)]
