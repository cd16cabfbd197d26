# Decoupled KD with RLKD temperatures (the same agent, T inside both DKD terms).
_base_ = ['./cls_kd_rlkd.py']

model = dict(
    kd_loss=dict(
        _delete_=True, type='rlkd_mm.InstanceDKDLoss', alpha=1.0, beta=8.0, loss_weight=1.0))
