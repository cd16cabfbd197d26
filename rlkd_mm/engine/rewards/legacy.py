"""Models written against RLKDHook's protocol from before the reward units."""

from typing import Any, Dict, Optional, Tuple

from .base import BaseReward


class LegacyRewardModel:
    """RLKDHook's view of a model of the older protocol, in which the model measured the
    per-instance rewards of a mode itself: ``reward_modes`` (the per-instance modes it
    measures), ``instance_rewards(mode)``, ``clear_reward_cache()``, the policy's
    ``collect_rewards`` flag read at the forward and the policy's ``record_task_loss`` for the
    batch reward. ``tools/benchmark/bandit.py`` is such a model; new models keep what a unit
    asks for instead (see :class:`BaseReward`).

    Args:
        model: the model.
        policy: its ``RLTemperature``.
        unit (BaseReward): the hook's reward unit.
    """

    def __init__(self, model: Any, policy: Any, unit: BaseReward) -> None:
        per_instance = [item for item in unit.keeps if item != 'task_loss']
        modes = tuple(getattr(model, 'reward_modes', ()))
        if per_instance and unit.name not in modes:
            raise TypeError(
                f'RLKDHook(reward={unit.name!r}) is not supported by {type(model).__name__} '
                f"(its reward_modes: {modes}); choose one of those or reward='batch'"
            )
        self.model, self.policy, self.name = model, policy, unit.name
        self.reward_items: Tuple[str, ...] = tuple(unit.keeps)
        self._keep: Tuple[str, ...] = ()
        self._measured = False

    @property
    def reward_keep(self) -> Tuple[str, ...]:
        return self._keep

    @reward_keep.setter
    def reward_keep(self, items: Tuple[str, ...]) -> None:
        if not items and not self._measured:
            clear = getattr(self.model, 'clear_reward_cache', None)
            if clear is not None:
                clear()
        self._keep, self._measured = tuple(items), False
        per_instance = any(item != 'task_loss' for item in self._keep)
        self.policy.collect_rewards = self.name if per_instance else False

    def pop_reward_cache(self) -> Optional[Dict[str, Any]]:
        kept: Dict[str, Any] = {}
        pop = getattr(self.policy, 'pop_task_loss', None)
        loss = pop() if pop is not None else None
        if loss is not None:
            kept.update(task_loss_sum=loss, task_loss_count=1)
        if self.policy.collect_rewards:
            kept['legacy_measure'] = self._measure
        return kept or None

    def _measure(self) -> Any:
        self._measured = True
        return self.model.instance_rewards(self.name)
