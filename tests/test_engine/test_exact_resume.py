"""Exact resume: a run resumed from any of its epoch checkpoints ends bit for bit as the straight
run (student, optimizer, agent, hook and reward state), for the shipped digits RLKD configs and
with checkpoints placed inside the warm-up, at its last iteration, while the agent acts, between a
rewarded iteration and its update, and in the middle of a gradient accumulation; every reward
mode; and two gloo processes."""

import os
import os.path as osp
import subprocess

import pytest
import torch
from gloo_helpers import free_port
from mmengine.runner import Runner

from rlkd_mm.testing import small_config, use_digits_det
from tools.train import make_crash_safe

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
EPOCHS = 3


def _assert_equal(a, b, path='checkpoint'):
    """Deep bitwise equality of two saved states, naming the first difference."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.shape == b.shape, path
        assert torch.equal(a, b) or (
            a.is_floating_point()
            and torch.equal(a.isnan(), b.isnan())
            and torch.equal(a.nan_to_num(), b.nan_to_num())
        ), f'{path} differs (max abs diff {float((a.double() - b.double()).abs().max()):.3g})'
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f'{path}: keys {sorted(a)} vs {sorted(b)}'
        for key in a:
            _assert_equal(a[key], b[key], f'{path}.{key}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f'{path}: length {len(a)} vs {len(b)}'
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_equal(x, y, f'{path}[{i}]')
    elif isinstance(a, float) and a != a:
        assert b != b, path
    else:
        assert a == b, f'{path}: {a!r} vs {b!r}'


def _final(work):
    ckpt = torch.load(osp.join(work, f'epoch_{EPOCHS}.pth'), weights_only=False)
    keys = ('state_dict', 'optimizer', 'param_schedulers', 'rlkd_agent', 'headroom_quiz')
    return {key: ckpt[key] for key in keys if key in ckpt}


def _train(cfg, work, resume_from=None):
    cfg = cfg.copy()
    cfg.work_dir = work
    cfg.experiment_name = osp.basename(work)
    if resume_from is not None:
        cfg.resume, cfg.load_from = True, resume_from
    make_crash_safe(cfg)
    Runner.from_cfg(cfg).train()


def _check_resume_at_every_epoch(cfg, tmp_path):
    straight = str(tmp_path / 'straight')
    _train(cfg, straight)
    expected = _final(straight)
    if 'rlkd_agent' in expected:
        # the agent learnt: its state matters for the comparison
        assert expected['rlkd_agent']['agent']['update_count'] > 0
    for epoch in range(1, EPOCHS):
        work = str(tmp_path / f'resumed_{epoch}')
        _train(cfg, work, resume_from=osp.join(straight, f'epoch_{epoch}.pth'))
        _assert_equal(_final(work), expected, f'resumed at epoch {epoch}')


def _small_cls(path, train=None):
    """A shipped digits classification config (on its first ``train`` images) with batch 8,
    EPOCHS epochs, no validation (it does not touch the state), a random teacher and every
    epoch checkpoint kept."""
    cfg = small_config(
        osp.join(ROOT, path),
        train=train,
        batch_size=8,
        max_epochs=EPOCHS,
        val_interval=EPOCHS + 1,
        in_process=False,
    )
    cfg.model.teacher_ckpt = None
    cfg.default_hooks.checkpoint.max_keep_ckpts = -1
    return cfg


def _cls_config(tmp_path, **hook):
    """digits cls_kd_rlkd.py (random teacher) on 64 images: 8 iterations per epoch."""
    cfg = _small_cls('configs/digits/cls_kd_rlkd.py', train=64)
    cfg.model.temperature.agent.explore_updates = 2
    cfg.model.temperature.agent.minibatch_size = 16
    for key, value in hook.items():
        cfg.custom_hooks[0][key] = value
    return cfg


CLS_CASES = dict(
    # the shipped hook settings, warm-up one epoch as shipped (17 iterations there)
    shipped=dict(warmup_iters=8),
    # epoch 1 inside the warm-up, epoch 2 while acting with a held iteration
    instance_inside_warmup=dict(
        reward='instance', warmup_iters=12, reward_interval=1, update_interval=2
    ),
    # epoch 1 at the warm-up's last iteration (its statistics not merged yet); the probe batch
    # of the influence reward in flight at epoch 2
    influence_at_warmup_end=dict(
        reward='influence', warmup_iters=8, reward_interval=2, update_interval=3
    ),
    batch=dict(reward='batch', warmup_iters=4, update_interval=3),
)


@pytest.mark.slow
@pytest.mark.parametrize('case', list(CLS_CASES))
def test_cls_resume_is_exact(tmp_path, case):
    _check_resume_at_every_epoch(_cls_config(tmp_path, **CLS_CASES[case]), tmp_path)


@pytest.mark.slow
def test_cls_resume_is_exact_mid_accumulation(tmp_path):
    # 8 iterations per epoch, a step every 3: both checkpoints fall mid-accumulation
    cfg = _cls_config(tmp_path, reward='instance', warmup_iters=4, reward_interval=1)
    cfg.optim_wrapper.accumulative_counts = 3
    _check_resume_at_every_epoch(cfg, tmp_path)
    ckpt = torch.load(str(tmp_path / 'straight' / 'epoch_1.pth'), weights_only=False)
    (grads,) = ckpt['accumulated_grads']
    assert grads and all(name.startswith('student.') for name in grads)


DET_CONFIGS = ['configs/digits/gfl_ld_rlkd.py', 'configs/digits/frcnn_kd_rlkd.py']


@pytest.fixture(scope='module')
def digits_det_root(tmp_path_factory):
    from rlkd_mm.datasets.digits_det import make_digits_det

    root = str(tmp_path_factory.mktemp('digits_det')) + '/'
    make_digits_det(root, num_train=8, num_val=4, num_test=4)
    return root


def _det_config(path, data_root):
    """A shipped DigitsDet RLKD config, its dataloader settings kept, on 8 training images:
    4 iterations per epoch."""
    cfg = small_config(
        osp.join(ROOT, path),
        batch_size=2,
        max_epochs=EPOCHS,
        val_interval=EPOCHS + 1,
        in_process=False,
    )
    use_digits_det(cfg, data_root)
    cfg.model.teacher_ckpt = None
    cfg.default_hooks.checkpoint.max_keep_ckpts = -1
    # epoch 1 inside the warm-up (200 iterations as shipped), epoch 2 while acting
    cfg.custom_hooks[0].update(warmup_iters=6, reward_interval=1, update_interval=2)
    cfg.model.temperature.setdefault('agent', {}).update(minibatch_size=16)
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize(
    'path', ['configs/digits/gfl_ld_rlkd.py', 'configs/digits/frcnn_kd_rlkd.py']
)
def test_det_resume_is_exact(tmp_path, digits_det_root, path):
    _check_resume_at_every_epoch(_det_config(path, digits_det_root), tmp_path)


def _check_two_process_resume(cfg, tmp_path):
    """A 2-process gloo run resumed at epoch 1 ends bitwise as the straight 2-process run."""
    path = str(tmp_path / 'cfg.py')
    cfg.dump(path)

    def dist_train(work, *extra):
        env = dict(os.environ, PORT=str(free_port()), OMP_NUM_THREADS='1')
        proc = subprocess.run(
            ['bash', 'tools/dist_train.sh', path, '2', '--work-dir', work, *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
            env=env,
        )
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]

    straight = str(tmp_path / 'straight')
    dist_train(straight)
    ranks = torch.load(osp.join(straight, 'epoch_1.pth'), weights_only=False)['rlkd_agent']['ranks']
    assert len(ranks) == 2  # each rank's own experience and noise stream is in the checkpoint
    resumed = str(tmp_path / 'resumed')
    dist_train(resumed, '--resume', osp.join(straight, 'epoch_1.pth'))
    _assert_equal(_final(resumed), _final(straight))
    return ranks


@pytest.mark.slow
def test_two_process_resume_is_exact(tmp_path):
    cfg = _cls_config(tmp_path, reward='influence', warmup_iters=4, reward_interval=1)
    cfg.train_dataloader.dataset.indices = 128  # 8 iterations per epoch on each of 2 ranks
    _check_two_process_resume(cfg, tmp_path)


@pytest.mark.slow
def test_random_temperature_and_headroom_oracle_resume_exactly(tmp_path):
    """The controls' own state: the random policy's generator, and the oracle's quiz gradient
    (refreshed every 3 iterations, so each epoch checkpoint falls between two refreshes)."""
    from mmengine.config import Config

    from tools.analysis.temperature_headroom import headroom_configs, parse_args

    random_cfg = _small_cls('configs/digits/cls_kd_random.py', train=64)
    _check_resume_at_every_epoch(random_cfg, tmp_path / 'random')

    config = osp.join(ROOT, 'configs/digits/cls_kd_fixed.py')
    args = parse_args([config, '--quiz-batch-size', '8', '--refresh-interval', '3'])
    base = Config.fromfile(config)
    base.merge_from_dict(
        dict(model=dict(teacher_ckpt=None), train_dataloader=dict(dataset=dict(indices=72)))
    )
    oracle_cfg = headroom_configs(base, args)['oracle']
    oracle_cfg.train_dataloader.batch_size = 8  # 64 training images: 8 iterations per epoch
    oracle_cfg.train_cfg.update(max_epochs=EPOCHS, val_interval=EPOCHS + 1)
    oracle_cfg.default_hooks.checkpoint.max_keep_ckpts = -1
    _check_resume_at_every_epoch(oracle_cfg, tmp_path / 'oracle')
    # the resumed run scores with the quiz gradient of the checkpoint, not a fresh one
    ckpt = osp.join(tmp_path, 'oracle', 'straight', 'epoch_1.pth')
    saved = torch.load(ckpt, weights_only=False)['headroom_quiz']
    cfg = oracle_cfg.copy()
    cfg.work_dir, cfg.experiment_name = str(tmp_path / 'reload'), 'reload'
    cfg.resume, cfg.load_from = True, ckpt
    runner = Runner.from_cfg(cfg)
    runner.load_or_resume()
    hook = next(h for h in runner.hooks if type(h).__name__ == 'HeadroomHook')
    hook.before_train(runner)
    _assert_equal(list(runner.model.temperature.quiz), list(saved), 'restored quiz')


def _counterfactual_config(**agent):
    """digits cls_kd_rlkd_base_fixed_counterfactual.py (RLKD on fixed T, counterfactual reward,
    mean multipliers; random teacher) on 72 images: 65 to train on (9 iterations per epoch), 7
    in the quiz split."""
    cfg = _small_cls('configs/digits/cls_kd_rlkd_base_fixed_counterfactual.py')
    hook = cfg.custom_hooks[0]
    for dataset in (cfg.train_dataloader.dataset, hook.reward.quiz_dataset):
        dataset.dataset.indices = 72
    hook.update(warmup_iters=4, reward_interval=1, update_interval=2)
    hook.reward.update(refresh_interval=3, quiz_batch_size=4)
    cfg.model.temperature.agent.update(explore_updates=2, minibatch_size=16, **agent)
    return cfg


@pytest.mark.slow
def test_counterfactual_reward_on_a_base_resumes_exactly(tmp_path):
    # checkpoints between two quiz gradients (every 3 iterations) and with a held iteration
    _check_resume_at_every_epoch(_counterfactual_config(), tmp_path)
    ckpt = torch.load(str(tmp_path / 'straight' / f'epoch_{EPOCHS}.pth'), weights_only=False)
    state = ckpt['rlkd_agent']
    assert state['reward_state']['num_refreshes'] > 2
    # 4 multipliers per image are stored: the held iteration (the last one, whose batch holds
    # 65 - 8 x 8 = 1 image) has 4 rows
    assert state['held']['step']['actions'].numel() == 4 * 1


@pytest.mark.slow
def test_untrained_agent_on_a_base_trains_exactly_as_the_base(tmp_path):
    """Agent learning rate 0, deterministic actions: every multiplier is 1 and the whole run
    (counterfactual rewards, quiz gradients and agent updates included) equals fixed T's."""
    rlkd = _counterfactual_config(lr=0.0)
    rlkd.model.temperature.deterministic = True
    fixed = _small_cls('configs/digits/cls_kd_fixed.py')
    fixed.train_dataloader.dataset = rlkd.train_dataloader.dataset.copy()
    assert fixed.model.temperature == rlkd.model.temperature.base
    _train(rlkd, str(tmp_path / 'rlkd'))
    _train(fixed, str(tmp_path / 'fixed'))
    got, want = _final(str(tmp_path / 'rlkd')), _final(str(tmp_path / 'fixed'))
    assert got['rlkd_agent']['agent']['update_count'] > 2  # the agent ran, and learnt nothing
    _assert_equal(got['state_dict'], want['state_dict'], 'student')
    _assert_equal(got['optimizer'], want['optimizer'], 'optimizer')


@pytest.mark.slow
def test_two_process_counterfactual_run_resumes_exactly(tmp_path):
    """Under DDP the quiz gradient is averaged over the ranks (a collective in every rank's
    before_iter) and each rank scores its own images."""
    cfg = _counterfactual_config()
    for dataset in (cfg.train_dataloader.dataset, cfg.custom_hooks[0].reward.quiz_dataset):
        dataset.dataset.indices = 144  # 130 to train on: 9 iterations per epoch on each rank
    ranks = _check_two_process_resume(cfg, tmp_path)
    directions = [r['reward_state']['direction'][0] for r in ranks]
    assert torch.equal(directions[0], directions[1])  # one all-reduced quiz gradient


@pytest.mark.slow
def test_det_rlkd_on_a_base_resumes_exactly(tmp_path, digits_det_root):
    """RLKD on a base policy through a dense-head distiller (sigmoid scores), influence reward."""
    cfg = _det_config('configs/digits/gfl_ld_rlkd.py', digits_det_root)
    cfg.model.temperature = dict(
        type='rlkd_mm.RLTemperature',
        base=dict(type='rlkd_mm.FixedTemperature', temperature=2.0),
        score_type='sigmoid',
        agent=dict(minibatch_size=16, explore_updates=1),
    )
    _check_resume_at_every_epoch(cfg, tmp_path)
    state = torch.load(str(tmp_path / 'straight' / f'epoch_{EPOCHS}.pth'), weights_only=False)
    assert state['rlkd_agent']['agent']['config']['squash'] == 'log'
