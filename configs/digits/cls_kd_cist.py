# KD with CIST: per-image teacher and student temperatures that put each model's largest
# (centred) logit at rho times its temperature, and a per-image KD weight that grows with the
# teacher's confidence and the student's difficulty (rlkd_mm.CISTTemperature). rho = 1 was chosen
# on the validation split among 1, 2, 4 (tools/benchmark/digits_cls_sweeps.sh).
_base_ = ['./cls_kd_fixed.py']

model = dict(
    kd_loss=dict(loss_weight=1.0),  # this policy's own weight, not fixed T's
    temperature=dict(
        _delete_=True, type='rlkd_mm.CISTTemperature', rho=1.0, t_min=0.5, t_max=20.0))
