"""Rollout storage of the RLKD agent: one transition per training iteration."""

from collections import deque
from dataclasses import dataclass, fields
from typing import Any, Dict, List, Optional, Sequence

import torch
from torch import Tensor


@dataclass
class AgentStep:
    """What the agent did on one batch of N instances (everything needed to learn from it).

    Attributes:
        states (Tensor): ``[N, D]`` normalised states the actor saw.
        raw_states (Tensor): ``[N, D]`` states before normalisation (for the running statistics
            and the reward model).
        actions (Tensor): ``[N]`` pre-squash actions ``a``.
        log_probs (Tensor): ``[N]`` log-probabilities of ``a`` under the acting policy.
        values (Tensor): ``[N]`` critic values ``V(s)`` at acting time.
        hq_mask (Tensor): ``[N]`` bool, high-quality instances.
        temperatures (Tensor): ``[N]`` temperatures ``T`` given to the KD loss.
        explored (Tensor, optional): ``[N]`` bool, instances whose action was sampled with
            exploration noise. Only these enter the PPO policy and entropy terms; the others
            (mean action: non-high-quality instances in the exploration phase, deterministic
            acting) only train the critic. None (e.g. a step saved before this field existed)
            means all explored.
    """

    states: Tensor
    raw_states: Tensor
    actions: Tensor
    log_probs: Tensor
    values: Tensor
    hq_mask: Tensor
    temperatures: Tensor
    explored: Optional[Tensor] = None

    def __post_init__(self) -> None:
        if self.explored is None:
            self.explored = torch.ones_like(self.hq_mask, dtype=torch.bool)

    @property
    def num(self) -> int:
        return self.actions.numel()

    @classmethod
    def cat(cls, steps: Sequence['AgentStep']) -> 'AgentStep':
        """One step holding the instances of ``steps`` in order."""
        if len(steps) == 1:
            return steps[0]
        return cls(
            **{f.name: torch.cat([getattr(s, f.name) for s in steps], dim=0) for f in fields(cls)}
        )

    def to(self, device: Any) -> 'AgentStep':
        return AgentStep(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def to_dict(self) -> Dict[str, Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Dict[str, Tensor]) -> 'AgentStep':
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass
class Transition:
    """One iteration of experience.

    Attributes:
        step (AgentStep): the actions of iteration k.
        batch_reward (float): ``R_k``, measured on the student after update k.
        next_states (Tensor, optional): ``[M, D]`` normalised states of iteration k + 1 (the
            bootstrap target); None when they were not observed.
        instance_rewards (Tensor, optional): ``[N]`` rewards per instance given directly, which
            bypass the reward model and its calibration (per-instance reward modes, tests).
        iteration (int): the training iteration k (-1: unknown). Under DDP the hook merges the
            ranks' transitions of one iteration into one when they share a batch reward.
        advantages (bool): the instance rewards are advantages already (a contextual bandit:
            each is centred on the other actions sampled for its instance), so the update
            neither bootstraps nor subtracts the critic's value for them. Defaults to False.
    """

    step: AgentStep
    batch_reward: float
    next_states: Optional[Tensor] = None
    instance_rewards: Optional[Tensor] = None
    iteration: int = -1
    advantages: bool = False

    def to(self, device: Any) -> 'Transition':
        return Transition(
            step=self.step.to(device),
            batch_reward=self.batch_reward,
            next_states=None if self.next_states is None else self.next_states.to(device),
            instance_rewards=None
            if self.instance_rewards is None
            else self.instance_rewards.to(device),
            iteration=self.iteration,
            advantages=self.advantages,
        )

    def to_dict(self) -> Dict[str, Any]:
        return dict(
            step=self.step.to_dict(),
            batch_reward=self.batch_reward,
            next_states=self.next_states,
            instance_rewards=self.instance_rewards,
            iteration=self.iteration,
            advantages=self.advantages,
        )

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> 'Transition':
        return cls(
            step=AgentStep.from_dict(data['step']),
            batch_reward=float(data['batch_reward']),
            next_states=data['next_states'],
            instance_rewards=data['instance_rewards'],
            iteration=int(data.get('iteration', -1)),
            advantages=bool(data.get('advantages', False)),
        )


class RolloutBuffer:
    """Bounded FIFO of transitions, one per iteration.

    When full, the oldest transition is dropped: the agent is updated every K iterations with
    K <= capacity, so this only bounds memory if updates stop (e.g. an agent driven by hand).

    Args:
        capacity (int): maximum number of iterations kept.
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f'buffer_size must be > 0, got buffer_size={capacity}')
        self.capacity = capacity
        self._items: deque = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._items)

    def append(self, transition: Transition) -> None:
        self._items.append(transition)

    def transitions(self) -> List[Transition]:
        return list(self._items)

    def clear(self) -> None:
        self._items.clear()

    def to(self, device: Any) -> 'RolloutBuffer':
        self._items = deque((t.to(device) for t in self._items), maxlen=self.capacity)
        return self

    def state_dict(self) -> List[Dict[str, Any]]:
        return [t.to('cpu').to_dict() for t in self._items]

    def load_state_dict(self, state: List[Dict[str, Any]], device: Any = 'cpu') -> None:
        self._items = deque(
            (Transition.from_dict(d).to(device) for d in state), maxlen=self.capacity
        )


def merge_iterations(transitions: Sequence[Transition]) -> List[Transition]:
    """Merge the transitions that share a batch-level reward of one iteration (one per DDP
    rank, in rank order) into one transition of that iteration.

    A batch reward measured on the whole (global) batch is one observation: stored once per
    rank it would be counted once per rank by the calibration. Transitions with per-instance
    rewards, or without an iteration, are kept as they are. Order: by first appearance.
    """
    groups: Dict[int, List[Transition]] = {}
    out: List[Any] = []
    for t in transitions:
        if t.instance_rewards is not None or t.iteration < 0:
            out.append(t)
            continue
        if t.iteration not in groups:
            groups[t.iteration] = []
            out.append(t.iteration)
        groups[t.iteration].append(t)
    merged = []
    for entry in out:
        if isinstance(entry, Transition):
            merged.append(entry)
            continue
        group = groups[entry]
        nexts = [t.next_states for t in group if t.next_states is not None]
        merged.append(
            Transition(
                step=AgentStep.cat([t.step for t in group]),
                batch_reward=group[0].batch_reward,
                next_states=torch.cat(nexts) if nexts else None,
                iteration=entry,
            )
        )
    return merged
