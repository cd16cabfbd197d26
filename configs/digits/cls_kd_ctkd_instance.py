# KD with CTKD's instance-wise temperature: an MLP on the logits gives each image its T.
# The range [1, 5] was chosen on the validation split among t_max = 5, 10, 21 (global mode;
# tools/benchmark/digits_cls_sweeps.sh); the instance mode uses the same range.
_base_ = ['./cls_kd_fixed.py']

model = dict(
    kd_loss=dict(loss_weight=1.0),  # this policy's own weight, not fixed T's
    temperature=dict(
        _delete_=True,
        type='rlkd_mm.CTKDTemperature',
        mode='instance',
        num_classes=10,
        t_min=1.0,
        t_max=5.0,
        t_init=4.0,
        ramp_iters=85,
    ))
