# The noisy-label testbed, control: the one-knob state rule T_i = T0 * f_i^k clamped to
# [t_min, t_max], f_i the teacher's probability of the image's (possibly wrong) label, KD weight
# 12 as cls_kd_fixed_noisy_labels.py. With T0 = 0.25, k = -2 and the clamp [0.25, 0.5], an image
# whose label the teacher is sure of (f -> 1) gets T = 0.25 (a sharper target and, through the
# T^2 prefactor, a quarter of the KD strength of T = 0.5), rising to fixed T's 0.5 where
# f <= 0.71, which includes nearly every image whose label the teacher contradicts. Chosen on
# the validation split, seeds 0 and 1 (configs/digits/README.md#the-noisy-label-testbed).
_base_ = ['./cls_kd_rule.py']

train_dataloader = dict(dataset=dict(label_noise=0.3, noise_seed=0))
model = dict(
    temperature=dict(temperature=0.25, power=-2.0, t_min=0.25, t_max=0.5),
    kd_loss=dict(loss_weight=12.0),
)
