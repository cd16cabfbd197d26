# CIFAR-100, a wide-to-thin pair of mmpretrain's CIFAR ResNets in the spirit of the papers'
# ResNet32x4 -> ResNet8x4: ResNet-50 (CIFAR stem) teacher, ResNet-18 at half width student.
# Needs data/cifar100 (mmpretrain's CIFAR100 layout). The teacher is mmpretrain's released
# resnet50_8xb16_cifar100 (same architecture and normalisation), downloaded once into torch
# hub's cache and loaded weights-only (a local path works as well).
_base_ = ['mmpretrain::resnet/resnet50_8xb16_cifar100.py', '../_base_/rlkd_hook.py']
custom_imports = dict(imports=['rlkd_mm'], allow_failed_imports=False)
default_scope = 'mmpretrain'

# mmpretrain's CIFAR-100 normalisation; student and teacher (trained with it) share it
preprocessor = dict(
    type='ClsDataPreprocessor',
    num_classes=100,
    mean=[129.304, 124.070, 112.434],
    std=[68.170, 65.392, 70.418],
    to_rgb=False)
teacher = dict(
    type='ImageClassifier',
    data_preprocessor=preprocessor,
    backbone=dict(type='ResNet_CIFAR', depth=50, num_stages=4, out_indices=(3, ), style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=2048,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
student = dict(
    type='ImageClassifier',
    data_preprocessor=preprocessor,
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        stem_channels=32,
        base_channels=32,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=256,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))

model = dict(
    _delete_=True,
    type='rlkd_mm.ClassifierDistiller',
    student=student,
    teacher=teacher,
    teacher_ckpt='https://download.openmmlab.com/mmclassification/v0/resnet/'
    'resnet50_b16x8_cifar100_20210528-67b58a1b.pth',
    temperature=dict(
        type='rlkd_mm.RLTemperature', t_min=1.0, t_max=10.0, t_init=4.0, warmup_temperature=4.0),
    kd_loss=dict(type='rlkd_mm.InstanceKDLoss', loss_weight=1.0),
    data_preprocessor=preprocessor)
optim_wrapper = dict(constructor='rlkd_mm.DistillerOptimWrapperConstructor')
# The RLKD hook of configs/_base_/rlkd_hook.py. 391 iterations per epoch at batch 128 (8 x 16):
# agent acts after one epoch
custom_hooks = [dict(_base_.custom_hooks[0], warmup_iters=391)]
