"""The clipped PPO policy objective, on its own so that it can be checked term by term."""

from typing import Tuple

import torch
from torch import Tensor


def clipped_policy_loss(
    log_probs: Tensor, old_log_probs: Tensor, advantages: Tensor, weights: Tensor, clip_eps: float
) -> Tuple[Tensor, Tensor, Tensor]:
    """PPO's clipped surrogate over the instances with ``weights > 0``.

    ``L = -sum_i w_i min(rho_i A_i, clip(rho_i, 1 - eps, 1 + eps) A_i) / sum_i w_i`` with
    ``rho_i = exp(log_probs_i - old_log_probs_i)``. An instance whose ratio lies outside the
    clip range on the side its advantage favours contributes no gradient.

    Args:
        log_probs (Tensor): ``[N]`` log-probabilities under the current policy (with grad).
        old_log_probs (Tensor): ``[N]`` log-probabilities under the acting policy.
        advantages (Tensor): ``[N]``.
        weights (Tensor): ``[N]`` 1 for instances that take part (explored), else 0.
        clip_eps (float): the clip range.

    Returns:
        tuple[Tensor, Tensor, Tensor]: the loss, the approximate KL ``mean((rho - 1) - log rho)``
        and the fraction of clipped ratios (both detached, over the weighted instances).
    """
    log_ratio = log_probs - old_log_probs
    ratio = log_ratio.exp()
    denom = weights.sum().clamp_min(1.0)
    clipped = ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps)
    surrogate = torch.min(ratio * advantages, clipped * advantages)
    # torch.where, not a product: unweighted terms must not leak even as 0 * inf.
    loss = -torch.where(weights > 0, surrogate, 0.0).sum() / denom
    with torch.no_grad():
        kl = torch.where(weights > 0, (ratio - 1.0) - log_ratio, 0.0).sum() / denom
        clip = (((ratio - 1.0).abs() > clip_eps).to(weights.dtype) * weights).sum() / denom
    return loss, kl, clip
