"""RLKDHook: drives the RLKD agent with the rewards of a reward unit (``engine/rewards``)."""

import logging
import math
from typing import Any, Dict, List, Optional, Union

from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log

from rlkd_mm.engine.rewards import BaseReward, build_reward
from rlkd_mm.registry import HOOKS
from rlkd_mm.temperature.rl import RLTemperature

from . import rlkd_hook_utils as utils
from .random_state_hook import iter_checkpoint_due


@HOOKS.register_module()
class RLKDHook(Hook):
    """Drives the RLKD agent of the model's ``RLTemperature``: rewards, experience, updates.

    The reward mode is a registered unit (``rlkd_mm.engine.rewards``: 'instance', 'influence',
    'batch', 'counterfactual'): which iterations are rewarded, what the distiller keeps from
    their forward (``model.reward_keep``, popped after the step) and how the rewards are formed.
    A stored iteration ``k`` becomes a transition at iteration ``k + 1`` (its states are the
    bootstrap target); every ``update_interval`` transitions the agent is updated (under DDP on
    the experience of all ranks, rank 0's result broadcast). An iteration acted on before an
    update is never stored after it, nor one whose optimizer did not step. Warm-up states warm
    the agent's normaliser (summed over ranks).

    Priority 'NORMAL': after the optimizer step in ``train_step``, before ``LoggerHook`` and
    ``CheckpointHook`` (a checkpoint of iteration ``i`` holds the agent after iteration ``i``).
    ``checkpoint['rlkd_agent']`` holds the agent, the policy's state in flight, the held
    iteration, the unit's ``reward_state`` and the counters, so a resumed run takes exactly the
    actions of an uninterrupted one; under DDP each rank's own part too (``ranks``).

    Args:
        reward (str | dict): the reward unit's registered name (or a config with ``type``).
            Defaults to 'influence', chosen on the validation split of both digits tables.
        reward_interval (int): m, per-instance modes reward every m-th acting iteration (one
            student forward each). Defaults to 8.
        update_interval (int): K, agent update every K stored iterations. Defaults to 2.
        warmup_iters (int): W, iterations with the warm-up temperature before the agent acts.
            Defaults to 0.
        reward_ema (float): batch mode: momentum of the task-loss EMA, in [0, 1). Defaults
            to 0.9.
        log_interval (int): iterations between logs of the agent's phase. Defaults to 10.
    """

    priority = 'NORMAL'

    def __init__(
        self,
        reward: Union[str, dict] = 'influence',
        reward_interval: int = 8,
        update_interval: int = 2,
        warmup_iters: int = 0,
        reward_ema: float = 0.9,
        log_interval: int = 10,
    ) -> None:
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
        self.reward, self.reward_interval = reward, reward_interval
        self.update_interval, self.warmup_iters = update_interval, warmup_iters
        self.log_interval = log_interval
        self.unit: BaseReward = build_reward(
            reward,
            reward_interval=reward_interval,
            warmup_iters=warmup_iters,
            reward_ema=reward_ema,
        )
        self._policy: Optional[RLTemperature] = None
        self._model: Any = None
        # The stored iteration waiting for the next one: dict(iteration, step, rewards).
        self._held: Optional[Dict[str, Any]] = None
        self._acting_version, self._collecting = 0, False
        self._num_transitions = self._num_updates = 0
        self._restored = False
        self._gathered: Optional[List[Dict[str, Any]]] = None  # every rank's, for rank 0

    # ------------------------------------------------------------------ helpers
    def _get_policy(self, runner) -> RLTemperature:
        if self._policy is None:
            self._policy = utils.find_policy(runner)
        return self._policy

    def _get_model(self, runner) -> Any:
        """The distiller the reward unit talks to (checked against the unit once)."""
        if self._model is None:
            model = utils.unwrap(runner)
            self.unit.check(model)
            self._model = model
        return self._model

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
                f'update_interval={self.update_interval}, buffer_size={agent.buffer_size}'
            )
        self.unit.setup(runner, self._get_model(runner), policy)
        agent.to(utils.model_device(runner))
        self._held = utils.held_to(self._held, agent.device)
        utils.broadcast_agent(agent)  # all ranks start from rank 0's agent
        if not self._restored:
            agent.seed_actions(utils.rank_action_seed(agent))

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        policy = self._get_policy(runner)
        policy.iteration = runner.iter
        policy.progress = min(max(runner.iter / max(runner.max_iters, 1), 0.0), 1.0)
        policy.acting = runner.iter >= self.warmup_iters
        if policy.acting and runner.iter == self.warmup_iters and self.warmup_iters > 0:
            utils.merge_warmup_moments(policy.agent, policy.pop_warmup_moments())
        self._acting_version = policy.agent.update_count
        self._collecting = self.unit.collects(runner.iter, policy.acting, self._update_due())
        model = self._get_model(runner)
        model.reward_keep = self.unit.keeps if self._collecting else ()
        self.unit.before_iter(runner, model, self._collecting)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        policy, model = self._get_policy(runner), self._get_model(runner)
        agent = policy.agent
        step = policy.pop_pending()
        kept = model.pop_reward_cache()
        self.unit.observe(kept, agent.device)
        if self._held is not None:
            # Due now on every rank, so the update cadence is identical across ranks.
            held, self._held = self._held, None
            self._num_transitions += 1
            self._store(runner, held, None if step is None else step.raw_states)
            if self._num_transitions % self.update_interval == 0:
                stats = utils.update_agent(agent)
                self._num_updates += bool(stats)
                for key, value in (stats or {}).items():
                    runner.message_hub.update_scalar(f'train/rlkd_{key}', value)
        # An uncollected iteration is not held: with update_interval 1 it would keep every
        # later iteration "before an update", so that none were ever collected.
        if (
            self._collecting
            and policy.acting
            and self.unit.rewarded(runner.iter)
            and agent.update_count == self._acting_version
            and utils.optimizer_stepped(runner)
        ):
            with utils.train_context(runner):  # right after the step, in its precision
                step, rewards = self.unit.measure_step(model, kept, step, policy)
            rewards = utils.checked_rewards(rewards, step, self.unit.name, runner.iter)
            self._held = dict(iteration=runner.iter, step=step, rewards=rewards)
        model.reward_keep, self._collecting = (), False
        if self.every_n_train_iters(runner, self.log_interval):
            hub = runner.message_hub
            hub.update_scalar('train/rlkd_phase', float(agent.phase))
            hub.update_scalar('train/rlkd_empty_batches', float(policy.num_empty_batches))
        if get_world_size() > 1 and iter_checkpoint_due(runner):
            self._gathered = utils.gather_rank_states(self._state(runner))

    def _store(self, runner, held: Dict[str, Any], next_states) -> None:
        step = held['step']
        reward = None if step is None else self.unit.transition_reward(held, runner.iter)
        if reward is None:
            return
        policy, hub = self._get_policy(runner), runner.message_hub
        iteration = held['iteration']
        policy.agent.store(
            step,
            reward.total,
            next_states,
            instance_rewards=reward.instances,
            iteration=iteration,
            advantages=reward.advantages,
        )
        if reward.instances is None:
            hub.update_scalar('train/rlkd_reward', reward.total)
            return
        hub.update_scalar('train/rlkd_reward', float(reward.instances.mean()))
        signal = policy.record_rewards(step.temperatures, reward.instances, step)
        if math.isfinite(signal):
            hub.update_scalar('train/rlkd_action_signal', signal)

    def after_train(self, runner) -> None:
        """Log every rank's agent checksum (rank 0 logs all): under DDP they must agree."""
        for rank, line in enumerate(utils.agent_checksums(self._get_policy(runner).agent)):
            print_log(f'RLKDHook rank {rank}: {line}', logger='current')

    # ------------------------------------------------------------------ checkpoints
    def _state(self, runner) -> Dict[str, Any]:
        """This rank's whole RLKD state on the CPU."""
        return dict(
            self._get_policy(runner).rl_state_dict(),  # the agent and the policy's state
            held=utils.held_state(self._held),
            reward_state=self.unit.state_dict(),
            num_transitions=self._num_transitions,
            num_updates=self._num_updates,
            world_size=get_world_size(),
            reward=self.unit.name,  # the registered name (a config dict would not load)
        )

    def after_train_epoch(self, runner) -> None:
        if get_world_size() > 1:
            self._gathered = utils.gather_rank_states(self._state(runner))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = self._state(runner)
        if self._gathered is not None:
            state['ranks'], self._gathered = self._gathered, None
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
        state, own = utils.own_rank_state(state)
        policy = self._get_policy(runner)
        policy.load_rl_state_dict(state)
        agent = policy.agent
        self._held = utils.load_held(state.get('held'), agent.device)
        self.unit.load_state_dict(state.get('reward_state') or {}, agent.device)
        self._num_transitions = int(state.get('num_transitions', 0))
        self._num_updates = int(state.get('num_updates', 0))
        self._restored = True
        if get_rank() > 0 and not own:  # saved by fewer ranks: start with nothing of its own
            agent.buffer.clear()
            self._held = None
            policy.pop_pending()
            policy.pop_warmup_moments()
            self.unit.drop_rank_local()
            agent.seed_actions(utils.rank_action_seed(agent))
