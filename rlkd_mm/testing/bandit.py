"""A contextual bandit driven through ``RLKDHook``: the best temperature of an instance is known.

Each batch holds instances of two groups that differ in one state feature, the teacher's
probability of the true class (about 0.99 or about 0.6; both are high-quality instances). The
stand-in distiller's student loss on instance ``i`` improves by ``-(T_i - T*)^2 / 10`` (plus
noise) after the step of the iteration that used ``T_i``, with ``T* = 2`` for the confident group
and ``T* = 8`` for the other. It keeps what the reward units ask for, as a real distiller does:
'instance_losses' (re-evaluated, instance ``i``'s loss has changed by exactly that amount) and
'task_loss' (the batch's task loss, minus the mean of the changes accumulated so far: the
student's loss after every previous step). The bandit has no last layer: its ``'influence'`` runs
use :class:`BanditInfluenceReward`, which rewards the same known change, and its
``'counterfactual'`` runs :class:`BanditCounterfactualReward`, which scores each sampled
temperature by the change it would have made (the bandit checks the agent, the hook and the
unit's sampling and leave-one-out rewards, not how each mode measures).

``tools/benchmark/bandit.py`` is its command line.
"""

from typing import Any, Dict, Tuple

import torch
from torch import Tensor, nn

from rlkd_mm.engine.hooks import RLKDHook
from rlkd_mm.engine.rewards import CounterfactualReward, InstanceReward
from rlkd_mm.models.distillers import RewardCacheMixin
from rlkd_mm.registry import REWARDS
from rlkd_mm.temperature import RLTemperature

from .runner import FakeRunner, drive_hook

NUM_CLASSES, BATCH = 10, 64
T_STAR = (2.0, 8.0)  # confident group, unconfident group


@REWARDS.register_module(name='bandit_influence')
class BanditInfluenceReward(InstanceReward):
    """The bandit's ``'influence'``: every ``reward_interval``-th acting iteration is
    rewarded (as the influence unit does) with the known change of each instance's loss (the
    bandit has no last layer whose gradients the influence unit could compare)."""


@REWARDS.register_module(name='bandit_counterfactual')
class BanditCounterfactualReward(CounterfactualReward):
    """The bandit's ``'counterfactual'``: ``num_samples`` temperatures of the current policy per
    instance, each scored by the known change of the instance's loss had it trained with that
    temperature (plus the bandit's noise); no quiz split."""

    def setup(self, runner: Any, model: Any, policy: Any) -> None:
        pass

    def before_iter(self, runner: Any, model: Any, collecting: bool) -> None:
        pass

    def score(self, model: Any, kept: Dict[str, Any], actions: Tensor, policy: Any) -> Tensor:
        model.num_rewarded += 1
        target = torch.tensor(T_STAR)[kept['group']]
        noise = torch.randn(actions.shape, generator=model.gen)
        return -((actions - target) ** 2) / 10.0 + model.noise * noise


#: The unit each reward mode of ``run_bandit`` trains with.
BANDIT_REWARDS = dict(
    instance='instance',
    influence='bandit_influence',
    batch='batch',
    counterfactual='bandit_counterfactual',
)


class BanditDistiller(RewardCacheMixin, nn.Module):
    """The bandit's stand-in distiller (see the module's docstring); ``forward(iteration)``
    returns the temperatures the policy chose."""

    reward_items = ('task_loss', 'instance_losses', 'candidate_grads')

    def __init__(self, seed: int, noise: float = 0.1, **policy_kwargs: Any) -> None:
        super().__init__()
        self.temperature = RLTemperature(**policy_kwargs)
        self.gen = torch.Generator().manual_seed(10_000 + seed)
        self.noise = noise
        self.loss = 5.0
        self.num_rewarded = 0

    def batch(self, num: int = BATCH) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        labels = torch.randint(0, NUM_CLASSES, (num,), generator=self.gen)
        group = torch.randint(0, 2, (num,), generator=self.gen)
        teacher = torch.randn(num, NUM_CLASSES, generator=self.gen) * 0.1
        margin = torch.where(group == 0, 7.0, 2.6)
        teacher[torch.arange(num), labels] += margin
        student = torch.randn(num, NUM_CLASSES, generator=self.gen)
        return student, teacher, labels, group

    def forward(self, _iteration: int) -> Tensor:
        student, teacher, labels, group = self.batch()
        t = self.temperature(student, teacher, labels).t_student
        self.keep_task_loss(dict(loss=torch.tensor(self.loss)))
        target = torch.tensor(T_STAR)[group]
        change = -((t - target) ** 2) / 10.0
        change = change + self.noise * torch.randn(t.shape, generator=self.gen)
        self.loss -= float(change.mean())
        if 'instance_losses' in self.keeps():
            # losses relative to each instance's loss before the step
            self.keep_for_reward(losses=torch.zeros_like(change), change=change)
        if 'candidate_grads' in self.keeps():
            self.keep_for_reward(group=group)
        return t

    def instance_losses(self, kept: Dict[str, Any]) -> Tensor:
        """Each kept instance's loss after the step: lower by its change."""
        self.num_rewarded += 1
        return -kept['change']

    @torch.no_grad()
    def greedy_temperatures(self, num: int = 512) -> Tuple[float, float]:
        """Deterministic temperatures of fresh instances, per group (mean over each)."""
        policy = self.temperature
        policy.deterministic = True
        student, teacher, labels, group = self.batch(num)
        t = policy(student, teacher, labels).t_student
        policy.pop_pending()
        policy.deterministic = False
        return float(t[group == 0].mean()), float(t[group == 1].mean())


def run_bandit(
    reward: str, seed: int, iterations: int = 600, **hook_kwargs: Any
) -> Tuple[BanditDistiller, RLKDHook]:
    """Train through the hook with reward mode ``reward`` ('instance', 'influence', 'batch',
    'counterfactual'; see :data:`BANDIT_REWARDS`); return the model (for
    ``greedy_temperatures``) and the hook."""
    torch.manual_seed(seed)
    model = BanditDistiller(seed)
    model.train()
    runner = FakeRunner(model, iterations)
    hook = RLKDHook(reward=BANDIT_REWARDS.get(reward, reward), **hook_kwargs)
    drive_hook(hook, runner, range(iterations), model, before_train=True)
    return model, hook
