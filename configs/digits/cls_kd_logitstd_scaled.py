# KD with our scaled logit standardisation (rlkd_mm.ScaledLogitStdTemperature): the temperatures
# of logit standardisation, T = tau * std(z) per image and per model, but each image's KL scaled
# by T_s * T_t = tau^2 * std(z_s) * std(z_t) instead of the authors' tau^2. That is logit
# standardisation plus a per-image KD weight std(z_s) * std(z_t) plus a push on the scale of the
# student's logits (the gradient through std(z_s) in that weight). This is what
# configs/digits/cls_kd_logitstd.py trained before the authors' objective replaced it, with the
# same settings: tau = 1 (chosen on the validation split among 1, 2, 4,
# tools/benchmark/digits_cls_sweeps.sh) and KD weight 1.
_base_ = ['./cls_kd_fixed.py']

model = dict(
    kd_loss=dict(loss_weight=1.0),  # this policy's own weight, not fixed T's
    temperature=dict(_delete_=True, type='rlkd_mm.ScaledLogitStdTemperature', base_temperature=1.0)
)
