"""Shared arguments, checks and reduction of the per-instance KD losses."""

from typing import Callable, Optional, Tuple

from torch import Tensor, nn

from .utils import (
    TemperatureType,
    check_instance_weight,
    check_logit_pair,
    check_prefactor,
    check_reduction,
    split_temperature,
    weight_reduce_loss,
)


class BaseInstanceKDLoss(nn.Module):
    """Base of the KD losses that take one temperature (or a student/teacher pair) per instance.

    Subclasses compute a per-instance loss of shape [N]; this class checks the inputs, splits the
    temperature argument into ``(T_s[N], T_t[N])`` and applies mmdet's weighting and reduction
    (``weight``, ``avg_factor``, ``reduction_override``) and ``loss_weight``.

    Every instance's divergence is multiplied by ``T_s * T_t`` (Hinton's ``T^2`` for a shared T)
    unless a ``prefactor`` [N] is given, which then replaces that factor (its gradient is kept):
    the scale a temperature policy's authors use (``TemperatureOutput.prefactor``).

    Every KD loss takes the instances' labels as the keyword ``gt_labels`` ([N] class indices,
    or None), so that a distiller passes them to any KD loss alike; a loss that does not use
    them (this base and its plain-KD subclasses) ignores them.

    Args:
        reduction (str): 'none', 'mean' or 'sum'. Defaults to 'mean'.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    #: number of dimensions of ``preds_S`` / ``preds_T`` (instances first)
    pred_dim = 2

    def __init__(self, reduction: str = 'mean', loss_weight: float = 1.0) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.loss_weight = loss_weight

    def _prepare(
        self,
        preds_S: Tensor,
        preds_T: Tensor,
        temperature: TemperatureType,
        weight: Optional[Tensor],
        reduction_override: Optional[str],
        prefactor: Optional[Tensor] = None,
    ) -> Tuple[str, Tensor, Tensor, Optional[Tensor]]:
        """Check the inputs; return the reduction to use, the temperatures ``(T_s, T_t)`` and
        the prefactor ([N] or None)."""
        reduction = check_reduction(reduction_override or self.reduction, 'reduction_override')
        check_logit_pair(preds_S, preds_T, self.pred_dim)
        n = preds_S.shape[0]
        check_instance_weight(weight, n)
        t_s, t_t = split_temperature(temperature, n, preds_S)
        return reduction, t_s, t_t, check_prefactor(prefactor, n, preds_S)

    def _reduce(
        self,
        loss: Tensor,
        weight: Optional[Tensor],
        reduction: str,
        avg_factor: Optional[float],
    ) -> Tensor:
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)

    #: the functional per-instance loss of a subclass,
    #: ``fn(preds_S, preds_T, t_s[N], t_t[N], prefactor[N] | None) -> loss[N]``
    instance_loss_fn: Optional[Callable[..., Tensor]] = None

    def _instance_loss(
        self,
        preds_S: Tensor,
        preds_T: Tensor,
        t_s: Tensor,
        t_t: Tensor,
        prefactor: Optional[Tensor] = None,
    ) -> Tensor:
        if self.instance_loss_fn is None:
            raise NotImplementedError(f'{type(self).__name__} defines no instance_loss_fn')
        return self.instance_loss_fn(preds_S, preds_T, t_s, t_t, prefactor)

    def forward(
        self,
        preds_S: Tensor,
        preds_T: Tensor,
        temperature: TemperatureType,
        weight: Optional[Tensor] = None,
        avg_factor: Optional[float] = None,
        reduction_override: Optional[str] = None,
        prefactor: Optional[Tensor] = None,
        gt_labels: Optional[Tensor] = None,
    ) -> Tensor:
        """Compute the loss.

        Args:
            preds_S (Tensor): Student outputs of N instances (shape: see the subclass).
            preds_T (Tensor): Teacher outputs, same shape. Detached by the loss.
            temperature (float | Tensor | tuple): A number, a tensor [N] (or 0-dim), or a pair
                ``(T_s[N], T_t[N])``; see :func:`split_temperature`.
            weight (Tensor, optional): Per-instance weight, shape [N].
            avg_factor (float, optional): Divisor of the summed loss for 'mean'.
            reduction_override (str, optional): Replaces ``self.reduction`` for this call.
            prefactor (Tensor, optional): Per-instance multiplier of the divergence, shape [N]
                (or a number), in place of ``T_s * T_t``. Gradient kept.
            gt_labels (Tensor, optional): The instances' labels [N]; not used here.

        Returns:
            Tensor: Shape [N] for 'none', else 0-dim.
        """
        reduction, t_s, t_t, prefactor = self._prepare(
            preds_S, preds_T, temperature, weight, reduction_override, prefactor
        )
        loss = self._instance_loss(preds_S, preds_T, t_s, t_t, prefactor)
        return self._reduce(loss, weight, reduction, avg_factor)
