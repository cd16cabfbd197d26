"""The RLKD agent (pure PyTorch): state features, actor-critic, reward model, PPO."""

from .agent import RLKDAgent, tensors_to
from .buffer import AgentStep, RolloutBuffer, Transition, merge_iterations
from .policy import ActorCritic
from .reward_model import RewardModel, calibrate_rewards
from .state import (
    STATE_DIM,
    STATE_NAMES,
    RunningNorm,
    RunningScale,
    high_quality_mask,
    instance_state,
    moments,
)

__all__ = [
    'RLKDAgent',
    'tensors_to',
    'AgentStep',
    'RolloutBuffer',
    'Transition',
    'merge_iterations',
    'ActorCritic',
    'RewardModel',
    'calibrate_rewards',
    'STATE_DIM',
    'STATE_NAMES',
    'RunningNorm',
    'RunningScale',
    'moments',
    'high_quality_mask',
    'instance_state',
]
