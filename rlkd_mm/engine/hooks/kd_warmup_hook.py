"""KDWarmupHook: ramp the distillation terms in linearly over the first iterations or epochs."""

from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from rlkd_mm.registry import HOOKS


@HOOKS.register_module()
class KDWarmupHook(Hook):
    """Scale the distiller's KD terms by ``min(1, (i + 1) / warmup_iters)`` at iteration ``i``.

    DKD's recipe ramps its KD term in linearly over the first epochs (its non-target term is
    strong enough early on to swamp the student's own loss). The ramp is a training schedule, not
    part of the loss formula, so it lives here: before every training iteration the hook sets the
    distiller's ``kd_warmup_factor``, which the distillers multiply into their KD terms
    (``loss_kd``, ``loss_ld``, ``loss_reg_kd``). The factor depends only on the iteration, so a
    resumed run continues the ramp exactly.

    Args:
        warmup (int): Length of the ramp, >= 1, in epochs (``by_epoch=True``) or iterations.
        by_epoch (bool): Whether ``warmup`` counts epochs (converted with the length of the
            training dataloader). Defaults to True.

    Example:
        >>> custom_hooks = [dict(type='rlkd_mm.KDWarmupHook', warmup=5)]
    """

    priority = 'NORMAL'

    def __init__(self, warmup: int, by_epoch: bool = True) -> None:
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 1:
            raise ValueError(f'warmup must be an int >= 1, got warmup={warmup!r}')
        self.warmup = warmup
        self.by_epoch = bool(by_epoch)
        self.warmup_iters: Optional[int] = None

    @staticmethod
    def _distiller(runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'kd_warmup_factor'):
            raise TypeError(
                'KDWarmupHook needs a distiller (with kd_warmup_factor), got '
                f'{type(model).__name__}'
            )
        return model

    def before_train(self, runner) -> None:
        self._distiller(runner)
        self.warmup_iters = (
            self.warmup * len(runner.train_dataloader) if self.by_epoch else self.warmup
        )

    def factor(self, iteration: int) -> float:
        """The KD scale at (0-based) training iteration ``iteration``."""
        return min(1.0, (iteration + 1) / self.warmup_iters)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._distiller(runner).kd_warmup_factor = self.factor(runner.iter)

    def after_train(self, runner) -> None:
        self._distiller(runner).kd_warmup_factor = 1.0
