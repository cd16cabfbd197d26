# Decoupled KD (target / non-target terms) with one fixed temperature. As in DKD's own recipe
# the KD term is ramped in linearly over the first epochs (KDWarmupHook, outside the loss);
# beta = 2 was chosen on the validation split among 1, 2, 8 (DKD's CIFAR value), T = 4 as in DKD's
# recipe (tools/benchmark/digits_cls_sweeps.sh).
_base_ = ['./cls_kd_fixed.py']

model = dict(
    temperature=dict(type='rlkd_mm.FixedTemperature', temperature=4.0),
    kd_loss=dict(
        _delete_=True, type='rlkd_mm.InstanceDKDLoss', alpha=1.0, beta=2.0, loss_weight=1.0))
custom_hooks = [dict(type='rlkd_mm.KDWarmupHook', warmup=5)]
