"""Decoupled KD (Zhao et al., CVPR 2022) with one temperature (or a pair) per instance."""

from typing import Optional, Tuple

import torch
from torch import Tensor

from rlkd_mm.registry import MODELS

from .base_kd_loss import BaseInstanceKDLoss
from .utils import TemperatureType


def _decoupled_log_probs(logits: Tensor, target_mask: Tensor) -> Tuple[Tensor, Tensor]:
    """Log-probabilities of the binary (target, non-target) split and of the non-target classes.

    Args:
        logits (Tensor): Tempered logits, shape [N, C].
        target_mask (Tensor): Bool one-hot of the ground-truth class, shape [N, C].

    Returns:
        tuple[Tensor, Tensor]: ``log_b`` [N, 2] = (log p_target, log(1 - p_target)) and
        ``log_q`` [N, C], the log-softmax over the non-target classes only, set to 0 at the
        target column (which the callers mask out).
    """
    lse_all = torch.logsumexp(logits, dim=1)
    lse_non_target = torch.logsumexp(logits.masked_fill(target_mask, float('-inf')), dim=1)
    target_logit = (logits * target_mask).sum(dim=1)
    # Both binary log-probabilities come from logsumexp differences, never from log(1 - p),
    # so a teacher that is certain (p_target -> 1) stays finite.
    log_b = torch.stack([target_logit - lse_all, lse_non_target - lse_all], dim=1)
    log_q = (logits - lse_non_target[:, None]).masked_fill(target_mask, 0.0)
    return log_b, log_q


def instance_dkd_loss(
    preds_S: Tensor,
    preds_T: Tensor,
    gt_labels: Tensor,
    t_s: Tensor,
    t_t: Tensor,
    alpha: float = 1.0,
    beta: float = 8.0,
    prefactor: Optional[Tensor] = None,
) -> Tensor:
    """Per-instance DKD loss ``T_s * T_t * (alpha * TCKD + beta * NCKD)``.

    Args:
        preds_S (Tensor): Student logits, shape [N, C], C >= 2.
        preds_T (Tensor): Teacher logits, shape [N, C]. Detached here.
        gt_labels (Tensor): Ground-truth class indices, shape [N], int64.
        t_s (Tensor): Student temperatures, shape [N].
        t_t (Tensor): Teacher temperatures, shape [N].
        alpha (float): Weight of the target-class term TCKD.
        beta (float): Weight of the non-target-class term NCKD.
        prefactor (Tensor, optional): Shape [N], replaces ``T_s * T_t``.

    Returns:
        Tensor: Loss per instance, shape [N].
    """
    target_mask = torch.zeros_like(preds_S, dtype=torch.bool)
    target_mask.scatter_(1, gt_labels[:, None], True)
    log_b_s, log_q_s = _decoupled_log_probs(preds_S / t_s[:, None], target_mask)
    log_b_t, log_q_t = _decoupled_log_probs(preds_T.detach() / t_t[:, None], target_mask)

    tckd = (log_b_t.exp() * (log_b_t - log_b_s)).sum(dim=1)
    # Excluding the target column exactly is the limit of the reference code's "subtract 1000
    # from the target logit", and unlike it stays exact for logits of any magnitude.
    q_t = log_q_t.exp().masked_fill(target_mask, 0.0)
    nckd = (q_t * (log_q_t - log_q_s)).sum(dim=1)
    loss = alpha * tckd + beta * nckd
    return loss * t_s * t_t if prefactor is None else loss * prefactor


@MODELS.register_module()
class InstanceDKDLoss(BaseInstanceKDLoss):
    """Decoupled knowledge distillation whose temperature may differ per instance.

    DKD splits the KD loss of instance i into TCKD, the binary KL between teacher and student
    over (target class, all other classes), and NCKD, the KL between their distributions over
    the non-target classes alone (renormalised without the target class). Both use the
    instance's temperatures, ``p = softmax(z / T)``, and both are scaled by ``T_s,i * T_t,i``
    (or by a ``prefactor`` [N] given to ``forward``):

    ``loss_i = T_s,i * T_t,i * (alpha * TCKD_i + beta * NCKD_i)``.

    'mean' averages over the N instances like the reference DKD code (which sums and divides by
    the batch size). DKD's warm-up of the loss weight over the first epochs is a schedule and
    belongs to the distiller, not to this loss.

    Args:
        alpha (float): Weight of TCKD. Defaults to 1.0.
        beta (float): Weight of NCKD. Defaults to 8.0.
        reduction (str): 'none', 'mean' or 'sum'. Defaults to 'mean'.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 8.0,
        reduction: str = 'mean',
        loss_weight: float = 1.0,
    ) -> None:
        super().__init__(reduction=reduction, loss_weight=loss_weight)
        self.alpha = alpha
        self.beta = beta

    def forward(
        self,
        preds_S: Tensor,
        preds_T: Tensor,
        temperature: TemperatureType,
        gt_labels: Optional[Tensor] = None,
        weight: Optional[Tensor] = None,
        avg_factor: Optional[float] = None,
        reduction_override: Optional[str] = None,
        prefactor: Optional[Tensor] = None,
    ) -> Tensor:
        """Compute the loss.

        Args:
            preds_S (Tensor): Student logits, shape [N, C] with C >= 2.
            preds_T (Tensor): Teacher logits, shape [N, C].
            temperature (float | Tensor | tuple): A number, a tensor [N] (or 0-dim), or a pair
                ``(T_s[N], T_t[N])``.
            gt_labels (Tensor): Ground-truth class of each instance, integer tensor [N] with
                values in [0, C). Required (optional in the signature only, as in every KD
                loss, so that distillers pass it by keyword).
            weight (Tensor, optional): Per-instance weight, shape [N].
            avg_factor (float, optional): Divisor of the summed loss for 'mean'.
            reduction_override (str, optional): Replaces ``self.reduction`` for this call.
            prefactor (Tensor, optional): Per-instance multiplier [N] (or a number) in place of
                ``T_s * T_t``. Gradient kept.

        Returns:
            Tensor: Shape [N] for 'none', else 0-dim.
        """
        reduction, t_s, t_t, prefactor = self._prepare(
            preds_S, preds_T, temperature, weight, reduction_override, prefactor
        )
        n, num_classes = preds_S.shape
        if num_classes < 2:
            raise ValueError(
                f'DKD needs at least 2 classes, got preds_S of shape {tuple(preds_S.shape)}'
            )
        self._check_labels(gt_labels, n, num_classes)
        loss = instance_dkd_loss(
            preds_S, preds_T, gt_labels.long(), t_s, t_t, self.alpha, self.beta, prefactor
        )
        return self._reduce(loss, weight, reduction, avg_factor)

    @staticmethod
    def _check_labels(gt_labels: Optional[Tensor], n: int, num_classes: int) -> None:
        if gt_labels is None:
            raise ValueError('InstanceDKDLoss needs gt_labels, the [N] labels, got None')
        if not isinstance(gt_labels, Tensor):
            raise TypeError(f'gt_labels must be a tensor, got {type(gt_labels).__name__}')
        if (
            gt_labels.dtype.is_floating_point
            or gt_labels.dtype.is_complex
            or gt_labels.dtype == torch.bool
        ):
            raise TypeError(f'gt_labels must be an integer tensor, got dtype={gt_labels.dtype}')
        if tuple(gt_labels.shape) != (n,):
            raise ValueError(
                f'gt_labels must have shape [N]=({n},), got shape {tuple(gt_labels.shape)}'
            )
        if n > 0 and (int(gt_labels.min()) < 0 or int(gt_labels.max()) >= num_classes):
            raise ValueError(
                f'gt_labels must lie in [0, {num_classes}), got values in '
                f'[{int(gt_labels.min())}, {int(gt_labels.max())}]'
            )
