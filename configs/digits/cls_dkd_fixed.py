# Decoupled KD (target / non-target terms) with one fixed temperature.
_base_ = ['./cls_kd_fixed.py']

model = dict(
    kd_loss=dict(
        _delete_=True, type='rlkd_mm.InstanceDKDLoss', alpha=1.0, beta=8.0, loss_weight=1.0))
