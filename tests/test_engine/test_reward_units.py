"""Reward modes are units behind ``rlkd_mm.registry.REWARDS``: a mode defined and registered in
this file trains through RLKDHook, is saved and resumed with it, without a change to the package."""

import copy
import io

import pytest
import torch

from rlkd_mm.engine import RLKDHook
from rlkd_mm.engine.rewards import BaseReward, BatchReward, InfluenceReward, InstanceReward
from rlkd_mm.registry import REWARDS
from rlkd_mm.testing import FakeRunner, LinearDistiller, drive_hook

IN_DIM, NUM_CLASSES, BATCH = 6, 4, 8


class BaselinedLossChange(BaseReward):
    """A toy mode: each instance's task-loss change across the step (the capability the
    'instance' mode uses) minus a running mean of the earlier changes, its own state."""

    keeps = ('instance_losses',)

    def __init__(self, momentum: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        self.baseline = 0.0
        self.measured = []  # (iteration index of the call, rewards) for the test

    def rewards(self, model, kept):
        change = kept['losses'] - model.instance_losses(kept)
        rewards = change - self.baseline
        self.baseline = self.momentum * self.baseline + (1 - self.momentum) * float(change.mean())
        self.measured.append(rewards.clone())
        return rewards

    def state_dict(self):
        return dict(baseline=self.baseline)

    def load_state_dict(self, state, device):
        self.baseline = state.get('baseline', 0.0)


@pytest.fixture(autouse=True)
def toy_mode():
    REWARDS.register_module(name='toy_baselined', module=BaselinedLossChange, force=True)
    yield
    REWARDS._module_dict.pop('toy_baselined')


def _train(model, hook, runner, start, stop, optimizer):
    def step(i):
        gen = torch.Generator().manual_seed(i)
        x = torch.randn(BATCH, IN_DIM, generator=gen)
        y = torch.randint(0, NUM_CLASSES, (BATCH,), generator=gen)
        loss, _ = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    drive_hook(hook, runner, range(start, stop), step)


def _setup(seed=0, **hook_kwargs):
    torch.manual_seed(seed)
    model = LinearDistiller(agent=dict(seed=0, minibatch_size=8, explore_updates=1))
    runner = FakeRunner(model, max_iters=24)
    hook = RLKDHook(**hook_kwargs)
    optimizer = torch.optim.SGD(model.student.parameters(), lr=0.1)
    return model, runner, hook, optimizer


def test_builtin_modes_are_registered_units():
    assert {'instance', 'influence', 'batch'} <= set(REWARDS.module_dict)
    assert isinstance(RLKDHook(reward='instance').unit, InstanceReward)
    assert isinstance(RLKDHook(reward='influence').unit, InfluenceReward)
    unit = RLKDHook(reward='batch', reward_ema=0.5).unit
    assert isinstance(unit, BatchReward) and unit.reward_ema == 0.5


def test_a_mode_registered_in_the_test_trains_through_the_hook():
    model, runner, hook, optimizer = _setup(
        reward='toy_baselined', reward_interval=2, update_interval=2, warmup_iters=2
    )
    unit = hook.unit
    assert isinstance(unit, BaselinedLossChange) and unit.name == 'toy_baselined'
    agent = model.temperature.agent
    stored = []
    store = agent.store
    agent.store = lambda *a, **k: stored.append(k['instance_rewards']) or store(*a, **k)
    hook.before_train(runner)
    _train(model, hook, runner, 0, 24, optimizer)
    # iterations 2, 4, ..., 22 are rewarded except the one acted on just before each update
    assert len(unit.measured) > 4 and agent.update_count >= 3
    # what the agent stored is what the unit formed (the last, of iteration 22, at 23)
    assert len(stored) == len(unit.measured)
    for got, expected in zip(stored, unit.measured):
        assert torch.equal(got, expected.float())
    assert unit.baseline != 0.0
    assert runner.message_hub.get_scalar('train/rlkd_reward').data[0].size == len(stored)


def test_a_registered_mode_takes_its_config_and_resumes_with_its_state():
    kwargs = dict(reward_interval=1, update_interval=3, warmup_iters=1)
    reward = dict(type='toy_baselined', momentum=0.8)
    model, runner, hook, optimizer = _setup(reward=reward, **kwargs)
    assert hook.unit.momentum == 0.8
    hook.before_train(runner)
    _train(model, hook, runner, 0, 10, optimizer)
    checkpoint = {}
    hook.before_save_checkpoint(runner, checkpoint)
    assert checkpoint['rlkd_agent']['reward_state'] == dict(baseline=hook.unit.baseline)
    blob = io.BytesIO()
    torch.save(checkpoint, blob)
    state = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
    _train(model, hook, runner, 10, 20, optimizer)

    model2, runner2, hook2, optimizer2 = _setup(seed=1, reward=reward, **kwargs)
    model2.load_state_dict(state[0])
    optimizer2.load_state_dict(state[1])
    blob.seek(0)
    hook2.after_load_checkpoint(runner2, torch.load(blob, weights_only=True))
    hook2.before_train(runner2)
    _train(model2, hook2, runner2, 10, 20, optimizer2)
    assert hook2.unit.baseline == hook.unit.baseline
    assert model2.temperature.agent.update_count == model.temperature.agent.update_count > 2
    for p, q in zip(model.temperature.agent.parameters(), model2.temperature.agent.parameters()):
        assert torch.equal(p, q)


def test_a_model_that_cannot_keep_what_the_mode_needs_is_refused():
    class TaskLossOnly(LinearDistiller):
        reward_items = ('task_loss',)

    model = TaskLossOnly()
    with pytest.raises(TypeError, match="reward='toy_baselined'.*TaskLossOnly.*instance_losses"):
        RLKDHook(reward='toy_baselined').before_train(FakeRunner(model, 10))
