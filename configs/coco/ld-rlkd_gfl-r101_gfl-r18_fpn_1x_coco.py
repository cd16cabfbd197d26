# RLKD on localization distillation (LD): GFL ResNet-101 (mmdet model zoo, 44.7 AP) -> GFL
# ResNet-18, COCO 1x. mmdet's LD with a fixed T = 10 gives 36.5 AP (student alone 35.8).
# The agent picks one temperature per positive prior, shared by its 4 box-side distributions.
# The teacher's weights are mmdet's released checkpoint, downloaded once into torch hub's cache
# and loaded weights-only (a local path works as well).
_base_ = ['./gfl_r18_fpn_1x_coco.py', '../_base_/rlkd_hook.py']

reg_max = 16
model = dict(
    _delete_=True,
    type='rlkd_mm.SingleStageDetDistiller',
    student='{{fileDirname}}/gfl_r18_fpn_1x_coco.py',
    teacher='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py',
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/gfl/'
    'gfl_r101_fpn_mstrain_2x_coco/gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth',
    # range around mmdet's LD temperature (10); the warm-up uses exactly that T
    temperature=dict(
        type='rlkd_mm.RLTemperature',
        t_min=1.0,
        t_max=20.0,
        t_init=10.0,
        warmup_temperature=10.0,
        score_type='sigmoid',
    ),
    # LD alone, as mmdet's LD: no dense classification KD
    kd_loss=None,
    # mmdet's LD loss_weight 0.25 averages the KL over the R + 1 bins; InstanceLDLoss sums them
    ld_loss=dict(type='rlkd_mm.InstanceLDLoss', loss_weight=0.25 / (reg_max + 1)),
)

optim_wrapper = dict(constructor='rlkd_mm.DistillerOptimWrapperConstructor')

# The RLKD hook of configs/_base_/rlkd_hook.py. 7330 iterations per epoch at 16 images per
# batch: the agent acts after 1000 iterations
custom_hooks = [dict(_base_.custom_hooks[0], warmup_iters=1000)]
