"""The RLKD agent: acts on instance states, stores experience, learns with PPO."""

import math
from collections import deque
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .buffer import AgentStep, RolloutBuffer, Transition
from .policy import ActorCritic, check_squash_range
from .ppo import clipped_policy_loss
from .reward_model import RewardModel, calibrate_rewards
from .state import RunningNorm, RunningScale


def _check(cond: bool, key: str, value: Any, requirement: str) -> None:
    if not cond:
        raise ValueError(f'{key} must be {requirement}, got {key}={value!r}')


def _to_cpu(obj: Any) -> Any:
    """Deep copy of a (nested) state with every tensor on the CPU."""
    if isinstance(obj, Tensor):
        return obj.detach().to('cpu', copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


class RLKDAgent:
    """Chooses one temperature per instance and learns from the student's improvement.

    Pure PyTorch and deliberately not an ``nn.Module``: its parameters must never reach the
    student's optimizer or DDP wrapper, so it keeps its own optimizers and is moved, saved and
    synchronised explicitly (by ``RLKDHook``).

    One cycle: :meth:`act` on every training batch (one batched forward), :meth:`store` the
    iteration once its batch reward is known, and :meth:`update` every K iterations: the reward
    model is fitted so that per-batch sums of ``g(s, a)`` predict the batch rewards, the batch
    reward is decomposed into calibrated instance rewards ``r_i = g_i + (R_k - sum_j g_j) / B``,
    advantages bootstrap from the next iteration's batch-mean value
    ``A_i = r_i + gamma * mean_j V(s_{k+1, j}) - V(s_i)``, and a clipped PPO objective with a
    value loss and an entropy bonus is optimised for ``ppo_epochs`` minibatch epochs. After each
    optimizer step ``log_std`` is clamped to ``[LOG_STD_MIN, LOG_STD_MAX]``.

    Calibration safeguard: the reward model is fitted on the older batches of the reward window
    and validated on the newest ``reward_holdout`` fraction; unless its batch sums predict the
    held-out batch rewards better than a constant (``R^2 > calibration_min_r2``), the batch
    reward is split equally, ``r_i = R_k / B`` (also exactly sum-preserving). The choice is
    kept in ``calibration_learned`` and reported by :meth:`update`.

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
    """

    def __init__(
        self,
        state_dim: int,
        t_min: float = 1.0,
        t_max: float = 10.0,
        t_init: float = 4.0,
        hidden_dim: int = 64,
        lr: float = 3e-4,
        gamma: float = 0.9,
        clip_eps: float = 0.2,
        ppo_epochs: int = 4,
        minibatch_size: int = 256,
        value_coef: float = 0.5,
        entropy_coef: float = 1e-3,
        max_grad_norm: float = 0.5,
        hq_tau: float = 0.5,
        explore_updates: int = 10,
        reward_model_lr: float = 3e-3,
        reward_model_steps: int = 50,
        reward_window: int = 32,
        buffer_size: int = 64,
        init_log_std: float = math.log(0.5),
        norm_clip: float = 5.0,
        seed: int = 0,
        progress_column: Optional[int] = None,
        reward_holdout: float = 0.25,
        calibration_min_r2: float = 0.0,
        reward_model_weight_decay: float = 0.0,
    ) -> None:
        check_squash_range(t_min, t_max, t_init)
        _check(isinstance(state_dim, int) and state_dim > 0, 'state_dim', state_dim, 'an int > 0')
        _check(
            isinstance(hidden_dim, int) and hidden_dim > 0, 'hidden_dim', hidden_dim, 'an int > 0'
        )
        _check(lr > 0, 'lr', lr, '> 0')
        _check(0.0 <= gamma <= 1.0, 'gamma', gamma, 'in [0, 1]')
        _check(clip_eps > 0, 'clip_eps', clip_eps, '> 0')
        _check(
            isinstance(ppo_epochs, int) and ppo_epochs >= 1, 'ppo_epochs', ppo_epochs, 'an int >= 1'
        )
        _check(
            isinstance(minibatch_size, int) and minibatch_size >= 1,
            'minibatch_size',
            minibatch_size,
            'an int >= 1',
        )
        _check(value_coef >= 0, 'value_coef', value_coef, '>= 0')
        _check(entropy_coef >= 0, 'entropy_coef', entropy_coef, '>= 0')
        _check(max_grad_norm > 0, 'max_grad_norm', max_grad_norm, '> 0')
        _check(0.0 <= hq_tau <= 1.0, 'hq_tau', hq_tau, 'in [0, 1]')
        _check(
            isinstance(explore_updates, int) and explore_updates >= 0,
            'explore_updates',
            explore_updates,
            'an int >= 0',
        )
        _check(reward_model_lr > 0, 'reward_model_lr', reward_model_lr, '> 0')
        _check(
            isinstance(reward_model_steps, int) and reward_model_steps >= 0,
            'reward_model_steps',
            reward_model_steps,
            'an int >= 0',
        )
        _check(
            isinstance(reward_window, int) and reward_window >= 1,
            'reward_window',
            reward_window,
            'an int >= 1',
        )
        _check(
            isinstance(buffer_size, int) and buffer_size >= 1,
            'buffer_size',
            buffer_size,
            'an int >= 1',
        )
        _check(norm_clip > 0, 'norm_clip', norm_clip, '> 0')
        _check(isinstance(seed, int), 'seed', seed, 'an int')
        _check(
            progress_column is None
            or (isinstance(progress_column, int) and 0 <= progress_column < state_dim),
            'progress_column',
            progress_column,
            f'None or an int in [0, {state_dim})',
        )
        _check(0.0 < reward_holdout < 1.0, 'reward_holdout', reward_holdout, 'in (0, 1)')
        _check(
            not math.isnan(float(calibration_min_r2)),
            'calibration_min_r2',
            calibration_min_r2,
            'a number (not NaN)',
        )
        _check(
            reward_model_weight_decay >= 0,
            'reward_model_weight_decay',
            reward_model_weight_decay,
            '>= 0',
        )
        self.config = dict(
            state_dim=state_dim,
            t_min=float(t_min),
            t_max=float(t_max),
            t_init=float(t_init),
            hidden_dim=hidden_dim,
            lr=lr,
            gamma=gamma,
            clip_eps=clip_eps,
            ppo_epochs=ppo_epochs,
            minibatch_size=minibatch_size,
            value_coef=value_coef,
            entropy_coef=entropy_coef,
            max_grad_norm=max_grad_norm,
            hq_tau=hq_tau,
            explore_updates=explore_updates,
            reward_model_lr=reward_model_lr,
            reward_model_steps=reward_model_steps,
            reward_window=reward_window,
            buffer_size=buffer_size,
            init_log_std=init_log_std,
            norm_clip=norm_clip,
            seed=seed,
            progress_column=progress_column,
            reward_holdout=reward_holdout,
            calibration_min_r2=calibration_min_r2,
            reward_model_weight_decay=reward_model_weight_decay,
        )
        self.state_dim = state_dim
        self.t_min, self.t_max = float(t_min), float(t_max)
        self.gamma = gamma
        self.clip_eps = clip_eps
        self.ppo_epochs = ppo_epochs
        self.minibatch_size = minibatch_size
        self.value_coef = value_coef
        self.entropy_coef = entropy_coef
        self.max_grad_norm = max_grad_norm
        self.hq_tau = hq_tau
        self.explore_updates = explore_updates
        self.reward_model_steps = reward_model_steps
        self.buffer_size = buffer_size
        self.seed = seed
        self.reward_holdout = float(reward_holdout)
        self.calibration_min_r2 = float(calibration_min_r2)

        # Seeded initialisation that leaves the global RNG (the student's stream) untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = ActorCritic(state_dim, hidden_dim, t_min, t_max, t_init, init_log_std)
            self.reward_model = RewardModel(state_dim, hidden_dim)
        # Progress drifts over training: a fixed map 2p - 1 keeps it informative.
        fixed = None if progress_column is None else {progress_column: (0.5, 0.5)}
        self.norm = RunningNorm(state_dim, clip=norm_clip, fixed_columns=fixed)
        # Running spread of the instance rewards: PPO's value targets (and so its step sizes)
        # then do not depend on the scale of the task loss (CE vs. QFL + GIoU, ...).
        self.reward_scale = RunningScale()
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.reward_optimizer = torch.optim.Adam(
            self.reward_model.parameters(),
            lr=reward_model_lr,
            weight_decay=reward_model_weight_decay,
        )
        # 1.0 when the last reward-model fit beat a constant predictor on held-out batches and
        # is used for calibration, else 0.0 (equal split). A tensor so that DDP can broadcast it.
        self.calibration_learned = torch.zeros((), dtype=torch.float32)
        self.buffer = RolloutBuffer(buffer_size)
        # (raw_states [B, D], rescaled actions [B], batch reward) of recent batches.
        self.reward_window: deque = deque(maxlen=reward_window)
        self.update_count = 0
        self.minibatch_generator = torch.Generator().manual_seed(seed)
        self.action_generator = torch.Generator().manual_seed(seed + 1)

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
        tensors = (
            list(self.net.state_dict().values())
            + list(self.reward_model.state_dict().values())
            + list(self.norm.state_dict().values())
            + list(self.reward_scale.state_dict().values())
            + [self.calibration_learned]
        )
        if include_optimizer:
            for optimizer, module in (
                (self.optimizer, self.net),
                (self.reward_optimizer, self.reward_model),
            ):
                for param in module.parameters():
                    for key, value in sorted(optimizer.state.get(param, {}).items()):
                        if isinstance(value, Tensor) and key != 'step':
                            tensors.append(value)
        return tensors

    def parameters(self) -> List[Tensor]:
        """Learnable parameters of the actor-critic and of the reward model."""
        return list(self.net.parameters()) + list(self.reward_model.parameters())

    def to(self, device: Any) -> 'RLKDAgent':
        """Move networks, statistics, optimizer states and stored experience to ``device``."""
        device = torch.device(device)
        self.net.to(device)
        self.reward_model.to(device)
        self.norm.to(device)
        self.reward_scale.to(device)
        self.calibration_learned = self.calibration_learned.to(device)
        for optimizer in (self.optimizer, self.reward_optimizer):
            for state in optimizer.state.values():
                for key, value in state.items():
                    # Adam keeps its step counter on the CPU unless capturable/fused.
                    if isinstance(value, Tensor) and key != 'step':
                        state[key] = value.to(device)
        self.buffer.to(device)
        self.reward_window = deque(
            ((s.to(device), u.to(device), r) for s, u, r in self.reward_window),
            maxlen=self.reward_window.maxlen,
        )
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
        self.buffer.append(
            Transition(step.to(device), batch_reward, next_states, instance_rewards, iteration)
        )

    # ------------------------------------------------------------------ learning
    def _fit_reward_model(self) -> Tuple[float, float]:
        """Fit ``g`` on the older batches of the reward window and validate it on the newest.

        The newest ``reward_holdout`` fraction of the window (at least one batch) is held out;
        ``g`` is fitted on the rest, and its batch sums are compared on the held-out batches
        with a constant predictor (the mean reward of the fitted batches):
        ``R^2 = 1 - SSE(g) / SSE(const)``. A reward model fitted on batch sums over a short
        window can pick up spurious slopes that make calibrated rewards worse than the equal
        split; so ``calibration_learned`` is set only when ``R^2 > calibration_min_r2``.

        Returns:
            tuple[float, float]: last training loss and held-out R^2 (both 0 when the window
            holds fewer than two batches or ``reward_model_steps == 0``; no learned
            calibration then).
        """
        self.calibration_learned.fill_(0.0)
        num_batches = len(self.reward_window)
        if num_batches < 2 or self.reward_model_steps == 0:
            return 0.0, 0.0
        device = self.device
        num_holdout = min(max(1, round(num_batches * self.reward_holdout)), num_batches - 1)
        num_fit = num_batches - num_holdout
        raw = torch.cat([s for s, _, _ in self.reward_window])
        states = self.norm.normalize(raw)
        actions = torch.cat([u for _, u, _ in self.reward_window])
        size_list = [u.numel() for _, u, _ in self.reward_window]
        batch_index = torch.repeat_interleave(
            torch.arange(num_batches, device=device), torch.tensor(size_list, device=device)
        )
        rewards = torch.tensor(
            [r for _, _, r in self.reward_window], dtype=torch.float32, device=device
        )
        # The window is ordered oldest first: the fitted batches are a prefix.
        cut = sum(size_list[:num_fit])
        fit_args = (states[:cut], actions[:cut], batch_index[:cut], rewards[:num_fit])
        loss = states.new_zeros(())
        for _ in range(self.reward_model_steps):
            loss = self.reward_model.batch_loss(*fit_args)
            self.reward_optimizer.zero_grad()
            loss.backward()
            self.reward_optimizer.step()
        with torch.no_grad():
            contributions = self.reward_model(states[cut:], actions[cut:])
            sums = contributions.new_zeros(num_holdout).index_add(
                0, batch_index[cut:] - num_fit, contributions
            )
            held_out = rewards[num_fit:]
            sse_model = ((sums - held_out) ** 2).sum()
            sse_const = ((held_out - rewards[:num_fit].mean()) ** 2).sum()
            r2 = 1.0 - sse_model / sse_const.clamp_min(1e-12)
            self.calibration_learned.copy_((r2 > self.calibration_min_r2).float())
        return float(loss.detach()), float(r2)

    def _rescaled(self, temperatures: Tensor) -> Tensor:
        return (temperatures - self.t_min) / (self.t_max - self.t_min)

    @property
    def uses_learned_calibration(self) -> bool:
        """Whether the last reward-model fit passed validation (see ``_fit_reward_model``)."""
        return bool(self.calibration_learned > 0.5)

    @torch.no_grad()
    def calibrated_rewards(self, step: AgentStep, batch_reward: float) -> Tensor:
        """Instance rewards ``[N]`` of one batch, summing to ``batch_reward``.

        ``r_i = g_i + (R - sum_j g_j) / N`` (see ``calibrate_rewards``) when the current reward
        model passed validation, else the equal split ``R / N``.
        """
        contributions = self._contributions(
            step.raw_states.to(self.device), step.temperatures.to(self.device)
        )
        return calibrate_rewards(contributions, float(batch_reward))

    def _contributions(self, raw_states: Tensor, temperatures: Tensor) -> Tensor:
        """Action-dependent part of the reward-model outputs [N]:
        ``c_i = g(s_i, a_i) - g(s_i, mean action of s_i)``.

        State-only terms of ``g`` (e.g. how easy the batch is) say nothing about the action, so
        they are left to the equal split of the residual. Zeros (the equal split ``R / N`` after
        calibration) when the reward model did not pass validation.
        """
        if not self.uses_learned_calibration:
            return temperatures.new_zeros(temperatures.shape[0])
        states = self.norm.normalize(raw_states)
        mean_t = self.net.squash(self.net(states)[0])
        taken = self.reward_model(states, self._rescaled(temperatures))
        return taken - self.reward_model(states, self._rescaled(mean_t))

    @torch.no_grad()
    def _instance_rewards(
        self,
        items: List[Transition],
        steps: AgentStep,
        iter_index: Tensor,
        sizes: Tensor,
        batch_rewards: Tensor,
    ) -> Tensor:
        contributions = self._contributions(steps.raw_states, steps.temperatures)
        sums = contributions.new_zeros(len(items)).index_add(0, iter_index, contributions)
        residual = (batch_rewards - sums) / sizes.to(contributions.dtype)
        rewards = contributions + residual[iter_index]
        if any(t.instance_rewards is not None for t in items):
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
        """Instance indices of one PPO epoch (CPU long tensor)."""
        gen = self.minibatch_generator
        num = hq_mask.numel()
        if not exploring:
            return torch.randperm(num, generator=gen)
        hq_cpu = hq_mask.cpu()
        hq_idx = hq_cpu.nonzero().squeeze(1)
        other_idx = (~hq_cpu).nonzero().squeeze(1)
        hq_idx = hq_idx[torch.randperm(hq_idx.numel(), generator=gen)]
        other_idx = other_idx[torch.randperm(other_idx.numel(), generator=gen)]
        # High-quality instances first; others only top the epoch up to one minibatch.
        num_used = max(hq_idx.numel(), min(self.minibatch_size, num))
        return torch.cat([hq_idx, other_idx])[:num_used]

    @torch.enable_grad()
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
                self.reward_window.append(
                    (t.step.raw_states, self._rescaled(t.step.temperatures), t.batch_reward)
                )
        reward_model_loss, reward_model_r2 = self._fit_reward_model()
        raw_rewards = self._instance_rewards(items, steps, iter_index, sizes, batch_rewards)
        self.reward_scale.update(raw_rewards)
        rewards = raw_rewards / self.reward_scale.scale().to(raw_rewards.dtype)
        next_values = self._bootstrap_values(items, steps, iter_index, sizes)
        returns = rewards + self.gamma * next_values[iter_index]
        advantages = returns - steps.values
        # Only explored instances (noise applied) carry a policy-gradient signal: an instance
        # that took the mean action was not sampled from the policy, so its ratio/advantage
        # would bias the policy loss. They still train the critic.
        policy_weights = steps.explored.to(advantages.dtype)
        num_explored = policy_weights.sum().clamp_min(1.0)
        adv_mean = (advantages * policy_weights).sum() / num_explored
        adv_var = ((advantages - adv_mean) ** 2 * policy_weights).sum() / num_explored
        advantages = (advantages - adv_mean) / (adv_var.sqrt() + 1e-8)

        keys = ('policy_loss', 'value_loss', 'entropy', 'approx_kl', 'clip_fraction')
        sums = {k: torch.zeros((), device=device) for k in keys}
        first_minibatch: Dict[str, float] = {}
        num_minibatches = 0
        params = list(self.net.parameters())
        for _ in range(self.ppo_epochs):
            order = self._epoch_order(steps.hq_mask, exploring).to(device)
            for idx in order.split(self.minibatch_size):
                mu, values = self.net(steps.states[idx])
                dist = self.net.distribution(mu)
                log_probs = dist.log_prob(steps.actions[idx])
                weight = policy_weights[idx]
                denom = weight.sum().clamp_min(1.0)
                policy_loss, kl, clip = clipped_policy_loss(
                    log_probs, steps.log_probs[idx], advantages[idx], weight, self.clip_eps
                )
                value_loss = F.mse_loss(values, returns[idx])
                entropy = (dist.entropy() * weight).sum() / denom
                loss = policy_loss + self.value_coef * value_loss - self.entropy_coef * entropy
                self.optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
                self.optimizer.step()
                self.net.clamp_log_std_()
                with torch.no_grad():
                    sums['policy_loss'] += policy_loss.detach()
                    sums['value_loss'] += value_loss.detach()
                    sums['entropy'] += entropy.detach()
                    sums['approx_kl'] += kl
                    sums['clip_fraction'] += clip
                    if num_minibatches == 0:
                        # Before any step the policy is the acting one: ratio 1, KL 0.
                        ratio = (log_probs.detach() - steps.log_probs[idx]).exp()
                        dev = torch.where(weight > 0, (ratio - 1.0).abs(), 0.0)
                        first_minibatch = dict(
                            first_ratio_max_dev=float(dev.max()),
                            first_approx_kl=float(kl),
                        )
                num_minibatches += 1

        self.norm.update(steps.raw_states)
        self.update_count += 1
        stats = {k: float(v) / max(num_minibatches, 1) for k, v in sums.items()}
        temperatures = steps.temperatures
        stats.update(
            reward_model_loss=reward_model_loss,
            reward_model_r2=reward_model_r2,
            calibration_learned=float(self.calibration_learned),
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
            **first_minibatch,
        )
        return stats

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> Dict[str, Any]:
        """Everything needed to continue exactly: networks, optimizers, normalisation, buffer,
        reward window, counters, the calibration choice and both generators' states (all
        tensors on the CPU)."""
        return dict(
            config=dict(self.config),
            net=_to_cpu(self.net.state_dict()),
            reward_model=_to_cpu(self.reward_model.state_dict()),
            optimizer=_to_cpu(self.optimizer.state_dict()),
            reward_optimizer=_to_cpu(self.reward_optimizer.state_dict()),
            norm=_to_cpu(self.norm.state_dict()),
            reward_scale=_to_cpu(self.reward_scale.state_dict()),
            buffer=self.buffer.state_dict(),
            reward_window=[(_to_cpu(s), _to_cpu(u), r) for s, u, r in self.reward_window],
            update_count=self.update_count,
            calibration_learned=float(self.calibration_learned),
            minibatch_generator=self.minibatch_generator.get_state(),
            action_generator=self.action_generator.get_state(),
        )

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
        self.reward_model.load_state_dict(state['reward_model'])
        self.optimizer.load_state_dict(state['optimizer'])
        self.reward_optimizer.load_state_dict(state['reward_optimizer'])
        self.norm.load_state_dict(state['norm'])
        if 'reward_scale' in state:
            self.reward_scale.load_state_dict(state['reward_scale'])
        self.buffer.load_state_dict(state['buffer'], device)
        self.reward_window = deque(
            ((s.to(device), u.to(device), float(r)) for s, u, r in state['reward_window']),
            maxlen=self.reward_window.maxlen,
        )
        self.update_count = int(state['update_count'])
        self.calibration_learned.fill_(float(state.get('calibration_learned', 0.0)))
        self.minibatch_generator.set_state(state['minibatch_generator'])
        self.action_generator.set_state(state['action_generator'])
