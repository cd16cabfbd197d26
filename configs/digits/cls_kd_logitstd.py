# KD with logit standardisation: per-image, per-model T = tau * std(logits).
_base_ = ['./cls_kd_fixed.py']

model = dict(
    temperature=dict(_delete_=True, type='rlkd_mm.LogitStdTemperature', base_temperature=2.0))
