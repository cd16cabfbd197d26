"""RLKDHook: reward timing, warm-up, update cadence, checkpoints, a real Runner."""

import io
import os.path as osp
import uuid

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from rlkd_mm.agent import instance_state
from rlkd_mm.engine import RLKDHook
from rlkd_mm.models.distillers import RewardCacheMixin
from rlkd_mm.registry import HOOKS
from rlkd_mm.temperature import RLTemperature
from rlkd_mm.testing import FakeRunner, drive_hook

IN_DIM, NUM_CLASSES, BATCH = 6, 4, 8


class ToyDistiller(RewardCacheMixin, nn.Module):
    """Student/teacher logits through an RLTemperature; keeps a scripted task loss."""

    def __init__(self, losses, **policy_kwargs):
        super().__init__()
        self.student = nn.Linear(IN_DIM, NUM_CLASSES)
        self.teacher = nn.Linear(IN_DIM, NUM_CLASSES).requires_grad_(False)
        self.temperature = RLTemperature(**policy_kwargs)
        self.losses = losses

    def forward(self, it, batch=BATCH, record=True):
        gen = torch.Generator().manual_seed(1000 + it)
        x = torch.randn(batch, IN_DIM, generator=gen)
        y = torch.randint(0, NUM_CLASSES, (batch,), generator=gen)
        t, _ = self.temperature(self.student(x).detach(), self.teacher(x) * 3, y).temperatures
        if record:
            self.keep_task_loss(dict(loss_task=torch.tensor(self.losses[it])))
        return t


def _run(hook, runner, start, stop, before_train=True, **fwd):
    """Drive the hook like the train loop; returns {iteration: temperatures}."""
    step = lambda i: runner.model(i, **fwd)  # noqa: E731
    return drive_hook(hook, runner, range(start, stop), step, before_train=before_train)


LOSSES = [5.0, 4.0, 3.5, 3.2, 3.0, 2.5, 2.6, 2.0, 1.9, 1.7, 1.8, 1.5, 1.4, 1.2]


@pytest.mark.parametrize('ema', [0.0, 0.6])
def test_reward_measures_student_after_the_update(ema):
    model = ToyDistiller(LOSSES, agent=dict(buffer_size=64))
    runner = FakeRunner(model, max_iters=8)
    hook = RLKDHook(reward='batch', update_interval=50, warmup_iters=1, reward_ema=ema)
    steps = {}
    orig_act = model.temperature.agent.act

    def spy(*args, **kwargs):
        out = orig_act(*args, **kwargs)
        steps[runner.iter] = out[1]
        return out

    model.temperature.agent.act = spy
    _run(hook, runner, 0, 8)
    stored = model.temperature.agent.buffer.transitions()
    # Iteration 0 is warm-up; actions of iterations 1..6 are rewarded (7 waits for iter 8).
    assert sorted(steps) == list(range(1, 8)) and len(stored) == 6
    ema_value, expected = None, {}
    for i, loss in enumerate(LOSSES[:8]):
        if i >= 2:
            # Actions of k = i - 1, judged by the task loss of iteration i, computed on the
            # student after update k, against the EMA of the losses up to iteration k.
            expected[i - 1] = ema_value - loss
        ema_value = loss if ema_value is None else ema * ema_value + (1 - ema) * loss
    for k, transition in zip(range(1, 7), stored):
        assert transition.batch_reward == pytest.approx(expected[k], abs=1e-6)
        assert transition.step is steps[k] or torch.equal(transition.step.actions, steps[k].actions)
        agent = model.temperature.agent
        torch.testing.assert_close(
            transition.next_states, agent.norm.normalize(steps[k + 1].raw_states)
        )
    if ema == 0.0:
        assert [t.batch_reward for t in stored] == pytest.approx(
            [LOSSES[k] - LOSSES[k + 1] for k in range(1, 7)]
        )
    rewards = runner.message_hub.get_scalar('train/rlkd_reward').data[0]
    assert len(rewards) == 6


def test_warmup_is_honoured():
    model = ToyDistiller(LOSSES, warmup_temperature=3.0)
    runner = FakeRunner(model, max_iters=10)
    hook = RLKDHook(reward='batch', update_interval=2, warmup_iters=4)
    temps = _run(hook, runner, 0, 5)
    for i in range(4):
        assert torch.equal(temps[i], torch.full((BATCH,), 3.0))
    assert not torch.equal(temps[4], torch.full((BATCH,), 3.0))
    agent = model.temperature.agent
    assert len(agent.buffer) == 0 and agent.update_count == 0
    assert hook._held is not None  # iteration 4 acted, waiting for its reward


def test_update_cadence():
    model = ToyDistiller(LOSSES)
    runner = FakeRunner(model, max_iters=14)
    hook = RLKDHook(reward='batch', update_interval=3, warmup_iters=2)
    hook.before_train(runner)
    counts = []
    for i in range(14):
        _run(hook, runner, i, i + 1, before_train=False)
        counts.append(model.temperature.agent.update_count)
    # Transitions are stored from iteration W + 1 = 3 on; updates after the 3rd, 6th, 9th.
    # The step acted just before an update (5, 9) is the old policy's and is never stored.
    updated_at = [i for i in range(1, 14) if counts[i] > counts[i - 1]]
    assert updated_at == [5, 9, 13]
    hub = runner.message_hub
    assert len(hub.get_scalar('train/rlkd_policy_loss').data[0]) == 3
    assert hub.get_scalar('train/rlkd_phase').data[0].size > 0


def test_empty_batches_are_counted_and_missing_losses_dropped():
    model = ToyDistiller(LOSSES)
    runner = FakeRunner(model, max_iters=10)
    hook = RLKDHook(reward='batch', update_interval=10, warmup_iters=0)
    _run(hook, runner, 0, 3, batch=0)
    assert model.temperature.num_empty_batches == 3
    assert len(model.temperature.agent.buffer) == 0
    _run(hook, runner, 3, 5, before_train=False)
    assert len(model.temperature.agent.buffer) == 1
    _run(hook, runner, 5, 6, before_train=False, record=False)  # no task loss: dropped
    assert len(model.temperature.agent.buffer) == 1


def test_save_and_load_give_identical_next_actions():
    torch.manual_seed(0)
    cfg = dict(agent=dict(explore_updates=1, minibatch_size=4, seed=3), dump_size=16)
    model = ToyDistiller(LOSSES, **cfg)
    runner = FakeRunner(model, max_iters=14)
    hook = RLKDHook(reward='batch', update_interval=3, warmup_iters=1, reward_ema=0.5)
    _run(hook, runner, 0, 6)
    checkpoint = {}
    hook.before_save_checkpoint(runner, checkpoint)
    blob = io.BytesIO()
    torch.save(checkpoint, blob)
    later = _run(hook, runner, 6, 14, before_train=False)
    assert model.temperature.agent.update_count >= 3

    torch.manual_seed(123)  # a different global RNG state must not matter
    model2 = ToyDistiller(LOSSES, **cfg)
    model2.load_state_dict(model.state_dict())
    runner2 = FakeRunner(model2, max_iters=14)
    hook2 = RLKDHook(reward='batch', update_interval=3, warmup_iters=1, reward_ema=0.5)
    blob.seek(0)
    hook2.after_load_checkpoint(runner2, torch.load(blob, weights_only=True))
    resumed = _run(hook2, runner2, 6, 14)
    for i in range(6, 14):
        assert torch.equal(later[i], resumed[i]), i
    a1, a2 = model.temperature.agent, model2.temperature.agent
    assert a1.update_count == a2.update_count
    for p, q in zip(a1.parameters(), a2.parameters()):
        assert torch.equal(p, q)
    torch.testing.assert_close(model.temperature.dump(), model2.temperature.dump())


def test_policy_must_exist():
    runner = FakeRunner(nn.Linear(2, 2), max_iters=1)
    with pytest.raises(RuntimeError, match='RLTemperature'):
        RLKDHook(reward='batch').before_train(runner)


@pytest.mark.parametrize(
    'kwargs, key',
    [
        (dict(update_interval=0), 'update_interval'),
        (dict(warmup_iters=-1), 'warmup_iters'),
        (dict(reward_ema=1.0), 'reward_ema'),
        (dict(reward_ema=-0.1), 'reward_ema'),
        (dict(log_interval=0), 'log_interval'),
    ],
)
def test_invalid_settings_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        HOOKS.build(dict(type='rlkd_mm.RLKDHook', **kwargs))


def test_update_interval_must_fit_the_buffer():
    model = ToyDistiller(LOSSES, agent=dict(buffer_size=4))
    with pytest.raises(ValueError, match='update_interval'):
        RLKDHook(reward='batch', update_interval=5).before_train(FakeRunner(model, 10))


# ---------------------------------------------------------------------- a real mmengine Runner
class ToyDataset(Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, idx):
        gen = torch.Generator().manual_seed(idx)
        return dict(inputs=torch.randn(IN_DIM, generator=gen), label=idx % NUM_CLASSES)


class ToyKDModel(RewardCacheMixin, BaseModel):
    def __init__(self):
        super().__init__()
        self.student = nn.Linear(IN_DIM, NUM_CLASSES)
        self.teacher = nn.Linear(IN_DIM, NUM_CLASSES).requires_grad_(False)
        self.temperature = RLTemperature(agent=dict(minibatch_size=8, explore_updates=1))

    def forward(self, inputs, label, mode='tensor'):
        s, t = self.student(inputs), self.teacher(inputs) * 3
        if mode != 'loss':
            return s
        t_s, t_t = self.temperature(s.detach(), t, label).temperatures
        task = nn.functional.cross_entropy(s, label)
        kd = (
            (
                t_s[:, None] ** 2
                * nn.functional.kl_div(
                    nn.functional.log_softmax(s / t_s[:, None], 1),
                    nn.functional.log_softmax(t / t_t[:, None], 1),
                    log_target=True,
                    reduction='none',
                )
            )
            .sum(1)
            .mean()
        )
        self.keep_task_loss(dict(loss_task=task))
        return dict(loss_task=task, loss_kd=kd)


def _runner(work_dir, max_iters, load_from=None):
    return Runner(
        model=ToyKDModel(),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=BATCH,
            num_workers=0,
            collate_fn=dict(type='default_collate'),
        ),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=1000),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=6, by_epoch=False),
            logger=dict(type='LoggerHook', interval=4),
        ),
        custom_hooks=[
            dict(type='rlkd_mm.RLKDHook', reward='batch', update_interval=3, warmup_iters=2)
        ],
        load_from=load_from,
        resume=load_from is not None,
        default_scope='mmengine',
        experiment_name=f'rlkd_{uuid.uuid4().hex}',
        randomness=dict(seed=0),
    )


@pytest.fixture
def restore_default_scope():
    # Runner makes its default scope current for the whole process; later tests must not see it.
    before = set(DefaultScope._instance_dict)
    yield
    for name in set(DefaultScope._instance_dict) - before:
        DefaultScope._instance_dict.pop(name)


@pytest.mark.slow
def test_real_runner_trains_saves_and_resumes(tmp_path, restore_default_scope):
    full = _runner(str(tmp_path / 'full'), 12)
    full.train()
    policy = full.model.temperature
    agent = policy.agent
    assert agent.update_count == 2  # transitions from iteration 3 on; updates at 5, 9
    optimized = {
        id(p) for group in full.optim_wrapper.optimizer.param_groups for p in group['params']
    }
    assert optimized and not optimized & {id(p) for p in agent.parameters()}
    assert 'train/rlkd_reward' in full.message_hub.log_scalars
    ckpt = torch.load(osp.join(str(tmp_path / 'full'), 'iter_6.pth'), weights_only=False)
    assert ckpt['rlkd_agent']['agent']['update_count'] == 1
    assert not any('agent' in k for k in ckpt['state_dict'])

    # Resume from iteration 6 in a fresh work dir: the agent must end where the full run did.
    resumed_dir = tmp_path / 'resumed'
    resumed_dir.mkdir()
    resumed = _runner(
        str(resumed_dir), 12, load_from=osp.join(str(tmp_path / 'full'), 'iter_6.pth')
    )
    # loads under torch's weights_only default thanks to rlkd_mm's checkpoint allowlist
    resumed.train()
    agent2 = resumed.model.temperature.agent
    assert agent2.update_count == agent.update_count
    for p, q in zip(agent.parameters(), agent2.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    x = torch.randn(5, agent.state_dim)
    hq = torch.ones(5, dtype=torch.bool)
    assert torch.equal(agent.act(x, hq)[0], agent2.act(x, hq)[0])


def test_warmup_states_warm_the_normaliser():
    model = ToyDistiller(LOSSES)
    runner = FakeRunner(model, max_iters=10)
    hook = RLKDHook(reward='batch', update_interval=5, warmup_iters=3)
    _run(hook, runner, 0, 3)
    agent = model.temperature.agent
    assert int(agent.norm.count) == 0  # merged when the agent starts acting
    states = []
    for i in range(3):
        gen = torch.Generator().manual_seed(1000 + i)
        x = torch.randn(BATCH, IN_DIM, generator=gen)
        y = torch.randint(0, NUM_CLASSES, (BATCH,), generator=gen)
        progress = i / 10
        states.append(
            instance_state(model.student(x).detach(), model.teacher(x) * 3, y, progress, 'softmax')
        )
    _run(hook, runner, 3, 4, before_train=False)
    assert int(agent.norm.count) == 3 * BATCH
    torch.testing.assert_close(agent.norm.mean, torch.cat(states).double().mean(0))


class AccumulatingWrapper:
    """Steps every second iteration, like accumulative_counts=2."""

    def __init__(self, runner):
        self.runner = runner

    def should_update(self):
        return self.runner.iter % 2 == 1


def test_iterations_without_an_optimizer_step_are_not_rewarded():
    model = ToyDistiller(LOSSES)
    runner = FakeRunner(model, max_iters=10)
    runner.optim_wrapper = AccumulatingWrapper(runner)
    hook = RLKDHook(reward='batch', update_interval=50, warmup_iters=1)
    stored = []
    orig = model.temperature.agent.store
    model.temperature.agent.store = lambda *a, **k: stored.append(k['iteration']) or orig(*a, **k)
    _run(hook, runner, 0, 10)
    assert stored == [1, 3, 5, 7]  # iteration 9 waits for iteration 10


def test_per_instance_reward_needs_a_distiller_that_keeps_its_inputs():
    model = ToyDistiller(LOSSES)
    with pytest.raises(TypeError, match="reward='instance'.*ToyDistiller.*instance_losses"):
        RLKDHook(reward='instance').before_train(FakeRunner(model, 10))
    with pytest.raises(TypeError, match="reward='influence'.*ToyDistiller.*logit_grads"):
        RLKDHook(reward='influence').before_train(FakeRunner(model, 10))
    with pytest.raises(ValueError, match="reward must be one of.*'batch'.*'influence'"):
        RLKDHook(reward='greedy')
