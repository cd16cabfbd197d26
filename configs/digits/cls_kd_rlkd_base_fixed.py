# KD with RLKD on a base policy: fixed T (T = 0.5, KD weight 3, the tuned fixed-T baseline) gives
# every image its temperature, and an RL agent multiplies it per image by a in [0.5, 2] (log
# space; a = 1 exactly until it has learned, so the untrained agent is the base). Rewarded by the
# hook of configs/_base_/rlkd_hook.py ('influence', the mode chosen on val among influence,
# instance and counterfactual: configs/digits/README.md). The student trains on 90 % of the
# training images: the other 10 % are the quiz split that the counterfactual reward
# (cls_kd_rlkd_base_fixed_counterfactual.py) scores on, held out here too, so that every row of
# the table (run with --quiz-fraction 0.1) trains on the same images.
_base_ = ['./cls_kd_fixed.py', '../_base_/rlkd_hook.py']

quiz = dict(fraction=0.1, seed=0)
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='rlkd_mm.QuizSplitDataset',
        part='train',
        **quiz,
        dataset=dict(
            type='rlkd_mm.ClutteredDigitsDataset',
            split='train',
            img_size=32,
            copies=1,
            pipeline={{_base_.train_pipeline}},
        ),
    )
)
quiz_dataset = dict(
    type='rlkd_mm.QuizSplitDataset',
    part='quiz',
    **quiz,
    dataset=dict(
        type='rlkd_mm.ClutteredDigitsDataset',
        split='train',
        img_size=32,
        copies=1,
        pipeline={{_base_.test_pipeline}},
    ),
)

model = dict(
    temperature=dict(
        _delete_=True,
        type='rlkd_mm.RLTemperature',
        base=dict(type='rlkd_mm.FixedTemperature', temperature=0.5),
        a_min=0.5,
        a_max=2.0,
        hq_tau=0.5,
        agent=dict(lr=3e-4, explore_updates=8, minibatch_size=256),
        dump_size=4096,
    )
)
# 16 iterations per epoch: the agent acts after one epoch.
custom_hooks = [dict(_base_.custom_hooks[0], warmup_iters=16)]
