"""A contextual bandit driven through ``RLKDHook``: the best temperature of an instance is known.

    python tools/benchmark/bandit.py --reward instance batch --seeds 0 1

Each batch holds instances of two groups that differ in one state feature, the teacher's
probability of the true class (about 0.99 or about 0.6; both are high-quality instances). The
stand-in distiller's student loss on instance ``i`` improves by ``-(T_i - T*)^2 / 10`` (plus
noise) after the step of the iteration that used ``T_i``, with ``T* = 2`` for the confident group
and ``T* = 8`` for the other. ``instance_rewards`` returns exactly that change, as a real
distiller's re-evaluation does; the batch task loss recorded for batch mode is minus the mean of
the changes accumulated so far (the student's loss after every previous step).
"""

import argparse
import json
import os.path as osp
import sys
import uuid
from typing import Dict, Optional

import torch
from mmengine.logging import MessageHub
from torch import nn

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from rlkd_mm.engine import RLKDHook  # noqa: E402
from rlkd_mm.temperature import RLTemperature  # noqa: E402

NUM_CLASSES, BATCH = 10, 64
T_STAR = (2.0, 8.0)  # confident group, unconfident group


class BanditDistiller(nn.Module):
    reward_modes = ('instance', 'influence')

    def __init__(self, seed: int, noise: float = 0.1, **policy_kwargs):
        super().__init__()
        self.temperature = RLTemperature(**policy_kwargs)
        self.gen = torch.Generator().manual_seed(10_000 + seed)
        self.noise = noise
        self.loss = 5.0
        self._cache: Optional[Dict[str, torch.Tensor]] = None
        self.num_rewarded = 0

    def batch(self, num: int = BATCH):
        labels = torch.randint(0, NUM_CLASSES, (num,), generator=self.gen)
        group = torch.randint(0, 2, (num,), generator=self.gen)
        teacher = torch.randn(num, NUM_CLASSES, generator=self.gen) * 0.1
        margin = torch.where(group == 0, 7.0, 2.6)
        teacher[torch.arange(num), labels] += margin
        student = torch.randn(num, NUM_CLASSES, generator=self.gen)
        return student, teacher, labels, group

    def forward(self, _iteration: int):
        student, teacher, labels, group = self.batch()
        t = self.temperature(student, teacher, labels).t_student
        self.temperature.record_task_loss(torch.tensor(self.loss))
        target = torch.tensor(T_STAR)[group]
        change = -((t - target) ** 2) / 10.0
        change = change + self.noise * torch.randn(t.shape, generator=self.gen)
        self.loss -= float(change.mean())
        if self.temperature.collect_rewards:
            self._cache = dict(change=change)
        return t

    def instance_rewards(self, mode):
        cache, self._cache = self._cache, None
        if cache is None:
            return None
        self.num_rewarded += 1
        return cache['change']

    def clear_reward_cache(self):
        self._cache = None

    @torch.no_grad()
    def greedy_temperatures(self, num: int = 512):
        """Deterministic temperatures of fresh instances, per group (mean over each)."""
        policy = self.temperature
        policy.deterministic = True
        student, teacher, labels, group = self.batch(num)
        t = policy(student, teacher, labels).t_student
        policy.pop_pending()
        policy.deterministic = False
        return float(t[group == 0].mean()), float(t[group == 1].mean())


class FakeRunner:
    """What the hook reads from mmengine's Runner (the optimizer steps every iteration)."""

    def __init__(self, model, max_iters):
        self.model = model
        self.iter = 0
        self.max_iters = max_iters
        self.message_hub = MessageHub.get_instance(f'bandit_{uuid.uuid4().hex}')


def run_bandit(reward: str, seed: int, iterations: int = 600, **hook_kwargs):
    """Train through the hook; return the model (for greedy_temperatures) and the hook."""
    torch.manual_seed(seed)
    model = BanditDistiller(seed)
    model.train()
    runner = FakeRunner(model, iterations)
    hook = RLKDHook(reward=reward, **hook_kwargs)
    hook.before_train(runner)
    for i in range(iterations):
        runner.iter = i
        hook.before_train_iter(runner, i)
        model(i)
        hook.after_train_iter(runner, i)
    return model, hook


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--reward', nargs='+', default=['instance', 'influence', 'batch'])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--iterations', type=int, default=600)
    parser.add_argument('--reward-interval', type=int, default=8)
    args = parser.parse_args()
    for reward in args.reward:
        for seed in args.seeds:
            model, hook = run_bandit(
                reward, seed, args.iterations, reward_interval=args.reward_interval
            )
            confident, unconfident = model.greedy_temperatures()
            row = dict(
                reward=reward,
                seed=seed,
                reward_interval=hook.reward_interval,
                agent_updates=model.temperature.agent.update_count,
                greedy_t=dict(confident=round(confident, 2), unconfident=round(unconfident, 2)),
                best_t=dict(confident=T_STAR[0], unconfident=T_STAR[1]),
            )
            print(json.dumps(row), flush=True)


if __name__ == '__main__':
    main()
