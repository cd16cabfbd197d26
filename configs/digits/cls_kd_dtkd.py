# KD with DTKD's dynamic temperatures: T_s, T_t from the two models' maximum logits. tau = 2 was
# chosen on the validation split among 1, 2, 4 (tools/benchmark/digits_cls_sweeps.sh).
_base_ = ['./cls_kd_fixed.py']

model = dict(
    temperature=dict(_delete_=True, type='rlkd_mm.DTKDTemperature', base_temperature=2.0))
