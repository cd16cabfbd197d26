# The fixed-temperature KD baseline for resnet50_resnet18-half_kd_rlkd_cifar100.py.
_base_ = ['./resnet50_resnet18-half_kd_rlkd_cifar100.py']

model = dict(temperature=dict(_delete_=True, type='rlkd_mm.FixedTemperature', temperature=4.0))
custom_hooks = []
