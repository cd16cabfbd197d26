"""Optimizer wrappers that skip the step of an iteration whose total loss is not finite."""

import logging

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.logging import MessageHub, print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from rlkd_mm.registry import OPTIM_WRAPPERS


class NonFiniteSkipMixin:
    """Skip the optimizer step when the loss is NaN or infinite on any rank.

    The ranks agree first (one all-reduce of a flag), so under DDP either all of them step or
    none: the backward still runs everywhere, which keeps DDP's gradient all-reduce paired, and
    its gradients are then discarded instead of stepped. Each skip logs a warning and the
    running count ``train/nonfinite_skips``; ``max_consecutive_nonfinite`` skips in a row stop
    training with ``FloatingPointError``. ``skipped_last`` tells hooks (``RLKDHook``) that the
    last iteration did not update the model.
    """

    def _init_skip(self, max_consecutive_nonfinite: int) -> None:
        if not isinstance(max_consecutive_nonfinite, int) or max_consecutive_nonfinite < 1:
            raise ValueError(
                'max_consecutive_nonfinite must be an int >= 1, got '
                f'max_consecutive_nonfinite={max_consecutive_nonfinite!r}'
            )
        self.max_consecutive_nonfinite = max_consecutive_nonfinite
        self.num_nonfinite = 0
        self.consecutive_nonfinite = 0
        self.skipped_last = False

    def _finite_on_all_ranks(self, loss: torch.Tensor) -> bool:
        flag = torch.isfinite(loss.detach()).all().to(torch.float32).reshape(1)
        if get_world_size() > 1:
            all_reduce(flag, op='min')
        return bool(flag.item() > 0.5)

    def update_params(self, loss, step_kwargs=None, zero_kwargs=None) -> None:
        if self._finite_on_all_ranks(loss):
            self.consecutive_nonfinite = 0
            self.skipped_last = False
            return super().update_params(loss, step_kwargs=step_kwargs, zero_kwargs=zero_kwargs)
        self.skipped_last = True
        self.num_nonfinite += 1
        self.consecutive_nonfinite += 1
        hub = MessageHub.get_current_instance()
        hub.update_scalar('train/nonfinite_skips', float(self.num_nonfinite))
        print_log(
            f'non-finite total loss ({float(loss.detach())}) at iteration {hub.get_info("iter")}: '
            f'the optimizer step is skipped ({self.consecutive_nonfinite} in a row, '
            f'{self.num_nonfinite} in all)',
            logger='current',
            level=logging.WARNING,
        )
        if self.consecutive_nonfinite >= self.max_consecutive_nonfinite:
            raise FloatingPointError(
                f'the total loss was non-finite in {self.consecutive_nonfinite} iterations in a '
                f'row (max_consecutive_nonfinite={self.max_consecutive_nonfinite}); lower the '
                'learning rate or check the data and the teacher'
            )
        self.backward(loss)  # pairs DDP's gradient all-reduce; the gradients are discarded
        self.zero_grad(**(zero_kwargs or {}))


@OPTIM_WRAPPERS.register_module()
class NonFiniteSkipOptimWrapper(NonFiniteSkipMixin, OptimWrapper):
    """``OptimWrapper`` that skips non-finite losses (see ``NonFiniteSkipMixin``).

    Args:
        max_consecutive_nonfinite (int): skips in a row before training stops. Defaults to 10.
        **kwargs: ``OptimWrapper`` arguments.
    """

    def __init__(self, *args, max_consecutive_nonfinite: int = 10, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_skip(max_consecutive_nonfinite)


@OPTIM_WRAPPERS.register_module()
class NonFiniteSkipAmpOptimWrapper(NonFiniteSkipMixin, AmpOptimWrapper):
    """``AmpOptimWrapper`` that skips non-finite losses (see ``NonFiniteSkipMixin``); its loss
    scaler still skips steps with non-finite *gradients* as usual."""

    def __init__(self, *args, max_consecutive_nonfinite: int = 10, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_skip(max_consecutive_nonfinite)
