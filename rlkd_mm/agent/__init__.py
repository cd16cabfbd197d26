"""The RLKD agent (pure PyTorch): state features, actor-critic, reward model, PPO."""

from .agent import RLKDAgent
from .buffer import AgentStep, RolloutBuffer, Transition
from .policy import ActorCritic
from .reward_model import RewardModel, calibrate_rewards
from .state import STATE_DIM, STATE_NAMES, RunningNorm, high_quality_mask, instance_state

__all__ = [
    'RLKDAgent',
    'AgentStep',
    'RolloutBuffer',
    'Transition',
    'ActorCritic',
    'RewardModel',
    'calibrate_rewards',
    'STATE_DIM',
    'STATE_NAMES',
    'RunningNorm',
    'high_quality_mask',
    'instance_state',
]
