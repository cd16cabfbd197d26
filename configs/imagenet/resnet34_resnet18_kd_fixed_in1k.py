# The fixed-temperature KD baseline for resnet34_resnet18_kd_rlkd_in1k.py.
_base_ = ['./resnet34_resnet18_kd_rlkd_in1k.py']

model = dict(temperature=dict(_delete_=True, type='rlkd_mm.FixedTemperature', temperature=4.0))
custom_hooks = []
