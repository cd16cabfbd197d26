"""RLKDHook: rewards, experience, agent updates, DDP synchronisation and checkpoints of RLKD."""

import logging
import math
from typing import Any, Dict, List, Optional

import torch
from mmengine.dist import all_gather_object, all_reduce, broadcast, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from rlkd_mm.agent import AgentStep, Transition
from rlkd_mm.registry import HOOKS
from rlkd_mm.temperature.rl import RLTemperature

# Offset between the action-noise seeds of consecutive ranks (a large prime, so that the
# seeds of different ranks never coincide with those of the minibatch generator).
_RANK_SEED_STRIDE = 1_000_003


@HOOKS.register_module()
class RLKDHook(Hook):
    """Drives the RLKD agent of the model's ``RLTemperature``.

    Per training iteration ``i``:

    - ``before_train_iter``: tells the policy the training progress ``i / max_iters``, the
      iteration, and whether to act (``i >= warmup_iters``; before that the policy returns its
      fixed warm-up temperature).
    - ``after_train_iter`` (iteration ``i`` has run its forward and optimizer step): the task
      loss the distiller recorded during iteration ``i``'s forward is the loss of the student
      *after* update ``i - 1``. So the actions of iteration ``k = i - 1`` get the batch reward
      ``R_k = EMA(task losses up to iteration k) - task_loss_i`` and are stored with the states
      of iteration ``i`` as bootstrap target. Then the EMA takes ``task_loss_i`` and the step of
      iteration ``i`` waits for the next call. Under DDP the task loss is averaged over ranks
      first. Every ``update_interval`` such iterations the experience of all ranks is gathered
      (in rank order) and every rank runs the same agent update; rank 0's resulting agent
      (parameters, normalisation statistics, calibration choice, optimizer moments) is then
      broadcast, since the same update need not be bitwise equal on CUDA.

    Priority 'NORMAL' (50): the optimizer step happens inside ``train_step``, before any
    ``after_train_iter``, so the reward timing does not depend on it; but this hook must run
    before ``LoggerHook`` ('BELOW_NORMAL') so that its scalars appear in the same iteration's
    log, and before ``CheckpointHook`` ('VERY_LOW') so that a checkpoint saved at iteration
    ``i`` holds the agent after iteration ``i``'s experience and update.

    Checkpoints: ``checkpoint['rlkd_agent']`` holds the agent (networks, optimizers,
    normalisation, buffer, reward window, counters, generators), the pending step, the loss
    EMA and the counters, so that a resumed single-process run takes exactly the actions of an
    uninterrupted one. Checkpoints are written by rank 0 alone, so under DDP the other ranks'
    not-yet-merged experience (fewer than ``update_interval`` iterations) is not saved; after a
    resume they start with empty buffers and freshly seeded action noise, while the agent
    itself is restored identically on all ranks.

    Args:
        update_interval (int): K, agent update every K stored iterations. Defaults to 16.
        warmup_iters (int): W, iterations with the fixed warm-up temperature before the agent
            acts. Defaults to 0.
        reward_ema (float): momentum of the EMA of batch task losses that the reward compares
            with, in [0, 1); 0 compares with the previous batch alone. Defaults to 0.9.
        log_interval (int): iterations between logs of the temperature statistics. Defaults
            to 10.
    """

    priority = 'NORMAL'

    def __init__(
        self,
        update_interval: int = 16,
        warmup_iters: int = 0,
        reward_ema: float = 0.9,
        log_interval: int = 10,
    ) -> None:
        if not isinstance(update_interval, int) or update_interval <= 0:
            raise ValueError(
                f'update_interval must be an int > 0, got update_interval={update_interval!r}'
            )
        if not isinstance(warmup_iters, int) or warmup_iters < 0:
            raise ValueError(f'warmup_iters must be an int >= 0, got warmup_iters={warmup_iters!r}')
        if not 0.0 <= reward_ema < 1.0:
            raise ValueError(f'reward_ema must be in [0, 1), got reward_ema={reward_ema!r}')
        if not isinstance(log_interval, int) or log_interval <= 0:
            raise ValueError(f'log_interval must be an int > 0, got log_interval={log_interval!r}')
        self.update_interval = update_interval
        self.warmup_iters = warmup_iters
        self.reward_ema = float(reward_ema)
        self.log_interval = log_interval
        self._policy: Optional[RLTemperature] = None
        self._prev_step: Optional[AgentStep] = None
        self._prev_acting = False
        self._loss_ema: Optional[float] = None
        self._num_transitions = 0
        self._num_updates = 0
        self._restored = False

    # ------------------------------------------------------------------ helpers
    def _get_policy(self, runner) -> RLTemperature:
        if self._policy is None:
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            policies = [m for m in model.modules() if isinstance(m, RLTemperature)]
            if len(policies) != 1:
                raise RuntimeError(
                    'RLKDHook needs exactly one RLTemperature in the model, found '
                    f'{len(policies)} in {type(model).__name__}'
                )
            self._policy = policies[0]
        return self._policy

    @staticmethod
    def _model_device(runner) -> torch.device:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
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
        agent.to(self._model_device(runner))
        if self._prev_step is not None:
            self._prev_step = self._prev_step.to(agent.device)
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
        loss = self._mean_task_loss(policy.pop_task_loss(), agent.device)
        hub = runner.message_hub

        if self._prev_acting:
            # The previous iteration acted: its transition is due now on every rank, which
            # keeps the update cadence identical across ranks even if a rank had no instances.
            self._num_transitions += 1
            if self._prev_step is not None:
                if not math.isfinite(loss) or self._loss_ema is None:
                    print_log(
                        f'RLKDHook: no finite task loss at iteration {runner.iter} (got {loss});'
                        ' the previous actions are dropped. Does the distiller call '
                        'policy.record_task_loss?',
                        logger='current',
                        level=logging.WARNING,
                    )
                else:
                    reward = self._loss_ema - loss
                    next_states = None if step is None else step.raw_states
                    agent.store(self._prev_step, reward, next_states)
                    hub.update_scalar('train/rlkd_reward', reward)
            if self._num_transitions % self.update_interval == 0:
                self._update_agent(runner)

        if math.isfinite(loss):
            self._loss_ema = (
                loss
                if self._loss_ema is None
                else self.reward_ema * self._loss_ema + (1.0 - self.reward_ema) * loss
            )
        self._prev_step = step
        self._prev_acting = policy.acting

        if self.every_n_train_iters(runner, self.log_interval):
            hub.update_scalar('train/rlkd_phase', float(agent.phase))
            hub.update_scalar('train/rlkd_empty_batches', float(policy.num_empty_batches))
            if step is not None:
                hub.update_scalar('train/rlkd_t_mean', float(step.temperatures.mean()))
                hub.update_scalar('train/rlkd_t_std', float(step.temperatures.std(unbiased=False)))

    def _update_agent(self, runner) -> None:
        agent = self._get_policy(runner).agent
        if get_world_size() > 1:
            local = [t.to('cpu').to_dict() for t in agent.buffer.transitions()]
            gathered: List[List[Dict[str, Any]]] = all_gather_object(local)
            merged = [Transition.from_dict(d) for rank_items in gathered for d in rank_items]
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

    # ------------------------------------------------------------------ checkpoints
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        policy = self._get_policy(runner)
        state = policy.rl_state_dict()
        state.update(
            prev_step=None if self._prev_step is None else self._prev_step.to('cpu').to_dict(),
            prev_acting=self._prev_acting,
            loss_ema=self._loss_ema,
            num_transitions=self._num_transitions,
            num_updates=self._num_updates,
            world_size=get_world_size(),
        )
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
        policy = self._get_policy(runner)
        policy.load_rl_state_dict(state)
        agent = policy.agent
        prev = state.get('prev_step')
        self._prev_step = None if prev is None else AgentStep.from_dict(prev).to(agent.device)
        self._prev_acting = bool(state.get('prev_acting', False))
        self._loss_ema = state.get('loss_ema')
        self._num_transitions = int(state.get('num_transitions', 0))
        self._num_updates = int(state.get('num_updates', 0))
        self._restored = True
        if get_rank() > 0:
            # The saved buffer, pending actions and noise state are rank 0's own.
            agent.buffer.clear()
            self._prev_step = None
            agent.seed_actions(agent.seed + 1 + _RANK_SEED_STRIDE * get_rank())
