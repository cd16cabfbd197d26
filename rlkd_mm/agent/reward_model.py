"""Instance reward calibration: a learned decomposition of the batch reward."""

import torch
from torch import Tensor, nn


def split_batch_rewards(
    contributions: Tensor, batch_index: Tensor, batch_rewards: Tensor
) -> Tensor:
    """Instance rewards that credit the contributions and keep every batch's reward exactly.

    ``r_i = c_i + (R_b - sum_{j in b} c_j) / B_b`` for instance ``i`` of batch ``b``.

    Args:
        contributions (Tensor): ``[N]`` credits ``c_i`` of the instances of all batches.
        batch_index (Tensor): ``[N]`` long, the batch (0..M-1) of each instance.
        batch_rewards (Tensor): ``[M]`` batch rewards ``R_b``.

    Returns:
        Tensor: ``[N]`` instance rewards, summing to ``R_b`` over each batch.
    """
    num = batch_rewards.numel()
    sums = contributions.new_zeros(num).index_add(0, batch_index, contributions)
    sizes = contributions.new_zeros(num).index_add(0, batch_index, torch.ones_like(contributions))
    residual = (batch_rewards.to(contributions.dtype) - sums) / sizes.clamp_min(1.0)
    return contributions + residual[batch_index]


def calibrate_rewards(contributions: Tensor, batch_reward: float) -> Tensor:
    """Instance rewards of one batch: ``r_i = c_i + (R - sum_j c_j) / B``
    (:func:`split_batch_rewards` for a single batch).

    Args:
        contributions (Tensor): ``[B]`` credits ``c_i`` of one batch.
        batch_reward (float): the batch reward ``R``.

    Returns:
        Tensor: ``[B]`` calibrated instance rewards, ``sum_i r_i = R``.
    """
    if contributions.dim() != 1 or contributions.numel() == 0:
        raise ValueError(
            f'contributions must be a non-empty [B] tensor, got {tuple(contributions.shape)}'
        )
    index = torch.zeros(contributions.numel(), dtype=torch.long, device=contributions.device)
    return split_batch_rewards(contributions, index, contributions.new_tensor([batch_reward]))


class RewardModel(nn.Module):
    """``g(s, u)``: the contribution of an instance and its action to the batch reward.

    Trained online (by the agent) so that the sum of ``g`` over a batch predicts that batch's
    reward; see :meth:`batch_loss`. The action enters as the temperature rescaled to [0, 1],
    ``u = (T - t_min) / (t_max - t_min)``, which is bounded, unlike the pre-squash action.

    Args:
        state_dim (int): number of state features D.
        hidden_dim (int): hidden width.
    """

    def __init__(self, state_dim: int, hidden_dim: int = 64) -> None:
        super().__init__()
        if state_dim <= 0:
            raise ValueError(f'state_dim must be > 0, got state_dim={state_dim}')
        if hidden_dim <= 0:
            raise ValueError(f'hidden_dim must be > 0, got hidden_dim={hidden_dim}')
        self.net = nn.Sequential(
            nn.Linear(state_dim + 1, hidden_dim),
            nn.Tanh(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.Tanh(),
            nn.Linear(hidden_dim, 1),
        )
        # Start from g = 0, i.e. from the uniform split r_i = R / B.
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, states: Tensor, actions: Tensor) -> Tensor:
        """Contributions ``[N]`` of states ``[N, D]`` and rescaled actions ``u`` ``[N]``."""
        return self.net(torch.cat([states, actions.to(states.dtype)[:, None]], dim=1)).squeeze(-1)

    def batch_loss(
        self, states: Tensor, actions: Tensor, batch_index: Tensor, batch_rewards: Tensor
    ) -> Tensor:
        """Mean squared error between the per-batch sums of ``g`` and the batch rewards.

        Args:
            states (Tensor): ``[N, D]`` states of the instances of all batches.
            actions (Tensor): ``[N]`` rescaled actions ``u``.
            batch_index (Tensor): ``[N]`` long, the batch (0..M-1) each instance belongs to.
            batch_rewards (Tensor): ``[M]`` batch rewards.

        Returns:
            Tensor: scalar loss.
        """
        contributions = self(states, actions)
        sums = contributions.new_zeros(batch_rewards.shape).index_add(0, batch_index, contributions)
        return ((sums - batch_rewards) ** 2).mean()
