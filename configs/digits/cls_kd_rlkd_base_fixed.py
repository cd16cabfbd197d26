# KD with RLKD on a base policy: fixed T (T = 0.5, KD weight 3, the tuned fixed-T baseline) gives
# every image its temperature, and an RL agent multiplies it per image by a in [0.5, 2] (log
# space; a = 1 exactly until it has learned, so the untrained agent is the base). The agent is
# rewarded counterfactually: for every image of a rewarded iteration, 4 multipliers of the
# current policy (the taken one among them) are scored by the first-order decrease of the task
# loss on a quiz split held out of the training set (10 %), each against the mean of the other
# three (a contextual bandit without look-ahead; docs/reward_modes.md). The student trains on
# the other 90 %, the same images as every row of the table with --quiz-fraction 0.1.
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
# The RLKD hook of configs/_base_/rlkd_hook.py with the counterfactual reward. 16 iterations per
# epoch: the agent acts after one epoch; every 2nd acting iteration is rewarded (4 multipliers
# per image), the agent learns from every 4 such iterations.
custom_hooks = [
    dict(
        _base_.custom_hooks[0],
        reward=dict(type='counterfactual', quiz_dataset=quiz_dataset, num_samples=4),
        reward_interval=2,
        update_interval=4,
        warmup_iters=16,
    )
]
