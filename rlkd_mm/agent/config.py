"""The RLKD agent's settings, validated in one place."""

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional

from .policy import SQUASHES, check_squash_range


def _check(cond: bool, key: str, value: Any, requirement: str) -> None:
    if not cond:
        raise ValueError(f'{key} must be {requirement}, got {key}={value!r}')


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class AgentConfig:
    """Every setting of ``RLKDAgent`` (see its docstring); invalid values raise ``ValueError``
    naming the key."""

    state_dim: int
    t_min: float = 1.0
    t_max: float = 10.0
    t_init: float = 4.0
    hidden_dim: int = 64
    lr: float = 3e-4
    gamma: float = 0.9
    clip_eps: float = 0.2
    ppo_epochs: int = 4
    minibatch_size: int = 256
    value_coef: float = 0.5
    entropy_coef: float = 1e-3
    max_grad_norm: float = 0.5
    hq_tau: float = 0.5
    explore_updates: int = 10
    reward_model_lr: float = 3e-3
    reward_model_steps: int = 50
    reward_window: int = 32
    buffer_size: int = 64
    init_log_std: float = math.log(0.5)
    norm_clip: float = 5.0
    seed: int = 0
    progress_column: Optional[int] = None
    reward_holdout: float = 0.25
    calibration_min_r2: float = 0.0
    reward_model_weight_decay: float = 0.0
    squash: str = 'linear'

    def __post_init__(self) -> None:
        check_squash_range(self.t_min, self.t_max, self.t_init)
        self.t_min, self.t_max = float(self.t_min), float(self.t_max)
        self.t_init = float(self.t_init)
        positive_ints = ('state_dim', 'hidden_dim', 'ppo_epochs', 'minibatch_size')
        positive_ints += ('reward_window', 'buffer_size')
        for key in positive_ints:
            value = getattr(self, key)
            requirement = 'an int > 0' if key in ('state_dim', 'hidden_dim') else 'an int >= 1'
            _check(_is_int(value) and value > 0, key, value, requirement)
        for key in ('explore_updates', 'reward_model_steps'):
            value = getattr(self, key)
            _check(_is_int(value) and value >= 0, key, value, 'an int >= 0')
        for key in ('clip_eps', 'max_grad_norm', 'reward_model_lr', 'norm_clip'):
            _check(getattr(self, key) > 0, key, getattr(self, key), '> 0')
        # lr 0 freezes the actor-critic (e.g. to check that an untrained agent on a base
        # policy reproduces the base)
        _check(self.lr >= 0, 'lr', self.lr, '>= 0')
        _check(self.squash in SQUASHES, 'squash', self.squash, f'one of {SQUASHES}')
        for key in ('value_coef', 'entropy_coef', 'reward_model_weight_decay'):
            _check(getattr(self, key) >= 0, key, getattr(self, key), '>= 0')
        _check(0.0 <= self.gamma <= 1.0, 'gamma', self.gamma, 'in [0, 1]')
        _check(0.0 <= self.hq_tau <= 1.0, 'hq_tau', self.hq_tau, 'in [0, 1]')
        _check(_is_int(self.seed), 'seed', self.seed, 'an int')
        _check(
            self.progress_column is None
            or (_is_int(self.progress_column) and 0 <= self.progress_column < self.state_dim),
            'progress_column',
            self.progress_column,
            f'None or an int in [0, {self.state_dim})',
        )
        _check(0.0 < self.reward_holdout < 1.0, 'reward_holdout', self.reward_holdout, 'in (0, 1)')
        _check(
            not math.isnan(float(self.calibration_min_r2)),
            'calibration_min_r2',
            self.calibration_min_r2,
            'a number (not NaN)',
        )
        self.reward_holdout = float(self.reward_holdout)
        self.calibration_min_r2 = float(self.calibration_min_r2)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)
