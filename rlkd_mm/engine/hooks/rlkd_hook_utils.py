"""Helpers of RLKDHook: the RLKD agent across DDP ranks and in checkpoints, and what the hook
reads from the runner."""

import contextlib
import logging
from typing import Any, Dict, List, Optional, Tuple

import torch
from mmengine.dist import all_gather_object, all_reduce, broadcast, get_rank, get_world_size
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from rlkd_mm.agent import AgentStep, RLKDAgent, Transition, merge_iterations
from rlkd_mm.temperature.rl import RLTemperature

# Offset between the action-noise seeds of consecutive ranks (a large prime, so that the
# seeds of different ranks never coincide with those of the minibatch generator).
_RANK_SEED_STRIDE = 1_000_003

#: Parts of the agent's state that differ between DDP ranks (the rest is synchronised).
_RANK_LOCAL_AGENT_KEYS = ('buffer', 'action_generator')


def rank_action_seed(agent: RLKDAgent, rank: Optional[int] = None) -> int:
    """The seed of this rank's (or ``rank``'s) action noise."""
    return agent.seed + 1 + _RANK_SEED_STRIDE * (get_rank() if rank is None else rank)


def broadcast_agent(agent: RLKDAgent) -> None:
    """Under DDP, make rank 0's agent and minibatch generator every rank's."""
    if get_world_size() > 1:
        for tensor in agent.tensors_to_sync():
            broadcast(tensor, src=0)
        gen_state = agent.minibatch_generator.get_state()
        broadcast(gen_state, src=0)
        agent.minibatch_generator.set_state(gen_state)


def merge_warmup_moments(agent: RLKDAgent, local: Optional[Tuple[torch.Tensor, ...]]) -> None:
    """Warm the agent's normaliser with the warm-up state moments ``(count, sum, sum of
    squares)`` of all ranks (``local``: this rank's, or None)."""
    dim = agent.state_dim
    packed = torch.zeros(1 + 2 * dim, dtype=torch.float64, device=agent.device)
    if local is not None:
        packed.copy_(torch.cat([local[0].reshape(1), local[1], local[2]]).to(packed))
    if get_world_size() > 1:
        all_reduce(packed, op='sum')
    agent.norm.merge_moments(packed[0], packed[1 : 1 + dim], packed[1 + dim :])


def update_agent(agent: RLKDAgent) -> Dict[str, float]:
    """One agent update; under DDP on the experience of all ranks in rank order (steps of one
    iteration merged), then rank 0's result made everyone's."""
    if get_world_size() == 1:
        return agent.update()
    local = [t.to('cpu').to_dict() for t in agent.buffer.transitions()]
    gathered: List[List[Dict[str, Any]]] = all_gather_object(local)
    stats = agent.update(
        merge_iterations([Transition.from_dict(d) for items in gathered for d in items])
    )
    # The same update on every rank is not bitwise the same on CUDA (index_add and other
    # atomics are nondeterministic), so rank 0's result is made everyone's: parameters,
    # normalisation, calibration choice and optimizer moments. All ranks made the same
    # optimizer steps, so their optimizer states have the same layout.
    for tensor in agent.tensors_to_sync(include_optimizer=True):
        broadcast(tensor, src=0)
    return stats


def gather_rank_states(state: Dict[str, Any]) -> Optional[List[Dict[str, Any]]]:
    """Under DDP, every rank's own part of its state (for rank 0 to write), else None: all
    but the synchronised agent, plus the agent's own experience and action-noise stream."""
    if get_world_size() == 1:
        return None
    local = {k: v for k, v in state.items() if k != 'agent'}
    local['agent'] = {k: state['agent'][k] for k in _RANK_LOCAL_AGENT_KEYS}
    return all_gather_object(local)


def own_rank_state(state: Dict[str, Any]) -> Tuple[Dict[str, Any], bool]:
    """This rank's state from a checkpoint's, and whether the checkpoint had it (saved with
    the same number of ranks)."""
    ranks, world = state.get('ranks'), get_world_size()
    if ranks is None or len(ranks) != world:
        if world > 1:
            print_log(
                f'RLKDHook: the checkpoint holds the RLKD state of {len(ranks or [None])} '
                f'rank(s), this run has {world}; ranks other than 0 start with empty '
                'experience and fresh action noise',
                logger='current',
                level=logging.WARNING,
            )
        return state, False
    local = ranks[get_rank()]
    return {**state, **local, 'agent': {**state['agent'], **local['agent']}}, True


def held_to(held: Optional[Dict[str, Any]], device: Any) -> Optional[Dict[str, Any]]:
    """The held iteration ``dict(iteration, step, rewards)`` with its tensors on ``device``."""
    if held is None:
        return None
    out = dict(held)
    for key in ('step', 'rewards'):
        if out.get(key) is not None:
            out[key] = out[key].to(device)
    return out


def held_state(held: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The held iteration as a checkpoint keeps it (on the CPU, the step as a dict)."""
    held = held_to(held, 'cpu')
    if held is not None and held['step'] is not None:
        held['step'] = held['step'].to_dict()
    return held


def load_held(held: Optional[Dict[str, Any]], device: Any) -> Optional[Dict[str, Any]]:
    """Inverse of :func:`held_state`, onto ``device``."""
    if held is None:
        return None
    held = dict(held)
    if held['step'] is not None:
        held['step'] = AgentStep.from_dict(held['step'])
    return held_to(held, device)


def checked_rewards(
    rewards: Optional[torch.Tensor], step: Optional[AgentStep], name: str, iteration: int
) -> Optional[torch.Tensor]:
    """``rewards`` as the agent stores them (float32 ``[N]``, detached), checked to be one per
    instance the policy acted on; None without rewards or without a step."""
    if rewards is None or step is None:
        return None
    rewards = rewards.detach().float().reshape(-1)
    if rewards.numel() != step.num:
        raise RuntimeError(
            f'reward {name!r} gave {rewards.numel()} rewards for the {step.num} instances the '
            f'policy acted on at iteration {iteration}'
        )
    return rewards


def agent_checksums(agent: RLKDAgent) -> List[str]:
    """Every rank's line 'agent checksum <sum of the synchronised tensors> after <n> updates'
    (on every rank, in rank order): under DDP they must agree."""
    total = sum(float(t.detach().double().sum()) for t in agent.tensors_to_sync())
    line = f'agent checksum {total:.12e} after {agent.update_count} updates'
    return all_gather_object(line) if get_world_size() > 1 else [line]


# ---------------------------------------------------------------------- the runner
def unwrap(runner) -> Any:
    """The runner's model without its DDP wrapper."""
    return runner.model.module if is_model_wrapper(runner.model) else runner.model


def find_policy(runner) -> RLTemperature:
    """The model's one ``RLTemperature``."""
    model = unwrap(runner)
    policies = [m for m in model.modules() if isinstance(m, RLTemperature)]
    if len(policies) != 1:
        raise RuntimeError(
            'RLKDHook needs exactly one RLTemperature in the model, found '
            f'{len(policies)} in {type(model).__name__}'
        )
    return policies[0]


def model_device(runner) -> torch.device:
    tensor = next(runner.model.parameters(), next(runner.model.buffers(), None))
    return torch.device('cpu') if tensor is None else tensor.device


def optimizer_stepped(runner) -> bool:
    """Whether this iteration's ``update_params`` stepped the optimizer (False for the
    accumulating iterations of ``accumulative_counts`` > 1 and a skipped non-finite step)."""
    wrapper = getattr(runner, 'optim_wrapper', None)
    if getattr(wrapper, 'skipped_last', False):
        return False
    should_update = getattr(wrapper, 'should_update', None)
    return True if should_update is None else bool(should_update())


def train_context(runner):
    """The precision context of the training forward (autocast under ``--amp``)."""
    wrapper = getattr(runner, 'optim_wrapper', None)
    if wrapper is None or not hasattr(wrapper, 'optim_context'):
        return contextlib.nullcontext()
    return wrapper.optim_context(runner.model)
