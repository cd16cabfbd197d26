"""PPO for the RLKD agent: the clipped policy objective and the minibatch learner."""

from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .optim_utils import optimizer_state_tensors


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


class PPOLearner:
    """The actor-critic's optimisation: clipped PPO with a value loss and an entropy bonus.

    Args:
        net (ActorCritic): the actor-critic.
        lr (float): Adam learning rate.
        clip_eps (float): PPO clip range.
        ppo_epochs (int): epochs over the rollout per update.
        minibatch_size (int): instances per minibatch.
        value_coef (float): weight of the value loss.
        entropy_coef (float): weight of the entropy bonus.
        max_grad_norm (float): gradient-norm clip.
        seed (int): seed of the minibatch generator (a CPU generator: identical draws on all
            DDP ranks, so identical updates from identical experience).
    """

    def __init__(
        self,
        net,
        lr: float,
        clip_eps: float,
        ppo_epochs: int,
        minibatch_size: int,
        value_coef: float,
        entropy_coef: float,
        max_grad_norm: float,
        seed: int,
    ) -> None:
        self.net = net
        self.optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        self.clip_eps = clip_eps
        self.ppo_epochs = ppo_epochs
        self.minibatch_size = minibatch_size
        self.value_coef = value_coef
        self.entropy_coef = entropy_coef
        self.max_grad_norm = max_grad_norm
        self.generator = torch.Generator().manual_seed(seed)

    def epoch_order(self, hq_mask: Tensor, exploring: bool) -> Tensor:
        """Instance indices of one PPO epoch (CPU long tensor). In the exploration phase the
        high-quality instances come first and the others only top the epoch up to one
        minibatch."""
        gen = self.generator
        num = hq_mask.numel()
        if not exploring:
            return torch.randperm(num, generator=gen)
        hq_cpu = hq_mask.cpu()
        hq_idx = hq_cpu.nonzero().squeeze(1)
        other_idx = (~hq_cpu).nonzero().squeeze(1)
        hq_idx = hq_idx[torch.randperm(hq_idx.numel(), generator=gen)]
        other_idx = other_idx[torch.randperm(other_idx.numel(), generator=gen)]
        num_used = max(hq_idx.numel(), min(self.minibatch_size, num))
        return torch.cat([hq_idx, other_idx])[:num_used]

    @torch.enable_grad()
    def optimise(
        self,
        steps,
        advantages: Tensor,
        returns: Tensor,
        policy_weights: Tensor,
        exploring: bool,
    ) -> Dict[str, float]:
        """``ppo_epochs`` epochs of minibatch steps on one rollout.

        Args:
            steps (AgentStep): the rollout's instances (normalised states, actions, acting
                log-probabilities, hq mask).
            advantages (Tensor): ``[N]`` normalised advantages.
            returns (Tensor): ``[N]`` value targets.
            policy_weights (Tensor): ``[N]`` 1 for explored instances (policy and entropy
                terms), 0 for the others (critic only).
            exploring (bool): exploration phase (minibatch order).

        Returns:
            dict[str, float]: mean losses, approx-KL and clip fraction over minibatches, and
            the first minibatch's largest |ratio - 1| and approx-KL (0 when the policy that
            acted is the one being optimised).
        """
        device = advantages.device
        keys = ('policy_loss', 'value_loss', 'entropy', 'approx_kl', 'clip_fraction')
        sums = {k: torch.zeros((), device=device) for k in keys}
        first: Dict[str, float] = {}
        num_minibatches = 0
        params = list(self.net.parameters())
        for _ in range(self.ppo_epochs):
            order = self.epoch_order(steps.hq_mask, exploring).to(device)
            for idx in order.split(self.minibatch_size):
                mu, values = self.net(steps.states[idx])
                dist = self.net.distribution(mu)
                log_probs = dist.log_prob(steps.actions[idx])
                weight = policy_weights[idx]
                denom = weight.sum().clamp_min(1.0)
                policy_loss, kl, clip = clipped_policy_loss(
                    log_probs, steps.log_probs[idx], advantages[idx], weight, self.clip_eps
                )
                value_loss = F.mse_loss(values, returns[idx])
                entropy = (dist.entropy() * weight).sum() / denom
                loss = policy_loss + self.value_coef * value_loss - self.entropy_coef * entropy
                self.optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
                self.optimizer.step()
                self.net.clamp_log_std_()
                with torch.no_grad():
                    sums['policy_loss'] += policy_loss.detach()
                    sums['value_loss'] += value_loss.detach()
                    sums['entropy'] += entropy.detach()
                    sums['approx_kl'] += kl
                    sums['clip_fraction'] += clip
                    if num_minibatches == 0:
                        ratio = (log_probs.detach() - steps.log_probs[idx]).exp()
                        dev = torch.where(weight > 0, (ratio - 1.0).abs(), 0.0)
                        first = dict(
                            first_ratio_max_dev=float(dev.max()), first_approx_kl=float(kl)
                        )
                num_minibatches += 1
        stats = {k: float(v) / max(num_minibatches, 1) for k, v in sums.items()}
        stats.update(first)
        return stats

    def optimizer_tensors(self) -> List[Tensor]:
        return optimizer_state_tensors(self.optimizer, self.net)
