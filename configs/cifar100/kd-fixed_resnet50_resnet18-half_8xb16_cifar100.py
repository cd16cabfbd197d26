# The fixed-temperature KD baseline for kd-rlkd_resnet50_resnet18-half_8xb16_cifar100.py.
_base_ = ['./kd-rlkd_resnet50_resnet18-half_8xb16_cifar100.py']

model = dict(temperature=dict(_delete_=True, type='rlkd_mm.FixedTemperature', temperature=4.0))
custom_hooks = []
