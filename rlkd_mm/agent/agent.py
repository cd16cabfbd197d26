"""The RLKD agent: acts on instance states, stores experience, learns with PPO.

It orchestrates the parts that live in their own modules: the settings (``AgentConfig``), the
actor-critic (``ActorCritic``), the running state and reward normalisation (``RunningNorm``,
``RunningScale``), the batch-reward calibration (``RewardCalibrator``) and the PPO learner
(``PPOLearner``).
"""

import math
from collections import deque
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .buffer import AgentStep, RolloutBuffer, Transition
from .calibration import RewardCalibrator
from .config import AgentConfig
from .optim_utils import optimizer_to
from .policy import ActorCritic
from .ppo import PPOLearner
from .reward_model import calibrate_rewards
from .state import RunningNorm, RunningScale


def tensors_to(obj: Any, device: Any) -> Any:
    """Copy of a (nested dict / list / tuple) state with every tensor detached and on
    ``device`` (always a copy, so that a saved state never aliases live tensors)."""
    if isinstance(obj, Tensor):
        return obj.detach().to(device, copy=True)
    if isinstance(obj, dict):
        return {k: tensors_to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(tensors_to(v, device) for v in obj)
    return obj


def _to_cpu(obj: Any) -> Any:
    return tensors_to(obj, 'cpu')


class RLKDAgent:
    """Chooses one temperature per instance and learns from the student's improvement.

    Pure PyTorch and deliberately not an ``nn.Module``: its parameters must never reach the
    student's optimizer or DDP wrapper, so it keeps its own optimizers and is moved, saved and
    synchronised explicitly (by ``RLKDHook``).

    One cycle: :meth:`act` on every training batch (one batched forward), :meth:`store` the
    iteration once its reward is known (per instance, or one batch reward), and :meth:`update`
    every K iterations: batch rewards are decomposed into instance rewards by the
    ``RewardCalibrator`` (action-centred credits of a learned reward model), all instance
    rewards are divided by their running spread (``RunningScale``), advantages bootstrap from
    the next iteration's batch-mean value ``A_i = r_i + gamma * mean_j V(s_{k+1, j}) - V(s_i)``,
    and a clipped PPO objective with a value loss and an entropy bonus is optimised for
    ``ppo_epochs`` minibatch epochs (``PPOLearner``). After each optimizer step ``log_std`` is
    clamped to ``[LOG_STD_MIN, LOG_STD_MAX]``.

    Calibration safeguard: unless the reward model predicts held-out batch rewards better than
    a constant (``R^2 > calibration_min_r2``), a batch reward is split equally, ``r_i = R_k / B``
    (see ``RewardCalibrator``); the choice is kept in ``calibration_learned``.

    Efficient exploration: during the first ``explore_updates`` updates (phase 0), only
    high-quality instances get exploration noise (the others take the mean action), and PPO
    minibatches are drawn from the high-quality instances first; afterwards (phase 1) every
    instance explores and takes part. Each step records which instances were explored (noise
    applied); only those enter the PPO policy and entropy terms (and the advantage
    normalisation), while all instances train the critic.

    Determinism: network initialisation uses ``seed`` without touching the global RNG. Minibatch
    sampling uses a dedicated CPU generator seeded with ``seed`` (identical on all DDP ranks, so
    identical updates from identical merged experience); action noise uses another CPU generator
    (:meth:`seed_actions` lets each rank draw different noise).

    The running state normalisation is frozen between updates and refreshed at each update from
    the raw states of the rollout, so that the stored normalised states, their log-probabilities
    and the bootstrap states of one rollout all share one normalisation, and all ranks keep the
    same statistics.

    Args:
        state_dim (int): number of state features D.
        t_min (float): lowest temperature.
        t_max (float): highest temperature.
        t_init (float): initial mean temperature, in ``(t_min, t_max)``.
        hidden_dim (int): hidden width of actor, critic and reward model.
        lr (float): Adam learning rate of the actor-critic.
        gamma (float): discount over iterations, in [0, 1].
        clip_eps (float): PPO clipping range, > 0.
        ppo_epochs (int): epochs over the rollout per update.
        minibatch_size (int): instances per PPO minibatch.
        value_coef (float): weight of the value loss.
        entropy_coef (float): weight of the entropy bonus.
        max_grad_norm (float): gradient-norm clip of the actor-critic.
        hq_tau (float): teacher-confidence threshold of high-quality instances, in [0, 1]. The
            agent does not compute the mask itself; adapters read this value.
        explore_updates (int): length of the exploration phase, in agent updates.
        reward_model_lr (float): Adam learning rate of the reward model. Defaults to 3e-3.
        reward_model_steps (int): full-batch reward-model steps per update. Defaults to 50:
            with fewer (e.g. 10 at lr 1e-3) ``g`` stays underfitted and its spurious slopes
            made calibrated rewards worse than the equal split in a synthetic test.
        reward_window (int): number of recent batches the reward model is fitted on.
        buffer_size (int): maximum number of iterations kept in the rollout buffer.
        init_log_std (float): initial log standard deviation of the pre-squash action.
        norm_clip (float): clip of the normalised states.
        seed (int): seed of the networks and of the minibatch (and default action) generator.
        progress_column (int, optional): index of the training-progress column of the state.
            It is not standardised with the running statistics (which always lag behind a
            drifting column and would make it nearly constant) but mapped to ``2p - 1``.
            ``RLTemperature`` sets it. None: every column is standardised.
        reward_holdout (float): fraction of the most recent reward-window batches held out
            from the reward-model fit to validate it, in (0, 1). Defaults to 0.25.
        calibration_min_r2 (float): the learned reward model is used for calibration only when
            its held-out R^2 (against a constant predictor, the mean training-batch reward)
            exceeds this; otherwise the batch reward is split equally, ``r_i = R_k / B``.
            Defaults to 0. ``-inf`` always uses the learned model (no safeguard): with very
            noisy batch rewards the held-out R^2 is rarely positive even for a useful ``g``.
        reward_model_weight_decay (float): L2 weight decay of the reward model's Adam, >= 0.
            Defaults to 0.
        squash (str): how an action becomes a temperature: 'linear' (``t_min + (t_max -
            t_min) * sigmoid(a)``) or 'log' (log-space around ``t_init``, exactly ``t_init``
            at initialisation; RLKD's multiplier on a base policy). See ``ActorCritic``.
    """

    def __init__(self, state_dim: int, **kwargs: Any) -> None:
        cfg = AgentConfig(state_dim=state_dim, **kwargs)
        self.cfg = cfg
        self.state_dim = cfg.state_dim
        self.t_min, self.t_max = cfg.t_min, cfg.t_max
        self.gamma = cfg.gamma
        self.hq_tau = cfg.hq_tau
        self.explore_updates = cfg.explore_updates
        self.buffer_size = cfg.buffer_size
        self.seed = cfg.seed

        # Seeded initialisation that leaves the global RNG (the student's stream) untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.net = ActorCritic(
                cfg.state_dim,
                cfg.hidden_dim,
                cfg.t_min,
                cfg.t_max,
                cfg.t_init,
                cfg.init_log_std,
                squash=cfg.squash,
            )
            self.calibrator = RewardCalibrator(
                cfg.state_dim,
                cfg.hidden_dim,
                lr=cfg.reward_model_lr,
                steps=cfg.reward_model_steps,
                window=cfg.reward_window,
                holdout=cfg.reward_holdout,
                min_r2=cfg.calibration_min_r2,
                weight_decay=cfg.reward_model_weight_decay,
            )
        self.ppo = PPOLearner(
            self.net,
            lr=cfg.lr,
            clip_eps=cfg.clip_eps,
            ppo_epochs=cfg.ppo_epochs,
            minibatch_size=cfg.minibatch_size,
            value_coef=cfg.value_coef,
            entropy_coef=cfg.entropy_coef,
            max_grad_norm=cfg.max_grad_norm,
            seed=cfg.seed,
        )
        # Progress drifts over training: a fixed map 2p - 1 keeps it informative.
        fixed = None if cfg.progress_column is None else {cfg.progress_column: (0.5, 0.5)}
        self.norm = RunningNorm(cfg.state_dim, clip=cfg.norm_clip, fixed_columns=fixed)
        # Running spread of the instance rewards: PPO's value targets (and so its step sizes)
        # then do not depend on the scale of the task loss (CE vs. QFL + GIoU, ...).
        self.reward_scale = RunningScale()
        self.buffer = RolloutBuffer(cfg.buffer_size)
        self.update_count = 0
        self.action_generator = torch.Generator().manual_seed(cfg.seed + 1)

    # ------------------------------------------------------------------ parts, as attributes
    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.ppo.optimizer

    @property
    def minibatch_generator(self) -> torch.Generator:
        return self.ppo.generator

    @property
    def reward_model(self):
        return self.calibrator.model

    @property
    def reward_optimizer(self) -> torch.optim.Optimizer:
        return self.calibrator.optimizer

    @property
    def reward_window(self) -> deque:
        return self.calibrator.window

    @property
    def calibration_learned(self) -> Tensor:
        """1.0 when the last reward-model fit validated and is used for calibration, else 0."""
        return self.calibrator.learned

    @property
    def uses_learned_calibration(self) -> bool:
        return self.calibrator.uses_learned

    # ------------------------------------------------------------------ properties / plumbing
    @property
    def device(self) -> torch.device:
        return self.net.log_std.device

    @property
    def exploring(self) -> bool:
        """True during the exploration phase (phase 0)."""
        return self.update_count < self.explore_updates

    @property
    def phase(self) -> int:
        """0 during the exploration phase, 1 afterwards."""
        return 0 if self.exploring else 1

    def seed_actions(self, seed: int) -> None:
        """Reseed the action-noise generator (e.g. differently on each DDP rank)."""
        self.action_generator.manual_seed(int(seed))

    def tensors_to_sync(self, include_optimizer: bool = False) -> List[Tensor]:
        """Every parameter and statistic that must be equal on all ranks.

        The tensors share storage with the agent, so broadcasting them in place synchronises
        the agent.

        Args:
            include_optimizer (bool): also return the optimizers' per-parameter state tensors
                (Adam moments; not the CPU step counters, which agree anyway). Only valid when
                every rank has made the same number of optimizer steps (e.g. right after an
                update), since the state is created lazily by the first step.
        """
        cal = self.calibrator
        tensors = (
            list(self.net.state_dict().values())
            + list(cal.model.state_dict().values())
            + list(self.norm.state_dict().values())
            + list(self.reward_scale.state_dict().values())
            + [cal.learned]
        )
        if include_optimizer:
            tensors += self.ppo.optimizer_tensors() + cal.optimizer_tensors()
        return tensors

    def parameters(self) -> List[Tensor]:
        """Learnable parameters of the actor-critic and of the reward model."""
        return list(self.net.parameters()) + list(self.calibrator.model.parameters())

    def to(self, device: Any) -> 'RLKDAgent':
        """Move networks, statistics, optimizer states and stored experience to ``device``."""
        device = torch.device(device)
        self.net.to(device)
        optimizer_to(self.ppo.optimizer, device)
        self.calibrator.to(device)
        self.norm.to(device)
        self.reward_scale.to(device)
        self.buffer.to(device)
        return self

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def act(
        self, raw_states: Tensor, hq_mask: Tensor, deterministic: bool = False
    ) -> Tuple[Tensor, AgentStep]:
        """Temperatures for one batch of instances.

        Args:
            raw_states (Tensor): ``[N, D]`` states from ``instance_state``.
            hq_mask (Tensor): ``[N]`` bool, high-quality instances.
            deterministic (bool): take the mean action for every instance (the step then has
                no explored instance and does not enter the PPO policy loss).

        Returns:
            tuple[Tensor, AgentStep]: temperatures ``[N]`` in ``[t_min, t_max]`` (float32, on
            the agent's device) and the step to pass to :meth:`store`.
        """
        if raw_states.dim() != 2 or raw_states.size(1) != self.state_dim:
            raise ValueError(
                f'raw_states must be [N, {self.state_dim}], got {tuple(raw_states.shape)}'
            )
        num = raw_states.size(0)
        if hq_mask.shape != (num,):
            raise ValueError(f'hq_mask must be [{num}], got {tuple(hq_mask.shape)}')
        device = self.device
        raw = raw_states.to(device, torch.float32)
        hq = hq_mask.to(device, torch.bool)
        states = self.norm.normalize(raw)
        mu, values = self.net(states)
        if deterministic:
            actions = mu
            explored = torch.zeros_like(hq)
        else:
            noise = torch.randn(num, generator=self.action_generator).to(device)
            if self.exploring:
                # Non-high-quality instances take exactly the mean action in phase 0.
                explored = hq
                noise = torch.where(hq, noise, torch.zeros_like(noise))
            else:
                explored = torch.ones_like(hq)
            actions = mu + self.net.std * noise
        log_probs = self.net.distribution(mu).log_prob(actions)
        temperatures = self.net.squash(actions)
        step = AgentStep(
            states=states,
            raw_states=raw,
            actions=actions,
            log_probs=log_probs,
            values=values,
            hq_mask=hq,
            temperatures=temperatures,
            explored=explored,
        )
        return temperatures, step

    def store(
        self,
        step: AgentStep,
        batch_reward: float,
        next_states: Optional[Tensor] = None,
        instance_rewards: Optional[Tensor] = None,
        iteration: int = -1,
        advantages: bool = False,
    ) -> None:
        """Store one iteration of experience.

        Args:
            step (AgentStep): what :meth:`act` returned for iteration k (non-empty).
            batch_reward (float): ``R_k``.
            next_states (Tensor, optional): ``[M, D]`` raw states of iteration k + 1, the
                bootstrap target. None or M = 0: not observed; the update then bootstraps from
                the batch-mean value of iteration k itself (training goes on, so 0 would be
                wrong).
            instance_rewards (Tensor, optional): ``[N]`` rewards per instance that replace the
                calibrated ones (the reward model is then not fitted on this batch).
            iteration (int): the training iteration k, used to merge the DDP ranks' steps of
                one iteration (see ``merge_iterations``). Defaults to -1 (unknown).
            advantages (bool): ``instance_rewards`` are advantages (a contextual bandit: see
                :meth:`counterfactual_step`): no bootstrap, no critic baseline. Defaults to
                False.
        """
        if step.num == 0:
            raise ValueError('step must hold at least one instance, got N=0')
        batch_reward = float(batch_reward)
        if not math.isfinite(batch_reward):
            raise ValueError(f'batch_reward must be finite, got batch_reward={batch_reward}')
        device = self.device
        if next_states is not None:
            if next_states.dim() != 2 or next_states.size(1) != self.state_dim:
                raise ValueError(
                    f'next_states must be [M, {self.state_dim}], got {tuple(next_states.shape)}'
                )
            next_states = (
                self.norm.normalize(next_states.to(device, torch.float32))
                if next_states.size(0) > 0
                else None
            )
        if instance_rewards is not None:
            if instance_rewards.shape != (step.num,):
                raise ValueError(
                    f'instance_rewards must be [{step.num}], got {tuple(instance_rewards.shape)}'
                )
            instance_rewards = instance_rewards.detach().to(device, torch.float32)
            if not bool(torch.isfinite(instance_rewards).all()):
                raise ValueError('instance_rewards must be finite')
        elif advantages:
            raise ValueError('advantages=True needs instance_rewards')
        self.buffer.append(
            Transition(
                step.to(device), batch_reward, next_states, instance_rewards, iteration, advantages
            )
        )

    @torch.no_grad()
    def counterfactual_step(self, step: AgentStep, num_samples: int) -> AgentStep:
        """``step`` with ``num_samples - 1`` further actions per instance, sampled from the
        current policy (which must be the one that acted): ``[num_samples * N]`` rows,
        sample-major, the taken actions first. The new rows repeat their instance's states,
        values and quality mask, carry their own log-probabilities and temperatures and count
        as explored (sampled from the policy); the taken rows keep their own ``explored``.
        The noise comes from the action generator."""
        if not isinstance(num_samples, int) or num_samples < 2:
            raise ValueError(f'num_samples must be an int >= 2, got {num_samples!r}')
        device = self.device
        step = step.to(device)
        num, extra = step.num, num_samples - 1
        mu, _ = self.net(step.states)
        noise = torch.randn(extra * num, generator=self.action_generator).to(device)
        mu = mu.repeat(extra)
        actions = mu + self.net.std * noise
        log_probs = self.net.distribution(mu).log_prob(actions)
        return AgentStep(
            states=step.states.repeat(num_samples, 1),
            raw_states=step.raw_states.repeat(num_samples, 1),
            actions=torch.cat([step.actions, actions]),
            log_probs=torch.cat([step.log_probs, log_probs]),
            values=step.values.repeat(num_samples),
            hq_mask=step.hq_mask.repeat(num_samples),
            temperatures=torch.cat([step.temperatures, self.net.squash(actions)]),
            explored=torch.cat([step.explored, torch.ones_like(step.explored).repeat(extra)]),
        )

    @torch.no_grad()
    def exploration_noise(self, step: AgentStep) -> Tensor:
        """Standardised exploration noise ``(a - mu(s)) / sigma`` of each instance of ``step``
        ``[N]``, under the current policy; NaN where the instance took the mean action
        (not explored) and for the whole step if the policy is no longer the one that acted
        (its log-probabilities differ). For analysis: ``E[noise * reward]`` is the direction in
        which the rewards push each state's mean action (see ``policy_report.py``)."""
        device = self.device
        actions = step.actions.to(device, torch.float32)
        mu, _ = self.net(step.states.to(device, torch.float32))
        same_policy = torch.allclose(
            self.net.distribution(mu).log_prob(actions),
            step.log_probs.to(device, torch.float32),
            rtol=1e-4,
            atol=1e-4,
        )
        noise = (actions - mu) / self.net.std
        keep = step.explored.to(device) & same_policy
        return torch.where(keep, noise, torch.full_like(noise, float('nan')))

    # ------------------------------------------------------------------ learning
    def _rescaled(self, temperatures: Tensor) -> Tensor:
        return (temperatures - self.t_min) / (self.t_max - self.t_min)

    def _mean_rescaled(self, states: Tensor) -> Tensor:
        return self._rescaled(self.net.squash(self.net(states)[0]))

    @torch.no_grad()
    def calibrated_rewards(self, step: AgentStep, batch_reward: float) -> Tensor:
        """Instance rewards ``[N]`` of one batch, summing to ``batch_reward``: the
        action-centred credits of the reward model when it passed validation, else the equal
        split ``R / N`` (see ``RewardCalibrator``)."""
        states = self.norm.normalize(step.raw_states.to(self.device))
        contributions = self.calibrator.contributions(
            states, self._rescaled(step.temperatures.to(self.device)), self._mean_rescaled
        )
        return calibrate_rewards(contributions, float(batch_reward))

    @torch.no_grad()
    def _instance_rewards(
        self, items: List[Transition], steps: AgentStep, iter_index: Tensor, batch_rewards: Tensor
    ) -> Tensor:
        """Per-instance rewards ``[N]`` of a rollout: the given ones where a transition has
        them, the calibrated split of its batch reward otherwise."""
        states = self.norm.normalize(steps.raw_states)
        contributions = self.calibrator.contributions(
            states, self._rescaled(steps.temperatures), self._mean_rescaled
        )
        rewards = self.calibrator.instance_rewards(contributions, iter_index, batch_rewards)
        start = 0
        for t in items:
            if t.instance_rewards is not None:
                rewards[start : start + t.step.num] = t.instance_rewards
            start += t.step.num
        return rewards

    @torch.no_grad()
    def _bootstrap_values(
        self, items: List[Transition], steps: AgentStep, iter_index: Tensor, sizes: Tensor
    ) -> Tensor:
        """Batch-mean ``V`` of each iteration's next states, ``[M]``."""
        num_items = len(items)
        own_mean = steps.values.new_zeros(num_items).index_add(0, iter_index, steps.values)
        own_mean = own_mean / sizes.to(own_mean.dtype)
        observed = [i for i, t in enumerate(items) if t.next_states is not None]
        if not observed:
            return own_mean
        next_states = torch.cat([items[i].next_states for i in observed])
        next_sizes = torch.tensor(
            [items[i].next_states.size(0) for i in observed], device=self.device
        )
        next_index = torch.repeat_interleave(torch.tensor(observed, device=self.device), next_sizes)
        _, next_values = self.net(next_states)
        sums = next_values.new_zeros(num_items).index_add(0, next_index, next_values)
        counts = next_values.new_zeros(num_items).index_add(
            0, next_index, torch.ones_like(next_values)
        )
        return torch.where(counts > 0, sums / counts.clamp_min(1.0), own_mean)

    def _epoch_order(self, hq_mask: Tensor, exploring: bool) -> Tensor:
        return self.ppo.epoch_order(hq_mask, exploring)

    def update(self, transitions: Optional[Sequence[Transition]] = None) -> Dict[str, float]:
        """Fit the reward model, then run PPO on the stored rollout; clears the buffer.

        Args:
            transitions (Sequence[Transition], optional): experience to learn from instead of the
                own buffer (e.g. the buffers of all DDP ranks merged in rank order). The own
                buffer is cleared in either case.

        Returns:
            dict[str, float]: losses and statistics of the update; empty when there was no
            experience (the update counter is then unchanged).
        """
        if transitions is None:
            items = self.buffer.transitions()
        else:
            items = [t.to(self.device) for t in transitions]
        self.buffer.clear()
        if not items:
            return {}
        device = self.device
        exploring = self.exploring
        steps = AgentStep.cat([t.step for t in items])
        sizes = torch.tensor([t.step.num for t in items], device=device)
        iter_index = torch.repeat_interleave(torch.arange(len(items), device=device), sizes)
        batch_rewards = torch.tensor(
            [t.batch_reward for t in items], dtype=torch.float32, device=device
        )
        for t in items:
            if t.instance_rewards is None:
                self.calibrator.add(
                    t.step.raw_states, self._rescaled(t.step.temperatures), t.batch_reward
                )
        reward_model_loss, reward_model_r2 = self.calibrator.fit(self.norm)
        raw_rewards = self._instance_rewards(items, steps, iter_index, batch_rewards)
        self.reward_scale.update(raw_rewards)
        rewards = raw_rewards / self.reward_scale.scale().to(raw_rewards.dtype)
        with torch.no_grad():
            next_values = self._bootstrap_values(items, steps, iter_index, sizes)
        returns = rewards + self.gamma * next_values[iter_index]
        advantages = returns - steps.values
        given = torch.tensor([t.advantages for t in items], device=device)[iter_index]
        if bool(given.any()):
            # contextual-bandit rows: the reward is the return and the advantage
            returns = torch.where(given, rewards, returns)
            advantages = torch.where(given, rewards, advantages)
        # Only explored instances (noise applied) carry a policy-gradient signal: an instance
        # that took the mean action was not sampled from the policy, so its ratio/advantage
        # would bias the policy loss. They still train the critic.
        policy_weights = steps.explored.to(advantages.dtype)
        num_explored = policy_weights.sum().clamp_min(1.0)
        adv_mean = (advantages * policy_weights).sum() / num_explored
        adv_var = ((advantages - adv_mean) ** 2 * policy_weights).sum() / num_explored
        advantages = (advantages - adv_mean) / (adv_var.sqrt() + 1e-8)

        stats = self.ppo.optimise(steps, advantages, returns, policy_weights, exploring)
        self.norm.update(steps.raw_states)
        self.update_count += 1
        temperatures = steps.temperatures
        stats.update(
            reward_model_loss=reward_model_loss,
            reward_model_r2=reward_model_r2,
            calibration_learned=float(self.calibrator.learned),
            explored_fraction=float(policy_weights.mean()),
            batch_reward=float(batch_rewards.mean()),
            instance_reward=float(raw_rewards.mean()),
            reward_scale=float(self.reward_scale.scale()),
            t_mean=float(temperatures.mean()),
            t_std=float(temperatures.std(unbiased=False)),
            action_std=float(self.net.std.detach()),
            phase=0.0 if exploring else 1.0,
            num_instances=float(steps.num),
            hq_fraction=float(steps.hq_mask.float().mean()),
        )
        return stats

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> Dict[str, Any]:
        """Everything needed to continue exactly: networks, optimizers, normalisation, reward
        scale, buffer, reward window, counters, the calibration choice and both generators'
        states (all tensors on the CPU)."""
        state = dict(
            config=self.cfg.to_dict(),
            net=_to_cpu(self.net.state_dict()),
            optimizer=_to_cpu(self.ppo.optimizer.state_dict()),
            norm=_to_cpu(self.norm.state_dict()),
            reward_scale=_to_cpu(self.reward_scale.state_dict()),
            buffer=self.buffer.state_dict(),
            update_count=self.update_count,
            minibatch_generator=self.ppo.generator.get_state(),
            action_generator=self.action_generator.get_state(),
        )
        state.update(self.calibrator.state_dict(_to_cpu))
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved, onto the agent's current device."""
        saved_dim = state['config']['state_dim']
        if saved_dim != self.state_dim:
            raise ValueError(
                f'state_dim of the saved agent ({saved_dim}) differs from this '
                f'agent (state_dim={self.state_dim})'
            )
        device = self.device
        self.net.load_state_dict(state['net'])
        self.ppo.optimizer.load_state_dict(state['optimizer'])
        self.norm.load_state_dict(state['norm'])
        if 'reward_scale' in state:
            self.reward_scale.load_state_dict(state['reward_scale'])
        self.calibrator.load_state_dict(state, device)
        self.buffer.load_state_dict(state['buffer'], device)
        self.update_count = int(state['update_count'])
        self.ppo.generator.set_state(state['minibatch_generator'])
        self.action_generator.set_state(state['action_generator'])
