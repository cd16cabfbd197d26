# The fixed-temperature KD baseline for kd-rlkd_resnet34_resnet18_8xb32_in1k.py.
_base_ = ['./kd-rlkd_resnet34_resnet18_8xb32_in1k.py']

model = dict(temperature=dict(_delete_=True, type='rlkd_mm.FixedTemperature', temperature=4.0))
custom_hooks = []
