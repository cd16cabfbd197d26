# ImageNet-1k, ResNet-34 -> ResNet-18 with RLKD temperatures, on mmpretrain's own configs.
# Needs data/imagenet. The teacher is mmpretrain's released ResNet-34, downloaded once into torch
# hub's cache and loaded weights-only (a local path works as well).
_base_ = ['mmpretrain::resnet/resnet18_8xb32_in1k.py', '../_base_/rlkd_hook.py']
custom_imports = dict(imports=['rlkd_mm'], allow_failed_imports=False)
default_scope = 'mmpretrain'

model = dict(
    _delete_=True,
    type='rlkd_mm.ClassifierDistiller',
    student='mmpretrain::resnet/resnet18_8xb32_in1k.py',
    teacher='mmpretrain::resnet/resnet34_8xb32_in1k.py',
    teacher_ckpt='https://download.openmmlab.com/mmclassification/v0/resnet/'
    'resnet34_8xb32_in1k_20210831-f257d4e6.pth',
    temperature=dict(
        type='rlkd_mm.RLTemperature', t_min=1.0, t_max=10.0, t_init=4.0, warmup_temperature=4.0),
    kd_loss=dict(type='rlkd_mm.InstanceKDLoss', loss_weight=1.0))
optim_wrapper = dict(constructor='rlkd_mm.DistillerOptimWrapperConstructor')
# The RLKD hook of configs/_base_/rlkd_hook.py. 5005 iterations per epoch at batch 256 (8 x 32):
# agent acts after 1000 iterations
custom_hooks = [dict(_base_.custom_hooks[0], warmup_iters=1000)]
