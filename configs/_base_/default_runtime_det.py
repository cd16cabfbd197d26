# Runtime of the mmdet (detection) configs of rlkd_mm.
default_scope = 'mmdet'
custom_imports = dict(imports=['rlkd_mm'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Teachers are loaded from the last checkpoint; older ones only take disk space. Written
    # atomically (temporary file, then rename): a crash while saving never truncates one.
    checkpoint=dict(
        type='CheckpointHook',
        interval=1,
        max_keep_ckpts=1,
        save_last=True,
        backend_args=dict(backend='rlkd_atomic_local'),
    ),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # random streams saved with each checkpoint, so a resumed run draws what an uninterrupted
    # one would (augmentation included)
    random_state=dict(type='rlkd_mm.RandomStateHook'),
    # gradients summed since the last optimizer step (accumulative_counts > 1), saved with a
    # checkpoint that falls mid-accumulation
    accumulated_grad=dict(type='rlkd_mm.AccumulatedGradHook'),
    visualization=dict(type='DetVisualizationHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
