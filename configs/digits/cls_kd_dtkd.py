# KD with DTKD's dynamic temperatures: T_s, T_t from the two models' maximum logits.
_base_ = ['./cls_kd_fixed.py']

model = dict(
    temperature=dict(_delete_=True, type='rlkd_mm.DTKDTemperature', base_temperature=4.0))
