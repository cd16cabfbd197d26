"""What a reward mode of ``RLKDHook`` is: the base class of the reward units and their builder."""

import logging
from typing import Any, Dict, NamedTuple, Optional, Tuple, Union

import torch
from mmengine.logging import print_log
from torch import Tensor

from rlkd_mm.registry import REWARDS


class HeldReward(NamedTuple):
    """The reward of a stored iteration, as the agent takes it.

    Attributes:
        total (float): the iteration's reward: the sum of its instance rewards, or the one
            batch reward.
        instances (Tensor, optional): ``[N]`` per-instance rewards; None: the agent's reward
            model splits ``total`` among the instances.
        advantages (bool): the instance rewards are advantages already (contextual bandit:
            no bootstrap, no critic baseline; see ``RLKDAgent.store``).
    """

    total: float
    instances: Optional[Tensor] = None
    advantages: bool = False


class BaseReward:
    """One reward mode of :class:`~rlkd_mm.engine.RLKDHook`: when it collects, what the
    distiller keeps from its forward, and how the rewards are formed after the optimizer step.

    The hook calls :meth:`setup` once before training, then a unit at every training
    iteration ``k``:

    1. before the forward, :meth:`collects` (``k``, whether the agent acts, whether an agent
       update is due when the held iteration is stored): if True the distiller keeps the items
       named in :attr:`keeps` from this forward (the hook sets ``model.reward_keep``); then
       :meth:`before_iter` (on every rank, collectives allowed);
    2. after the optimizer step, on every rank, :meth:`observe` with what the distiller kept
       (``model.pop_reward_cache()``, None if nothing);
    3. if the iteration is stored (:meth:`rewarded`, collected, the agent acted with the
       current policy and the optimizer stepped), :meth:`measure_step` right after the step:
       the agent step to store and its per-instance rewards (or None), held together (by
       default the acting step and :meth:`measure`'s rewards);
    4. at iteration ``k + 1``, when the held iteration becomes a transition,
       :meth:`transition_reward`: a :class:`HeldReward`, or None to drop it.

    What a distiller can keep (its ``reward_items``; a unit's :attr:`keeps` must be among
    them, checked by :meth:`check` before training):

    - ``'task_loss'``: the batch's task loss, summed as ``parse_losses`` sums the student's own
      loss terms (``task_loss_sum`` and ``task_loss_count``, the number of forwards);
    - ``'instance_losses'``: each instance's task loss ``losses`` ``[N]`` and what the
      distiller's ``instance_losses(kept)`` needs to evaluate them again on the student (no
      grad, the student's buffers and every RNG stream left as they were);
    - ``'logit_grads'``: each instance's last-layer input ``features`` ``[N, D]``, the gradient
      of its trained objective w.r.t. its logits ``grads`` ``[N, C]`` (and, with a split last
      layer, its weight group ``groups`` ``[N]``), and what the distiller's
      ``last_layer_gradients(kept)`` needs to give ``(features, grads of the mean task loss,
      groups)`` of the same inputs on the current student;
    - ``'candidate_grads'``: the student's ``logits`` ``[N, C]``, the ``teacher_logits``, the
      ``labels`` ``[N]`` and the last-layer ``features`` ``[N, D]`` of the forward, so that the
      distiller's ``candidate_logit_grads`` gives each instance's objective gradient under
      other temperatures; the distiller also offers ``last_layer()`` and
      ``quiz_gradients(inputs, data_samples)`` (or ``quiz_layer_gradients``: the two halves'
      last-layer gradients themselves). A dense detector adds each positive's weight group
      ``groups`` ``[N]`` and its task-loss gradient ``task_grads`` ``[N, C]``.

    State kept across iterations (saved in RLKDHook's checkpoint, ``reward_state``):
    :meth:`state_dict` / :meth:`load_state_dict`; :meth:`drop_rank_local` forgets what only
    this rank had when a checkpoint of fewer ranks is resumed.

    A new mode is a subclass registered in ``rlkd_mm.registry.REWARDS``; ``RLKDHook(reward=
    name)`` then builds it with the hook's ``reward_interval``, ``warmup_iters`` and
    ``reward_ema`` as keyword arguments (a unit ignores those it does not take).

    The defaults are those of a per-instance mode: the actions of every
    ``reward_interval``-th acting iteration are rewarded with :meth:`rewards`.

    Args:
        reward_interval (int): m: every m-th iteration from the end of the warm-up is
            rewarded. Defaults to 1.
        warmup_iters (int): iterations before the agent acts. Defaults to 0.
    """

    #: What the distiller keeps from the forward of an iteration this unit collects.
    keeps: Tuple[str, ...] = ()
    #: Whether the rewards are advantages already (see :class:`HeldReward`).
    advantages: bool = False

    def __init__(self, reward_interval: int = 1, warmup_iters: int = 0, **unused: Any) -> None:
        self.reward_interval = reward_interval
        self.warmup_iters = warmup_iters
        self.name = type(self).__name__  # set by ``build_reward`` to the name it was built by

    def check(self, model: Any) -> None:
        """Raise ``TypeError`` unless ``model`` can keep everything this unit needs."""
        items = tuple(getattr(model, 'reward_items', ()))
        missing = [item for item in self.keeps if item not in items]
        if missing:
            raise TypeError(
                f'RLKDHook(reward={self.name!r}) is not supported by {type(model).__name__}: it '
                f'cannot keep {missing} (its reward_items: {items})'
            )

    def setup(self, runner: Any, model: Any, policy: Any) -> None:
        """Called once before training, after :meth:`check` (e.g. to build datasets)."""

    def before_iter(self, runner: Any, model: Any, collecting: bool) -> None:
        """Called before every training iteration's forward on every rank, once
        :meth:`collects` has decided ``collecting``."""

    def rewarded(self, iteration: int) -> bool:
        """Whether the actions of ``iteration`` may become experience."""
        return (iteration - self.warmup_iters) % self.reward_interval == 0

    def collects(self, iteration: int, acting: bool, update_due: bool) -> bool:
        """Whether the distiller keeps :attr:`keeps` at this iteration's forward. An iteration
        acted on just before an agent update is never stored after it: nothing to keep."""
        return acting and self.rewarded(iteration) and not update_due

    def observe(self, kept: Optional[Dict[str, Any]], device: Any) -> None:
        """Called after every optimizer step on every rank (collectives allowed)."""

    def measure_step(
        self, model: Any, kept: Optional[Dict[str, Any]], step: Any, policy: Any
    ) -> Tuple[Any, Optional[Tensor]]:
        """``(step, rewards)`` to hold for an iteration to be stored, right after its step:
        the agent's acting ``step`` and :meth:`measure`'s rewards; a unit may store another
        step (e.g. with further sampled actions) with one reward per row."""
        return step, self.measure(model, kept)

    @torch.no_grad()
    def measure(self, model: Any, kept: Optional[Dict[str, Any]]) -> Optional[Tensor]:
        """Per-instance rewards ``[N]`` of an iteration to be stored, right after its step (in
        the training precision), or None."""
        if kept is None:
            return None
        return self.rewards(model, kept)

    def rewards(self, model: Any, kept: Dict[str, Any]) -> Optional[Tensor]:
        """The per-instance rewards from what the distiller kept and its capabilities."""
        raise NotImplementedError(f'{type(self).__name__} forms no per-instance rewards')

    def transition_reward(self, held: Dict[str, Any], iteration: int) -> Optional[HeldReward]:
        """The reward of the iteration held since ``held['iteration']`` (``held['rewards']``:
        what :meth:`measure` gave), due at ``iteration``; None drops it."""
        rewards = held['rewards']
        if rewards is None:
            return None
        if not bool(torch.isfinite(rewards).all()):
            print_log(
                f'RLKDHook: non-finite instance rewards at iteration {held["iteration"]}; '
                'the iteration is not stored',
                logger='current',
                level=logging.WARNING,
            )
            return None
        return HeldReward(float(rewards.sum()), rewards, self.advantages)

    def state_dict(self) -> Dict[str, Any]:
        """What this unit keeps across iterations, on the CPU."""
        return {}

    def load_state_dict(self, state: Dict[str, Any], device: Any) -> None:
        """Restore what :meth:`state_dict` returned, onto ``device``."""

    def drop_rank_local(self) -> None:
        """Forget the state that only this rank had (resuming with more ranks than saved)."""


def build_reward(reward: Union[str, dict], **kwargs: Any) -> BaseReward:
    """The unit registered as ``reward`` (a name, or a config dict with ``type``), built with
    ``kwargs`` (the config's own keys take precedence)."""
    cfg = dict(type=reward) if isinstance(reward, str) else dict(reward)
    name = cfg.pop('type', None)
    cls = REWARDS.get(name) if isinstance(name, str) else name
    if not (isinstance(cls, type) and issubclass(cls, BaseReward)):
        raise ValueError(
            f'reward must be one of {sorted(REWARDS.module_dict)} (rlkd_mm.registry.REWARDS), '
            f'got reward={name!r}'
        )
    unit = cls(**{**kwargs, **cfg})
    unit.name = name if isinstance(name, str) else cls.__name__
    return unit
