"""Instance reward calibration of batch-level rewards: the reward model, its validation, and the
one formula that splits a batch reward into instance rewards."""

from collections import deque
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from .optim_utils import optimizer_state_tensors, optimizer_to
from .reward_model import RewardModel, split_batch_rewards
from .state import RunningNorm


class RewardCalibrator:
    """Decomposes batch rewards into per-instance rewards with a learned reward model.

    ``g(s, u)`` (``RewardModel``, ``u`` the temperature rescaled to [0, 1]) is fitted on the
    recent batches of the reward window so that its batch sums predict the batch rewards. Each
    instance is credited with the part of ``g`` its action explains,
    ``c_i = g(s_i, u_i) - g(s_i, u(mean action of s_i))`` (state-only terms, e.g. how easy the
    batch is, carry no information about the action), and the rest of the batch reward is split
    equally: ``r_i = c_i + (R - sum_j c_j) / B`` (:func:`split_batch_rewards`), so each batch
    keeps its sum exactly.

    Safeguard: ``g`` is fitted on the older batches of the window and validated on the newest
    ``holdout`` fraction; unless its batch sums beat a constant predictor there
    (``R^2 > min_r2``), all ``c_i`` are 0, i.e. the equal split ``R / B``. The choice is kept in
    ``learned`` (a tensor, so that DDP can broadcast it).

    Args:
        state_dim (int): state features D.
        hidden_dim (int): hidden width of ``g``.
        lr (float): Adam learning rate of ``g``.
        steps (int): full-batch steps per fit.
        window (int): number of recent batches kept for the fit.
        holdout (float): validated fraction of the window, in (0, 1).
        min_r2 (float): validation threshold.
        weight_decay (float): Adam weight decay of ``g``.
    """

    def __init__(
        self,
        state_dim: int,
        hidden_dim: int,
        lr: float,
        steps: int,
        window: int,
        holdout: float,
        min_r2: float,
        weight_decay: float = 0.0,
    ) -> None:
        self.model = RewardModel(state_dim, hidden_dim)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr, weight_decay=weight_decay)
        self.steps = steps
        self.holdout = holdout
        self.min_r2 = min_r2
        self.learned = torch.zeros((), dtype=torch.float32)
        # (raw_states [B, D], rescaled temperatures [B], batch reward) of recent batches
        self.window: deque = deque(maxlen=window)

    @property
    def uses_learned(self) -> bool:
        return bool(self.learned > 0.5)

    def add(self, raw_states: Tensor, rescaled: Tensor, batch_reward: float) -> None:
        self.window.append((raw_states, rescaled, float(batch_reward)))

    def fit(self, norm: RunningNorm) -> Tuple[float, float]:
        """Fit ``g`` on the older batches of the window, validate it on the newest.

        Returns:
            tuple[float, float]: last training loss and held-out R^2 (both 0 when the window
            holds fewer than two batches or ``steps == 0``; no learned calibration then).
        """
        self.learned.fill_(0.0)
        num_batches = len(self.window)
        if num_batches < 2 or self.steps == 0:
            return 0.0, 0.0
        device = self.learned.device
        num_holdout = min(max(1, round(num_batches * self.holdout)), num_batches - 1)
        num_fit = num_batches - num_holdout
        states = norm.normalize(torch.cat([s for s, _, _ in self.window]))
        actions = torch.cat([u for _, u, _ in self.window])
        size_list = [u.numel() for _, u, _ in self.window]
        batch_index = torch.repeat_interleave(
            torch.arange(num_batches, device=device), torch.tensor(size_list, device=device)
        )
        rewards = torch.tensor([r for _, _, r in self.window], dtype=torch.float32, device=device)
        # The window is ordered oldest first: the fitted batches are a prefix.
        cut = sum(size_list[:num_fit])
        fit_args = (states[:cut], actions[:cut], batch_index[:cut], rewards[:num_fit])
        loss = states.new_zeros(())
        with torch.enable_grad():
            for _ in range(self.steps):
                loss = self.model.batch_loss(*fit_args)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
        with torch.no_grad():
            contributions = self.model(states[cut:], actions[cut:])
            sums = contributions.new_zeros(num_holdout).index_add(
                0, batch_index[cut:] - num_fit, contributions
            )
            held_out = rewards[num_fit:]
            sse_model = ((sums - held_out) ** 2).sum()
            sse_const = ((held_out - rewards[:num_fit].mean()) ** 2).sum()
            r2 = 1.0 - sse_model / sse_const.clamp_min(1e-12)
            self.learned.copy_((r2 > self.min_r2).float())
        return float(loss.detach()), float(r2)

    @torch.no_grad()
    def contributions(
        self,
        states: Tensor,
        rescaled: Tensor,
        mean_rescaled: Callable[[Tensor], Tensor],
    ) -> Tensor:
        """Action-dependent credit ``c_i`` [N] of normalised states and rescaled actions;
        ``mean_rescaled(states)`` gives the rescaled mean actions. Zeros without a validated
        reward model."""
        if not self.uses_learned:
            return rescaled.new_zeros(rescaled.shape[0])
        return self.model(states, rescaled) - self.model(states, mean_rescaled(states))

    @torch.no_grad()
    def instance_rewards(
        self, contributions: Tensor, batch_index: Tensor, batch_rewards: Tensor
    ) -> Tensor:
        return split_batch_rewards(contributions, batch_index, batch_rewards)

    # ------------------------------------------------------------------ plumbing
    def tensors(self) -> List[Tensor]:
        return list(self.model.state_dict().values()) + [self.learned]

    def optimizer_tensors(self) -> List[Tensor]:
        return optimizer_state_tensors(self.optimizer, self.model)

    def to(self, device: Any) -> 'RewardCalibrator':
        self.model.to(device)
        self.learned = self.learned.to(device)
        optimizer_to(self.optimizer, device)
        self.window = deque(
            ((s.to(device), u.to(device), r) for s, u, r in self.window),
            maxlen=self.window.maxlen,
        )
        return self

    def state_dict(self, to_cpu: Callable[[Any], Any]) -> Dict[str, Any]:
        return dict(
            reward_model=to_cpu(self.model.state_dict()),
            reward_optimizer=to_cpu(self.optimizer.state_dict()),
            reward_window=[(to_cpu(s), to_cpu(u), r) for s, u, r in self.window],
            calibration_learned=float(self.learned),
        )

    def load_state_dict(self, state: Dict[str, Any], device: Optional[Any] = None) -> None:
        device = device if device is not None else self.learned.device
        self.model.load_state_dict(state['reward_model'])
        self.optimizer.load_state_dict(state['reward_optimizer'])
        self.window = deque(
            ((s.to(device), u.to(device), float(r)) for s, u, r in state['reward_window']),
            maxlen=self.window.maxlen,
        )
        self.learned.fill_(float(state.get('calibration_learned', 0.0)))
