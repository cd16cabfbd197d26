"""Squashed-Gaussian actor-critic that maps an instance state to a temperature."""

import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Normal

#: Bounds of the state-independent log standard deviation of the pre-squash action.
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
#: How a pre-squash action becomes a temperature (see ``ActorCritic``).
SQUASHES = ('linear', 'log')


def _mlp(in_dim: int, hidden_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim),
        nn.Tanh(),
        nn.Linear(hidden_dim, hidden_dim),
        nn.Tanh(),
        nn.Linear(hidden_dim, 1),
    )


class ActorCritic(nn.Module):
    """Gaussian actor over a pre-squash action and a state-value critic.

    The action ``a ~ N(mu(s), sigma^2)`` lives in an unbounded space and is squashed into the
    temperature: ``squash='linear'``: ``T = t_min + (t_max - t_min) * sigmoid(a)``;
    ``squash='log'`` (RLKD's multiplier on a base policy): ``log T = log t_init + c * tanh(a)``
    with ``c = log(t_max / t_init)`` for ``a >= 0`` and ``log(t_init / t_min)`` below, so that
    ``a = 0`` gives exactly ``t_init`` (and ``T = 1`` exactly for ``t_init = 1``). ``sigma``
    is a learnable, state-independent parameter whose log is kept in
    ``[LOG_STD_MIN, LOG_STD_MAX]`` by :meth:`clamp_log_std_` after each optimizer step.
    Log-probabilities are always those of the pre-squash Gaussian, i.e. of the variable
    actually sampled; the density of ``T`` itself, with the change of variables, is given by
    :meth:`log_prob_of_temperature`. PPO ratios are identical in either parameterisation
    because the Jacobian term cancels.

    Args:
        state_dim (int): number of state features D.
        hidden_dim (int): width of the two hidden layers of actor and critic.
        t_min (float): lowest temperature.
        t_max (float): highest temperature.
        t_init (float): mean temperature at initialisation, in ``(t_min, t_max)``.
        init_log_std (float): initial log standard deviation of the pre-squash action.
        squash (str): 'linear' or 'log' (see above). With 'log' the actor's last layer starts
            at exactly zero, so the initial policy's mean is ``t_init`` for every state.
    """

    def __init__(
        self,
        state_dim: int,
        hidden_dim: int = 64,
        t_min: float = 1.0,
        t_max: float = 10.0,
        t_init: float = 4.0,
        init_log_std: float = math.log(0.5),
        squash: str = 'linear',
    ) -> None:
        super().__init__()
        check_squash_range(t_min, t_max, t_init)
        if squash not in SQUASHES:
            raise ValueError(f'squash must be one of {SQUASHES}, got squash={squash!r}')
        if state_dim <= 0:
            raise ValueError(f'state_dim must be > 0, got state_dim={state_dim}')
        if hidden_dim <= 0:
            raise ValueError(f'hidden_dim must be > 0, got hidden_dim={hidden_dim}')
        if not LOG_STD_MIN <= init_log_std <= LOG_STD_MAX:
            raise ValueError(
                f'init_log_std must be in [{LOG_STD_MIN}, {LOG_STD_MAX}], got '
                f'init_log_std={init_log_std}'
            )
        self.state_dim = state_dim
        self.t_min = float(t_min)
        self.t_max = float(t_max)
        self.t_init = float(t_init)
        self.squash_type = squash
        self.actor = _mlp(state_dim, hidden_dim)
        self.critic = _mlp(state_dim, hidden_dim)
        self.log_std = nn.Parameter(torch.tensor(float(init_log_std)))
        # A near-zero last layer makes the initial policy state-independent with mean T = t_init,
        # so the first actions continue the warm-up temperature instead of jumping at random.
        last = self.actor[-1]
        if squash == 'log':
            # exactly state-independent: an untrained agent's mean action is t_init bit for bit
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        else:
            u = (t_init - t_min) / (t_max - t_min)
            nn.init.normal_(last.weight, std=1e-3)
            nn.init.constant_(last.bias, math.log(u / (1.0 - u)))
        nn.init.normal_(self.critic[-1].weight, std=1e-2)
        nn.init.zeros_(self.critic[-1].bias)

    @property
    def std(self) -> Tensor:
        """``exp(log_std)`` (0-dim). Not clamped here: a clamp in the graph would give zero
        gradient outside the range, so the range is kept by :meth:`clamp_log_std_` instead."""
        return self.log_std.exp()

    @torch.no_grad()
    def clamp_log_std_(self) -> None:
        """Clamp ``log_std`` in place to ``[LOG_STD_MIN, LOG_STD_MAX]``; call after each
        optimizer step."""
        self.log_std.clamp_(LOG_STD_MIN, LOG_STD_MAX)

    def forward(self, states: Tensor) -> Tuple[Tensor, Tensor]:
        """Action mean and state value.

        Args:
            states (Tensor): ``[N, D]`` normalised states.

        Returns:
            tuple[Tensor, Tensor]: ``mu [N]`` (pre-squash action mean) and ``value [N]``.
        """
        return self.actor(states).squeeze(-1), self.critic(states).squeeze(-1)

    def distribution(self, mu: Tensor) -> Normal:
        """The pre-squash action distribution ``N(mu, sigma^2)`` (``mu``: ``[N]``)."""
        return Normal(mu, self.std.to(mu.dtype).expand_as(mu))

    def _log_scale(self, positive: Tensor, dtype: torch.dtype) -> Tensor:
        """``c`` of the log squash: ``log(t_max / t_init)`` where ``positive``, else
        ``log(t_init / t_min)``."""
        up, down = math.log(self.t_max / self.t_init), math.log(self.t_init / self.t_min)
        return torch.where(positive, up, down).to(dtype)

    def squash(self, action: Tensor) -> Tensor:
        """Temperature ``[N]`` of pre-squash actions ``[N]``."""
        if self.squash_type == 'log':
            c = self._log_scale(action >= 0, action.dtype)
            log_t = math.log(self.t_init) + c * torch.tanh(action)
            return torch.exp(log_t).clamp(self.t_min, self.t_max)
        return self.t_min + (self.t_max - self.t_min) * torch.sigmoid(action)

    def unsquash(self, temperature: Tensor) -> Tensor:
        """Pre-squash action of temperatures strictly inside ``(t_min, t_max)``."""
        if self.squash_type == 'log':
            y = torch.log(temperature) - math.log(self.t_init)
            return torch.atanh(y / self._log_scale(y >= 0, y.dtype))
        u = (temperature - self.t_min) / (self.t_max - self.t_min)
        return torch.log(u) - torch.log1p(-u)

    def log_abs_det(self, action: Tensor) -> Tensor:
        """``log |dT/da|`` of the squash at pre-squash actions ``[N]``."""
        if self.squash_type == 'log':
            c = self._log_scale(action >= 0, action.dtype)
            tanh = torch.tanh(action)
            return torch.log(self.squash(action)) + torch.log(c) + torch.log1p(-tanh * tanh)
        return math.log(self.t_max - self.t_min) + F.logsigmoid(action) + F.logsigmoid(-action)

    def log_prob_of_temperature(self, states: Tensor, temperature: Tensor) -> Tensor:
        """Log-density of ``T`` under the policy, with the change of variables.

        ``log p_T(T | s) = log N(a; mu(s), sigma^2) - log |dT/da|`` with ``a`` the pre-squash
        action of ``T``; for the linear squash ``a = logit(u)``,
        ``u = (T - t_min) / (t_max - t_min)`` and ``dT/da = (t_max - t_min) * u * (1 - u)``.

        Args:
            states (Tensor): ``[N, D]`` normalised states.
            temperature (Tensor): ``[N]`` temperatures strictly inside ``(t_min, t_max)``.

        Returns:
            Tensor: ``[N]`` log-densities.
        """
        mu, _ = self(states)
        action = self.unsquash(temperature)
        return self.distribution(mu).log_prob(action) - self.log_abs_det(action)


def check_squash_range(t_min: float, t_max: float, t_init: float) -> None:
    """Raise ``ValueError`` naming the keys unless ``0 < t_min < t_init < t_max``."""
    if not t_min > 0:
        raise ValueError(f't_min must be > 0, got t_min={t_min}')
    if not t_min < t_max:
        raise ValueError(f't_min must be < t_max, got t_min={t_min}, t_max={t_max}')
    if not t_min < t_init < t_max:
        raise ValueError(
            f't_init must be strictly inside (t_min, t_max) = ({t_min}, {t_max}), '
            f'got t_init={t_init}'
        )
