"""AccumulatedGradHook: gradients accumulated since the last optimizer step survive a resume."""

import logging
from typing import Any, Dict, List, Optional

import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from rlkd_mm.registry import HOOKS

from .random_state_hook import iter_checkpoint_due


@HOOKS.register_module()
class AccumulatedGradHook(Hook):
    """Saves the student's accumulated gradients with a checkpoint that falls mid-accumulation.

    With ``optim_wrapper.accumulative_counts`` > 1 the optimizer steps every few iterations;
    the gradients summed since the last step live in the parameters' ``.grad`` only, which
    mmengine neither saves nor restores (it warns that they are lost), so a run resumed from
    such a checkpoint takes a different step. This hook saves them
    (``checkpoint['accumulated_grads']``, one entry per rank: under DDP the ranks accumulate
    different local gradients until the synchronising iteration) and gives each rank its own
    back before training continues. Nothing is saved at a checkpoint that follows a step.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._gathered: Optional[List[Optional[Dict[str, torch.Tensor]]]] = None
        self._loaded: Optional[List[Optional[Dict[str, torch.Tensor]]]] = None

    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    @staticmethod
    def _mid_accumulation(runner) -> bool:
        """Whether the last ``update_params`` accumulated without stepping."""
        should_update = getattr(getattr(runner, 'optim_wrapper', None), 'should_update', None)
        return should_update is not None and not should_update()

    def _grads(self, runner) -> Optional[Dict[str, torch.Tensor]]:
        if not self._mid_accumulation(runner):
            return None
        return {
            name: p.grad.detach().to('cpu', copy=True)
            for name, p in self._model(runner).named_parameters()
            if p.grad is not None
        }

    def _gather(self, runner) -> None:
        if get_world_size() > 1 and self._mid_accumulation(runner):
            self._gathered = all_gather_object(self._grads(runner))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if get_world_size() > 1 and iter_checkpoint_due(runner):
            self._gather(runner)

    def after_train_epoch(self, runner) -> None:
        self._gather(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        grads = self._gathered if self._gathered is not None else [self._grads(runner)]
        self._gathered = None
        if any(g is not None for g in grads):
            checkpoint['accumulated_grads'] = grads

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if getattr(runner, '_resume', True):
            self._loaded = checkpoint.get('accumulated_grads')

    def before_train(self, runner) -> None:
        # After load_or_resume and the optimizer wrapper's count initialisation.
        loaded, self._loaded = self._loaded, None
        if loaded is None:
            return
        if len(loaded) != get_world_size():
            print_log(
                f'AccumulatedGradHook: the checkpoint holds the accumulated gradients of '
                f'{len(loaded)} rank(s), this run has {get_world_size()}; they are dropped',
                logger='current',
                level=logging.WARNING,
            )
            return
        grads: Dict[str, Any] = loaded[get_rank()] or {}
        for name, param in self._model(runner).named_parameters():
            if name in grads:
                param.grad = grads[name].to(param.device, param.dtype)
