"""RLKDHook: rewards, experience, agent updates, DDP synchronisation and checkpoints of RLKD."""

import contextlib
import logging
import math
from typing import Any, Dict, List, Optional

import torch
from mmengine.dist import all_gather_object, all_reduce, broadcast, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from rlkd_mm.agent import AgentStep, Transition, merge_iterations
from rlkd_mm.registry import HOOKS
from rlkd_mm.temperature.rl import RLTemperature

from .random_state_hook import iter_checkpoint_due

# Offset between the action-noise seeds of consecutive ranks (a large prime, so that the
# seeds of different ranks never coincide with those of the minibatch generator).
_RANK_SEED_STRIDE = 1_000_003


#: Reward modes of RLKDHook (see its docstring).
REWARD_MODES = ('instance', 'influence', 'batch')


@HOOKS.register_module()
class RLKDHook(Hook):
    """Drives the RLKD agent of the model's ``RLTemperature``: rewards, experience, updates.

    Reward modes (``reward``), for the temperatures the agent chose at iteration ``k``:

    - ``'instance'`` (per instance, measures fit): after the optimizer step of iteration
      ``k`` the distiller re-evaluates the student alone, without grad, on exactly the inputs
      and targets of iteration ``k`` (cached at its forward, so no second data-preprocessor
      call) and instance ``i`` gets ``r_i = l_i(theta_k) - l_i(theta_k+1)``, ``l_i`` the
      student's own task loss on the instance. Same mode as training (BN on batch statistics,
      its running buffers restored afterwards), no RNG stream consumed.
    - ``'influence'`` (per instance, measures generalisation): the first-order effect of
      instance ``i``'s gradient on the task loss of a probe batch from the training split (the
      inputs of the previous rewarded iteration, re-evaluated after step ``k``), at the
      student's last layer: ``r_i = sum_j (g_i . g_j)(h_i . h_j + 1)`` with ``g`` the loss
      gradient w.r.t. the logits and ``h`` the input of the layer that makes the class logits
      (classifier fc, a dense head's last class conv, the RoI head's ``fc_cls``).
    - ``'batch'`` (the original, for comparison): ``R_k = EMA(task losses up to k) -
      task_loss_{k+1}``, one scalar per iteration, decomposed into instance rewards by the
      agent's reward model (action-centred calibration).

    In the per-instance modes only every ``reward_interval``-th acting iteration is
    re-evaluated and stored (the others act but leave no experience): the re-evaluation costs
    one student forward. The agent normalises rewards by their running spread.

    Timing: a stored iteration ``k`` becomes a transition at iteration ``k + 1``, whose states
    are its bootstrap target (and, in batch mode, whose task loss gives its reward). Every
    ``update_interval`` transitions the agent is updated (under DDP: the experience of all
    ranks gathered in rank order, batch-mode steps of one iteration merged into one transition
    with the global reward, the same update on every rank, then rank 0's agent broadcast). An
    iteration acted on by the policy before an update is never stored after it (its
    log-probabilities and normalisation are the old policy's), and an iteration whose optimizer
    did not step (gradient accumulation) is not rewarded. During warm-up the states are still
    computed, and their statistics (summed over ranks) warm the agent's normaliser before it
    first acts.

    Priority 'NORMAL' (50): the optimizer step happens inside ``train_step``, before any
    ``after_train_iter``; this hook runs before ``LoggerHook`` ('BELOW_NORMAL') so that its
    scalars appear in the same iteration's log, and before ``CheckpointHook`` ('VERY_LOW') so
    that a checkpoint saved at iteration ``i`` holds the agent after iteration ``i``.

    Checkpoints: ``checkpoint['rlkd_agent']`` holds the agent (networks, optimizers,
    normalisation, reward scale, buffer, reward window, counters, generators), the policy's
    state in flight (warm-up statistics not yet merged, the pending step, dumps), the step
    waiting for its transition, the reward modes' state kept across iterations (the influence
    probe batch), the loss EMA and the counters, so that a resumed run takes exactly the
    actions of an uninterrupted one wherever the checkpoint falls. Under DDP only rank 0 writes
    the file: each rank's own part (experience, held step, noise stream, warm-up statistics,
    probe batch) is gathered before a checkpoint (``ranks``) and given back to that rank on
    resume with the same number of processes.

    Args:
        reward (str): 'instance', 'influence' or 'batch'. Defaults to 'influence', the
            mode chosen on the validation split of both digits tables (README, "Which
            per-instance mode by default"). A distiller whose ``reward_modes`` lack a mode
            is refused with its supported modes named.
        reward_interval (int): m, re-evaluate and store every m-th acting iteration in the
            per-instance modes (ignored in batch mode, which stores every iteration).
            Defaults to 8: the re-evaluation (one student forward) then costs about 3 % of a
            ResNet-34 -> ResNet-18 iteration (README, overhead table).
        update_interval (int): K, agent update every K stored iterations. Defaults to 2 (with
            m = 8: an update every 16 iterations).
        warmup_iters (int): W, iterations with the fixed warm-up temperature before the agent
            acts. Defaults to 0.
        reward_ema (float): batch mode: momentum of the EMA of batch task losses that the
            reward compares with, in [0, 1). Defaults to 0.9.
        log_interval (int): iterations between logs of the temperature statistics.
            Defaults to 10.
    """

    priority = 'NORMAL'

    def __init__(
        self,
        reward: str = 'influence',
        reward_interval: int = 8,
        update_interval: int = 2,
        warmup_iters: int = 0,
        reward_ema: float = 0.9,
        log_interval: int = 10,
    ) -> None:
        if reward not in REWARD_MODES:
            raise ValueError(f'reward must be one of {REWARD_MODES}, got reward={reward!r}')
        for key, value, low in (
            ('reward_interval', reward_interval, 1),
            ('update_interval', update_interval, 1),
            ('warmup_iters', warmup_iters, 0),
            ('log_interval', log_interval, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f'{key} must be an int >= {low}, got {key}={value!r}')
        if not 0.0 <= reward_ema < 1.0:
            raise ValueError(f'reward_ema must be in [0, 1), got reward_ema={reward_ema!r}')
        self.reward = reward
        self.reward_interval = reward_interval
        self.update_interval = update_interval
        self.warmup_iters = warmup_iters
        self.reward_ema = float(reward_ema)
        self.log_interval = log_interval
        self._policy: Optional[RLTemperature] = None
        # The stored iteration waiting for the next one: dict(iteration, step, rewards).
        self._held: Optional[Dict[str, Any]] = None
        self._acting_version = 0
        self._loss_ema: Optional[float] = None
        self._num_transitions = 0
        self._num_updates = 0
        self._restored = False
        # Every rank's own state, gathered under DDP before a checkpoint (rank 0 writes it).
        self._gathered: Optional[List[Dict[str, Any]]] = None

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _unwrap(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def _get_policy(self, runner) -> RLTemperature:
        if self._policy is None:
            model = self._unwrap(runner)
            policies = [m for m in model.modules() if isinstance(m, RLTemperature)]
            if len(policies) != 1:
                raise RuntimeError(
                    'RLKDHook needs exactly one RLTemperature in the model, found '
                    f'{len(policies)} in {type(model).__name__}'
                )
            self._policy = policies[0]
        return self._policy

    def _model_device(self, runner) -> torch.device:
        model = self._unwrap(runner)
        for tensor in model.parameters():
            return tensor.device
        for tensor in model.buffers():
            return tensor.device
        return torch.device('cpu')

    def _mean_task_loss(self, loss: Optional[torch.Tensor], device: torch.device) -> float:
        """Task loss averaged over the ranks that recorded one (NaN if none did)."""
        total = torch.zeros(2, dtype=torch.float64, device=device)
        if loss is not None:
            total[0] = loss.to(device, torch.float64)
            total[1] = 1.0
        if get_world_size() > 1:
            all_reduce(total, op='sum')
        total = total.cpu()
        return float(total[0] / total[1]) if total[1] > 0 else math.nan

    @staticmethod
    def _optimizer_stepped(runner) -> bool:
        """Whether this iteration's ``update_params`` stepped the optimizer (False for the
        accumulating iterations of ``accumulative_counts`` > 1)."""
        wrapper = getattr(runner, 'optim_wrapper', None)
        if getattr(wrapper, 'skipped_last', False):  # a non-finite loss skipped the step
            return False
        should_update = getattr(wrapper, 'should_update', None)
        return True if should_update is None else bool(should_update())

    @staticmethod
    def _train_context(runner):
        """The precision context of the training forward (autocast under ``--amp``)."""
        wrapper = getattr(runner, 'optim_wrapper', None)
        if wrapper is None or not hasattr(wrapper, 'optim_context'):
            return contextlib.nullcontext()
        return wrapper.optim_context(runner.model)

    def _is_reward_iter(self, iteration: int) -> bool:
        if self.reward == 'batch':
            return True
        return (iteration - self.warmup_iters) % self.reward_interval == 0

    def _update_due(self) -> bool:
        """Whether storing the held iteration at the next ``after_train_iter`` updates."""
        return self._held is not None and (self._num_transitions + 1) % self.update_interval == 0

    # ------------------------------------------------------------------ training
    def before_train(self, runner) -> None:
        policy = self._get_policy(runner)
        policy.driven = True
        agent = policy.agent
        if self.update_interval > agent.buffer_size:
            raise ValueError(
                f'update_interval must be <= the agent buffer_size, got '
                f'update_interval={self.update_interval}, '
                f'buffer_size={agent.buffer_size}'
            )
        model = self._unwrap(runner)
        if self.reward != 'batch' and self.reward not in getattr(model, 'reward_modes', ()):
            raise TypeError(
                f"RLKDHook(reward='{self.reward}') is not supported by "
                f'{type(model).__name__} (its reward_modes: '
                f'{tuple(getattr(model, "reward_modes", ()))}); choose one of those or '
                "reward='batch'"
            )
        agent.to(self._model_device(runner))
        if self._held is not None:
            self._held = _held_to(self._held, agent.device)
        if get_world_size() > 1:
            # All ranks start from rank 0's agent, and draw minibatches identically.
            for tensor in agent.tensors_to_sync():
                broadcast(tensor, src=0)
            gen_state = agent.minibatch_generator.get_state()
            broadcast(gen_state, src=0)
            agent.minibatch_generator.set_state(gen_state)
        if not self._restored:
            agent.seed_actions(agent.seed + 1 + _RANK_SEED_STRIDE * get_rank())

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        policy = self._get_policy(runner)
        policy.iteration = runner.iter
        policy.progress = min(max(runner.iter / max(runner.max_iters, 1), 0.0), 1.0)
        policy.acting = runner.iter >= self.warmup_iters
        if policy.acting and runner.iter == self.warmup_iters and self.warmup_iters > 0:
            self._merge_warmup_states(runner)
        self._acting_version = policy.agent.update_count
        # An iteration acted on before an update is not stored after it: no need to cache.
        collect = (
            self.reward != 'batch'
            and policy.acting
            and self._is_reward_iter(runner.iter)
            and not self._update_due()
        )
        policy.collect_rewards = self.reward if collect else False

    def _merge_warmup_states(self, runner) -> None:
        """Warm the agent's normaliser with the warm-up states of all ranks."""
        policy = self._get_policy(runner)
        agent = policy.agent
        dim = agent.state_dim
        packed = torch.zeros(1 + 2 * dim, dtype=torch.float64, device=agent.device)
        local = policy.pop_warmup_moments()
        if local is not None:
            packed.copy_(torch.cat([local[0].reshape(1), local[1], local[2]]).to(packed))
        if get_world_size() > 1:
            all_reduce(packed, op='sum')
        agent.norm.merge_moments(packed[0], packed[1 : 1 + dim], packed[1 + dim :])

    def after_train_iter(
        self,
        runner,
        batch_idx: int,
        data_batch: Any = None,
        outputs: Optional[Dict[str, Any]] = None,
    ) -> None:
        policy = self._get_policy(runner)
        agent = policy.agent
        step = policy.pop_pending()
        task_loss = policy.pop_task_loss()
        # Only the batch reward reads the task loss: the other modes skip its all-reduce and
        # host synchronisation on every iteration.
        loss = self._mean_task_loss(task_loss, agent.device) if self.reward == 'batch' else math.nan
        hub = runner.message_hub

        if self._held is not None:
            # The held iteration's transition is due now on every rank (so the update cadence
            # is identical across ranks even if a rank had no instances).
            held, self._held = self._held, None
            self._num_transitions += 1
            next_states = None if step is None else step.raw_states
            self._store(runner, held, loss, next_states)
            if self._num_transitions % self.update_interval == 0:
                self._update_agent(runner)

        # Hold this iteration if it acted with the current policy and the student stepped, and
        # in the per-instance modes if its rewards were collected (an uncollected one would
        # only stand in the way: with update_interval 1 it would keep every later iteration
        # "before an update", so that none were ever collected). All of it is rank-consistent.
        hold = (
            policy.acting
            and self._is_reward_iter(runner.iter)
            and agent.update_count == self._acting_version
            and self._optimizer_stepped(runner)
            and (self.reward == 'batch' or bool(policy.collect_rewards))
        )
        if hold:
            rewards = None
            if self.reward != 'batch' and policy.collect_rewards:
                rewards = self._instance_rewards(runner, step)
            self._held = dict(iteration=runner.iter, step=step, rewards=rewards)
        elif self.reward != 'batch':
            self._unwrap(runner).clear_reward_cache()
        policy.collect_rewards = False

        if math.isfinite(loss):
            self._loss_ema = (
                loss
                if self._loss_ema is None
                else self.reward_ema * self._loss_ema + (1.0 - self.reward_ema) * loss
            )

        if self.every_n_train_iters(runner, self.log_interval):
            hub.update_scalar('train/rlkd_phase', float(agent.phase))
            hub.update_scalar('train/rlkd_empty_batches', float(policy.num_empty_batches))
        if get_world_size() > 1 and iter_checkpoint_due(runner):
            self._gather(runner)

    def _instance_rewards(self, runner, step: Optional[AgentStep]) -> Optional[torch.Tensor]:
        """Per-instance rewards of this iteration from the distiller's re-evaluation."""
        model = self._unwrap(runner)
        with self._train_context(runner):
            rewards = model.instance_rewards(self.reward)
        if rewards is None or step is None:
            return None
        rewards = rewards.detach().float().reshape(-1)
        if rewards.numel() != step.num:
            raise RuntimeError(
                f'{type(model).__name__}.instance_rewards returned {rewards.numel()} rewards '
                f'for the {step.num} instances the policy acted on at iteration {runner.iter}'
            )
        return rewards

    def _store(self, runner, held: Dict[str, Any], loss: float, next_states) -> None:
        step = held['step']
        if step is None:
            return
        agent = self._get_policy(runner).agent
        hub = runner.message_hub
        if self.reward == 'batch':
            if not math.isfinite(loss) or self._loss_ema is None:
                print_log(
                    f'RLKDHook: no finite task loss at iteration {runner.iter} (got {loss}); '
                    'the previous actions are dropped. Does the distiller call '
                    'policy.record_task_loss?',
                    logger='current',
                    level=logging.WARNING,
                )
                return
            reward = self._loss_ema - loss
            agent.store(step, reward, next_states, iteration=held['iteration'])
            hub.update_scalar('train/rlkd_reward', reward)
            return
        rewards = held['rewards']
        if rewards is None:
            return
        if not bool(torch.isfinite(rewards).all()):
            print_log(
                f'RLKDHook: non-finite instance rewards at iteration {held["iteration"]}; '
                'the iteration is not stored',
                logger='current',
                level=logging.WARNING,
            )
            return
        agent.store(
            step,
            float(rewards.sum()),
            next_states,
            instance_rewards=rewards,
            iteration=held['iteration'],
        )
        hub.update_scalar('train/rlkd_reward', float(rewards.mean()))
        signal = self._get_policy(runner).record_rewards(step.temperatures, rewards, step)
        if math.isfinite(signal):
            hub.update_scalar('train/rlkd_action_signal', signal)

    def _update_agent(self, runner) -> None:
        agent = self._get_policy(runner).agent
        if get_world_size() > 1:
            local = [t.to('cpu').to_dict() for t in agent.buffer.transitions()]
            gathered: List[List[Dict[str, Any]]] = all_gather_object(local)
            merged = merge_iterations(
                [Transition.from_dict(d) for rank_items in gathered for d in rank_items]
            )
            stats = agent.update(merged)
            # The same update on every rank is not bitwise the same on CUDA (index_add and
            # other atomics are nondeterministic), so rank 0's result is made everyone's:
            # parameters, normalisation, calibration choice and optimizer moments. All ranks
            # made the same optimizer steps, so their optimizer states have the same layout.
            for tensor in agent.tensors_to_sync(include_optimizer=True):
                broadcast(tensor, src=0)
        else:
            stats = agent.update()
        if not stats:
            return
        self._num_updates += 1
        for key, value in stats.items():
            runner.message_hub.update_scalar(f'train/rlkd_{key}', value)

    def after_train(self, runner) -> None:
        """Print every rank's agent checksum: under DDP all ranks must show the same."""
        agent = self._get_policy(runner).agent
        total = sum(float(t.detach().double().sum()) for t in agent.tensors_to_sync())
        print(
            f'RLKDHook rank {get_rank()}: agent checksum {total:.12e} after '
            f'{agent.update_count} updates',
            flush=True,
        )

    # ------------------------------------------------------------------ checkpoints
    def _state(self, runner) -> Dict[str, Any]:
        """This rank's whole RLKD state on the CPU: the policy's (agent included), the held
        iteration, the reward modes' state kept across iterations, and the hook's counters."""
        state = self._get_policy(runner).rl_state_dict()
        held = None
        if self._held is not None:
            held = _held_to(self._held, 'cpu')
            held['step'] = None if held['step'] is None else held['step'].to_dict()
        state.update(
            held=held,
            reward_state=self._reward_state(runner),
            loss_ema=self._loss_ema,
            num_transitions=self._num_transitions,
            num_updates=self._num_updates,
            world_size=get_world_size(),
            reward=self.reward,
        )
        return state

    def _reward_state(self, runner) -> Optional[Dict[str, Any]]:
        """The model's reward-mode state kept across iterations (None for a model that keeps
        none, i.e. has no ``reward_state``)."""
        model = self._unwrap(runner)
        return model.reward_state() if hasattr(model, 'reward_state') else None

    def _load_reward_state(self, runner, state: Optional[Dict[str, Any]], device) -> None:
        model = self._unwrap(runner)
        if hasattr(model, 'load_reward_state'):
            model.load_reward_state(state or {}, device)

    def _gather(self, runner) -> None:
        """Under DDP, collect every rank's own part of the state before a checkpoint (only
        rank 0 writes it)."""
        if get_world_size() > 1:
            self._gathered = all_gather_object(_rank_local(self._state(runner)))

    def after_train_epoch(self, runner) -> None:
        self._gather(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = self._state(runner)
        if self._gathered is not None:
            state['ranks'] = self._gathered
            self._gathered = None
        checkpoint['rlkd_agent'] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('rlkd_agent')
        if state is None:
            print_log(
                'RLKDHook: the checkpoint has no RLKD agent state; the agent starts afresh',
                logger='current',
                level=logging.WARNING,
            )
            return
        ranks, world, rank = state.get('ranks'), get_world_size(), get_rank()
        own = ranks is not None and len(ranks) == world
        if own:
            local = ranks[rank]
            state = {**state, **local, 'agent': {**state['agent'], **local['agent']}}
        elif world > 1:
            print_log(
                f'RLKDHook: the checkpoint holds the RLKD state of {len(ranks or [None])} '
                f'rank(s), this run has {world}; ranks other than 0 start with empty '
                'experience and fresh action noise',
                logger='current',
                level=logging.WARNING,
            )
        policy = self._get_policy(runner)
        policy.load_rl_state_dict(state)
        agent = policy.agent
        held = state.get('held')
        if held is not None:
            held = dict(held)
            held['step'] = None if held['step'] is None else AgentStep.from_dict(held['step'])
            held = _held_to(held, agent.device)
        self._held = held
        self._load_reward_state(runner, state.get('reward_state'), agent.device)
        self._loss_ema = state.get('loss_ema')
        self._num_transitions = int(state.get('num_transitions', 0))
        self._num_updates = int(state.get('num_updates', 0))
        self._restored = True
        if rank > 0 and not own:
            agent.buffer.clear()
            self._held = None
            policy.pop_pending()
            policy.pop_warmup_moments()
            self._load_reward_state(runner, None, agent.device)
            agent.seed_actions(agent.seed + 1 + _RANK_SEED_STRIDE * rank)


#: Parts of the agent's state that differ between DDP ranks (the rest is synchronised).
_RANK_LOCAL_AGENT_KEYS = ('buffer', 'action_generator')


def _rank_local(state: Dict[str, Any]) -> Dict[str, Any]:
    """The part of a rank's state that other ranks do not share: everything but the
    synchronised agent, plus the agent's own experience and action-noise stream."""
    local = {k: v for k, v in state.items() if k != 'agent'}
    local['agent'] = {k: state['agent'][k] for k in _RANK_LOCAL_AGENT_KEYS}
    return local


def _held_to(held: Dict[str, Any], device: Any) -> Dict[str, Any]:
    out = dict(held)
    for key in ('step', 'rewards'):
        if out.get(key) is not None:
            out[key] = out[key].to(device)
    return out
