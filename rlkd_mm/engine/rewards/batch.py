"""The batch reward of the original RLKD: one scalar per iteration."""

import logging
import math
from typing import Any, Dict, Optional

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.logging import print_log

from rlkd_mm.registry import REWARDS

from .base import BaseReward, HeldReward


@REWARDS.register_module(name='batch')
class BatchReward(BaseReward):
    """``'batch'`` (the original, for comparison): ``R_k = EMA(task losses up to k) -
    task_loss_{k+1}``, one scalar per iteration, decomposed into instance rewards by the
    agent's reward model (action-centred calibration).

    The task loss of iteration ``k + 1`` is the student's after the step of iteration ``k``;
    under DDP it is averaged over the ranks that kept one. Every acting iteration is stored
    (``reward_interval`` does not apply), and the distiller keeps its task loss at every
    iteration, the warm-up included, for the EMA.

    Args:
        reward_ema (float): momentum of the EMA of batch task losses that the reward compares
            with, in [0, 1). Defaults to 0.9.
        warmup_iters (int): see :class:`BaseReward`.
    """

    keeps = ('task_loss',)

    def __init__(self, reward_ema: float = 0.9, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reward_ema = float(reward_ema)
        self._loss_ema: Optional[float] = None
        self._loss = math.nan
        self._reward: Optional[float] = None

    def rewarded(self, iteration: int) -> bool:
        return True

    def collects(self, iteration: int, acting: bool, update_due: bool) -> bool:
        return True

    def observe(self, kept: Optional[Dict[str, Any]], device: Any) -> None:
        """This iteration's task loss (averaged over the ranks), the reward it gives the held
        iteration, and the EMA."""
        total = torch.zeros(2, dtype=torch.float64, device=device)
        if kept is not None and 'task_loss_sum' in kept:
            loss = kept['task_loss_sum'] / kept['task_loss_count']
            total[0] = loss.to(device, torch.float64)
            total[1] = 1.0
        if get_world_size() > 1:
            all_reduce(total, op='sum')
        total = total.cpu()
        loss = float(total[0] / total[1]) if total[1] > 0 else math.nan
        self._loss = loss
        finite = math.isfinite(loss)
        self._reward = self._loss_ema - loss if finite and self._loss_ema is not None else None
        if finite:
            self._loss_ema = (
                loss
                if self._loss_ema is None
                else self.reward_ema * self._loss_ema + (1.0 - self.reward_ema) * loss
            )

    def measure(self, model: Any, kept: Optional[Dict[str, Any]]) -> None:
        return None

    def transition_reward(self, held: Dict[str, Any], iteration: int) -> Optional[HeldReward]:
        if self._reward is None:
            print_log(
                f'RLKDHook: no finite task loss at iteration {iteration} (got {self._loss}); '
                'the previous actions are dropped. Does the distiller keep its task loss '
                "(reward_items with 'task_loss')?",
                logger='current',
                level=logging.WARNING,
            )
            return None
        return HeldReward(self._reward)

    def state_dict(self) -> Dict[str, Any]:
        return dict(loss_ema=self._loss_ema)

    def load_state_dict(self, state: Dict[str, Any], device: Any) -> None:
        self._loss_ema = state.get('loss_ema')
