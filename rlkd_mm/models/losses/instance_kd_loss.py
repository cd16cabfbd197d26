"""Hinton KD loss with one temperature (or a student/teacher pair) per instance."""

from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from rlkd_mm.registry import MODELS

from .base_kd_loss import BaseInstanceKDLoss


def instance_kd_loss(
    preds_S: Tensor,
    preds_T: Tensor,
    t_s: Tensor,
    t_t: Tensor,
    prefactor: Optional[Tensor] = None,
) -> Tensor:
    """Per-instance KD loss ``T_s * T_t * KL(softmax(z_t / T_t) || softmax(z_s / T_s))``.

    Args:
        preds_S (Tensor): Student logits, shape [N, C].
        preds_T (Tensor): Teacher logits, shape [N, C]. Detached here.
        t_s (Tensor): Student temperatures, shape [N].
        t_t (Tensor): Teacher temperatures, shape [N].
        prefactor (Tensor, optional): Shape [N], replaces ``T_s * T_t``.

    Returns:
        Tensor: Loss per instance, shape [N] (KL summed over the C classes).
    """
    log_p_s = F.log_softmax(preds_S / t_s[:, None], dim=1)
    log_p_t = F.log_softmax(preds_T.detach() / t_t[:, None], dim=1)
    # log_target keeps a vanishing teacher probability at exactly 0 * finite instead of
    # 0 * log(0), so saturated (e.g. +-1e4) logits stay finite.
    kl = F.kl_div(log_p_s, log_p_t, reduction='none', log_target=True).sum(dim=1)
    return kl * t_s * t_t if prefactor is None else kl * prefactor


@MODELS.register_module()
class InstanceKDLoss(BaseInstanceKDLoss):
    """KL-divergence KD loss whose temperature may differ per instance.

    Per instance i, with student logits ``z_s,i`` and teacher logits ``z_t,i`` over C classes:

    ``loss_i = T_s,i * T_t,i * sum_c p_t,ic * (log p_t,ic - log p_s,ic)``, where
    ``p_t,i = softmax(z_t,i / T_t,i)`` and ``p_s,i = softmax(z_s,i / T_s,i)``.

    With a shared T this is Hinton's ``T^2 * KL``; the ``T_s * T_t`` factor is our default for
    policies that soften student and teacher differently. A policy whose authors scale the KL
    otherwise passes its own factor as ``prefactor`` [N] (logit standardisation: ``tau^2``;
    DTKD: ``alpha * T_s * T_t``), which replaces ``T_s * T_t``. The teacher logits are detached;
    the temperatures and the prefactor keep their gradient, so a learnable policy (CTKD) is
    trained through this loss.

    'mean' averages the per-instance sums over the N instances (PyTorch's ``batchmean``), which
    is the usual classification KD loss. mmdet's ``KnowledgeDistillationKLDivLoss`` also reduces
    over instances with ``reduction='mean'``, but its per-instance term is the KL *averaged* over
    the C classes (``.mean(1)``) with one scalar T: for a scalar T our 'mean' loss equals mmdet's
    times C. Configs porting mmdet loss weights should divide ``loss_weight`` by C.

    Args:
        reduction (str): 'none', 'mean' or 'sum'. Defaults to 'mean'.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    instance_loss_fn = staticmethod(instance_kd_loss)
