"""RLKD: per-instance temperatures chosen by a reinforcement-learning agent."""

import warnings
from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor

from rlkd_mm.agent import AgentStep, RLKDAgent, tensors_to
from rlkd_mm.agent.state import STATE_NAMES, _log_probs, instance_state
from rlkd_mm.registry import MODELS

from .base import BaseTemperature, TemperatureOutput, check_temperature_range
from .oracle import scale_output

#: Columns of the per-instance temperature dump (see ``RLTemperature.dump``).
DUMP_COLUMNS = ('iteration', 'temperature', 'high_quality', 'student_gt_prob', 'teacher_gt_prob')
#: Columns of the reward record (see ``RLTemperature.record_rewards``): the temperature, the
#: reward centred on its batch, the standardised exploration noise (NaN: mean action) and the
#: teacher's confidence in the label.
REWARD_RECORD_COLUMNS = ('temperature', 'centred_reward', 'noise', 'teacher_gt_prob')

_TEACHER_CORRECT = STATE_NAMES.index('teacher_correct')
_TEACHER_GT_PROB = STATE_NAMES.index('teacher_gt_prob')
_STUDENT_GT_PROB = STATE_NAMES.index('student_gt_prob')
_PROGRESS = STATE_NAMES.index('progress')

# Keys of ``agent`` that RLTemperature sets itself, so that they cannot disagree.
_OWN_AGENT_KEYS = ('state_dim', 't_min', 't_max', 't_init', 'hq_tau', 'progress_column', 'squash')

#: State columns added after ``STATE_NAMES`` when RLKD acts on a base policy: what the base
#: knows about each instance (its temperatures, in log, and its KD loss at them).
BASE_STATE_NAMES = ('base_log_t_student', 'base_log_t_teacher', 'base_kd_loss')

# Defaults of the absolute temperature range (RLKD without a base policy).
_ABSOLUTE_DEFAULTS = dict(t_min=1.0, t_max=10.0, t_init=4.0, warmup_temperature=4.0)


@torch.no_grad()
def base_state(
    student_logits: Tensor, teacher_logits: Tensor, output: TemperatureOutput, score_type: str
) -> Tensor:
    """``[N, 3]`` float32 columns ``BASE_STATE_NAMES`` of a base policy's ``output``: the log of
    its student and teacher temperatures (first term) and its per-instance KD loss, the sum
    over its terms of ``prefactor * KL(p_t(T_t) || p_s(T_s)) * weight`` (prefactor default
    ``T_s * T_t``, weight default 1; class distributions as in ``instance_state``)."""
    z_s, z_t = student_logits.detach().float(), teacher_logits.detach().float()
    kd = z_s.new_zeros(z_s.size(0))
    for term in output.terms():
        t_s = term.t_student.detach().float()
        t_t = term.t_teacher.detach().float()
        log_ps = _log_probs(z_s / t_s[:, None], score_type)
        log_pt = _log_probs(z_t / t_t[:, None], score_type)
        kl = (log_pt.exp() * (log_pt - log_ps)).sum(dim=1).clamp_min(0.0)
        factor = t_s * t_t if term.prefactor is None else term.prefactor.detach().float()
        weight = 1.0 if term.weight is None else term.weight.detach().float()
        kd = kd + factor * kl * weight
    return torch.stack(
        [output.t_student.detach().float().log(), output.t_teacher.detach().float().log(), kd],
        dim=1,
    )


@MODELS.register_module()
class RLTemperature(BaseTemperature):
    """Temperature policy of RLKD: the adapter between a distiller and ``RLKDAgent``.

    In training, once acting is enabled (by ``RLKDHook`` after its warm-up), each call computes
    the instance states (``rlkd_mm.agent.instance_state``, with ``progress`` set by the hook),
    marks the high-quality instances and lets the agent pick one temperature per instance with
    one batched forward. What the agent did is kept as the *pending* step, which the hook turns
    into experience once the reward is known. In eval mode, or before acting is enabled (the
    warm-up), every instance gets ``warmup_temperature``.

    The agent is deliberately kept out of the module tree (stored with ``object.__setattr__``):
    otherwise its parameters would appear in ``model.parameters()``, so in the student's
    optimizer and in the DDP wrapper's gradient all-reduce, and in the model's state dict.
    ``RLKDHook`` moves it to the model's device, synchronises it across ranks and saves and
    restores it (``checkpoint['rlkd_agent']``).

    Args:
        t_min (float): lowest temperature. Defaults to 1.
        t_max (float): highest temperature. Defaults to 10.
        t_init (float): the agent's initial mean temperature, in ``(t_min, t_max)``.
            Defaults to 4.
        warmup_temperature (float): constant temperature of the warm-up and of eval mode.
            Defaults to 4.
        score_type (str): 'softmax' or 'sigmoid'; see ``instance_state``.
        hq_tau (float): teacher-confidence threshold of high-quality instances. Defaults to 0.5.
        agent (dict, optional): other keyword arguments of ``RLKDAgent`` (``lr``, ``gamma``,
            ``explore_updates``, ``seed``, ...). Without a ``seed`` the agent takes the seed
            torch was last seeded with (the run's ``randomness.seed``).
        dump_size (int): if > 0, the last ``dump_size`` instances' ``DUMP_COLUMNS`` are kept in
            a ring buffer for analysis, saved with the agent. Defaults to 0.
        deterministic (bool): while acting, take the agent's mean action (no exploration
            noise), e.g. to analyse a trained policy. Such steps are still stored, but with no
            explored instance they only train the critic. Can be changed later through the
            ``deterministic`` attribute. Defaults to False.
        shuffle_states (bool): a control: while acting, each instance's action is chosen (and
            learnt) from the state of another instance of the batch (a seeded permutation per
            batch), so the agent can learn a batch-level shift of T but nothing per instance.
            Defaults to False.

    The agent's ``progress_column`` is set to the ``progress`` state column, which the agent
    then feeds as ``2p - 1`` instead of standardising it.

    **On a base policy** (``base=dict(type=...)``, any registered policy: fixed T, logit
    standardisation, DTKD, CIST, ...): the base gives each instance its temperatures, weight
    and loss prefactor, and the agent's action is a per-instance multiplier ``a_i`` in
    ``[a_min, a_max]`` (acting in log space: ``ActorCritic(squash='log')``) applied to every
    temperature the base uses (DTKD's vanilla ``tau`` included, see
    ``rlkd_mm.temperature.oracle.scale_output``). Each KD term keeps the base's prefactor times
    ``a_i^2`` (``a_i`` detached): an explicit prefactor is multiplied by ``a_i^2``; the default
    ``T_s * T_t`` is that of the scaled temperatures, ``a_i^2 T_s T_t``. A CIST weight is
    unchanged. The warm-up and eval mode use the base itself (``a = 1``), and at
    initialisation the agent's mean action is ``a = 1`` exactly, so an untrained agent acting
    deterministically reproduces its base bit for bit. The state gains ``BASE_STATE_NAMES``
    (the base's log temperatures and its per-instance KD loss; the task loss is already the
    ``student_ce`` column).

    Args of the base mode:
        base (dict, optional): the base policy's config. None: RLKD as published, one shared
            temperature in ``[t_min, t_max]`` (the keys ``t_min``, ``t_max``, ``t_init`` and
            ``warmup_temperature`` then apply; with a base they must not be set).
        a_min (float): smallest multiplier, in ``(0, 1)``. Defaults to 0.5.
        a_max (float): largest multiplier, > 1. Defaults to 2.
    """

    def __init__(
        self,
        t_min: Optional[float] = None,
        t_max: Optional[float] = None,
        t_init: Optional[float] = None,
        warmup_temperature: Optional[float] = None,
        score_type: str = 'softmax',
        hq_tau: float = 0.5,
        agent: Optional[Dict[str, Any]] = None,
        dump_size: int = 0,
        deterministic: bool = False,
        shuffle_states: bool = False,
        base: Optional[dict] = None,
        a_min: float = 0.5,
        a_max: float = 2.0,
    ) -> None:
        super().__init__(score_type=score_type)
        absolute = dict(
            t_min=t_min, t_max=t_max, t_init=t_init, warmup_temperature=warmup_temperature
        )
        if base is not None:
            given = {k: v for k, v in absolute.items() if v is not None}
            if given:
                raise ValueError(
                    'RLTemperature with a base policy acts with a multiplier in [a_min, a_max] '
                    f'and warms up with the base itself; remove {sorted(given)} (got {given})'
                )
            if not 0 < a_min < 1 < a_max:
                raise ValueError(
                    f'the multiplier range must hold 1: 0 < a_min < 1 < a_max, got '
                    f'a_min={a_min}, a_max={a_max}'
                )
            base = dict(base)
            base.setdefault('score_type', score_type)
            self.base: Optional[BaseTemperature] = MODELS.build(base)
            t_min, t_max, t_init, warmup_temperature = float(a_min), float(a_max), 1.0, 1.0
        else:
            self.base = None
            t_min, t_max, t_init, warmup_temperature = (
                _ABSOLUTE_DEFAULTS[k] if v is None else v for k, v in absolute.items()
            )
        self.a_min, self.a_max = float(a_min), float(a_max)
        check_temperature_range(t_min, t_max)
        if not warmup_temperature > 0:
            raise ValueError(
                f'warmup_temperature must be > 0, got warmup_temperature={warmup_temperature}'
            )
        if not isinstance(deterministic, bool):
            raise TypeError(f'deterministic must be a bool, got deterministic={deterministic!r}')
        if not isinstance(dump_size, int) or dump_size < 0:
            raise ValueError(f'dump_size must be an int >= 0, got dump_size={dump_size!r}')
        agent_cfg = dict(agent or {})
        agent_cfg.pop('type', None)
        for key in _OWN_AGENT_KEYS:
            if key in agent_cfg:
                raise ValueError(
                    f'agent.{key} is set by RLTemperature itself; set {key} on '
                    f'RLTemperature instead, got agent.{key}={agent_cfg[key]!r}'
                )
        if agent_cfg.get('seed') is None:
            # The run's seed (mmengine seeds torch before building the model), so that a new
            # seed changes the agent's initialisation, noise and minibatches too.
            agent_cfg['seed'] = int(torch.initial_seed() % (2**31))
        self.t_min, self.t_max, self.t_init = float(t_min), float(t_max), float(t_init)
        self.warmup_temperature = float(warmup_temperature)
        self.dump_size = dump_size
        self.deterministic = deterministic
        self.shuffle_states = bool(shuffle_states)
        # the permutations of ``shuffle_states`` (saved with the agent for exact resume)
        self._shuffle_generator = torch.Generator().manual_seed(int(agent_cfg['seed']) + 2)
        self.state_names = STATE_NAMES + (BASE_STATE_NAMES if self.base is not None else ())
        object.__setattr__(
            self,
            'agent',
            RLKDAgent(
                len(self.state_names),
                t_min=t_min,
                t_max=t_max,
                t_init=t_init,
                hq_tau=hq_tau,
                progress_column=_PROGRESS,
                squash='log' if self.base is not None else 'linear',
                **agent_cfg,
            ),
        )
        # Set by RLKDHook (``driven`` once, the others before every training iteration).
        self.driven = False
        self.acting = False
        self.progress = 0.0
        self.iteration = 0
        self.num_empty_batches = 0
        self.num_nonfinite_batches = 0
        self._warmup_moments: Optional[Tuple[Tensor, Tensor, Tensor]] = None
        self._pending: Optional[AgentStep] = None
        self._reward_rows: Optional[Tensor] = None
        self._dump_rows: Optional[Tensor] = None
        self._dump_next = 0
        self._dump_filled = 0
        self._warned_undriven = False

    # ------------------------------------------------------------------ policy interface
    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, gt_labels: Optional[Tensor] = None
    ) -> TemperatureOutput:
        """Without a base: ``TemperatureOutput(T[N], T[N])``, detached, in the logits' dtype.
        On a base: the base's output with every temperature times the instance's multiplier.

        Args:
            student_logits (Tensor): ``[N, C]``.
            teacher_logits (Tensor): ``[N, C]``.
            gt_labels (Tensor, optional): ``[N]`` class indices; required when acting.
        """
        self._check_inputs(student_logits, teacher_logits)
        num = student_logits.size(0)
        base_out = (
            None if self.base is None else self.base(student_logits, teacher_logits, gt_labels)
        )
        if not (self.training and self.acting):
            if self.training and not self.driven and not self._warned_undriven:
                self._warned_undriven = True
                warnings.warn(
                    'RLTemperature is training without RLKDHook (add '
                    "dict(type='rlkd_mm.RLKDHook') to custom_hooks): it keeps the warm-up "
                    'temperature and the agent never acts or learns'
                )
            if self.training and self.driven and num > 0 and gt_labels is not None:
                self._accumulate_warmup_states(student_logits, teacher_logits, gt_labels, base_out)
            return self._warmup_output(num, student_logits, base_out)
        if gt_labels is None:
            raise ValueError('RLTemperature needs gt_labels in training, got gt_labels=None')
        if num == 0:
            self.num_empty_batches += 1
            return self._warmup_output(0, student_logits, base_out)
        agent = self.agent
        if agent.device != student_logits.device:
            agent.to(student_logits.device)
        # The agent works in float32 whatever the training precision (e.g. under --amp).
        with torch.autocast(student_logits.device.type, enabled=False):
            states = self._states(student_logits, teacher_logits, gt_labels, base_out)
            if not bool(torch.isfinite(states).all()):
                # Non-finite logits: the optimizer skips this step anyway; the agent neither
                # acts nor stores anything of it (it would corrupt its statistics).
                self.num_nonfinite_batches += 1
                warnings.warn(
                    f'RLTemperature: non-finite instance states at iteration {self.iteration}; '
                    'the batch keeps the warm-up temperature and is not stored'
                )
                return self._warmup_output(num, student_logits, base_out)
            # The same test as ``high_quality_mask``, read off the state (no second softmax).
            if self.shuffle_states:
                perm = torch.randperm(num, generator=self._shuffle_generator)
                states = states[perm.to(states.device)]
            hq_mask = (states[:, _TEACHER_CORRECT] > 0.5) & (
                states[:, _TEACHER_GT_PROB] >= agent.hq_tau
            )
            actions, step = agent.act(states, hq_mask, deterministic=self.deterministic)
        self._pending = step if self._pending is None else AgentStep.cat([self._pending, step])
        if self.dump_size > 0:
            self._append_dump(step, states)
        return self.apply_actions(actions.to(student_logits.dtype), base_out)

    def apply_actions(
        self, actions: Tensor, base_out: Optional[TemperatureOutput]
    ) -> TemperatureOutput:
        """The output for the agent's values ``[N]``: temperatures ``(T, T)`` without a base,
        the base's output scaled by the multipliers on a base."""
        if base_out is None:
            return TemperatureOutput(actions, actions)
        return scale_output(base_out, actions.to(base_out.t_student.dtype))

    def candidate_outputs(
        self, student_logits: Tensor, teacher_logits: Tensor, gt_labels: Tensor, actions: Tensor
    ) -> TemperatureOutput:
        """The output for rows of instances (e.g. K copies of a batch) and one agent value per
        row ``[N]``, as :meth:`forward` would give it when acting; the agent is not called."""
        base_out = (
            None if self.base is None else self.base(student_logits, teacher_logits, gt_labels)
        )
        return self.apply_actions(actions.to(student_logits.dtype), base_out)

    @property
    def reference_action(self) -> float:
        """The value whose output is the reference of a counterfactual comparison: ``a = 1``
        (the base itself) on a base, the warm-up temperature without one."""
        return 1.0 if self.base is not None else self.warmup_temperature

    def _warmup_output(
        self, num: int, like: Tensor, base_out: Optional[TemperatureOutput]
    ) -> TemperatureOutput:
        if base_out is not None:
            return base_out
        t = self._full(num, self.warmup_temperature, like)
        return TemperatureOutput(t, t)

    def _states(
        self,
        student_logits: Tensor,
        teacher_logits: Tensor,
        gt_labels: Tensor,
        base_out: Optional[TemperatureOutput] = None,
    ) -> Tensor:
        """Float32 instance states ``[N, len(state_names)]`` (maybe non-finite: see
        ``forward``)."""
        states = instance_state(
            student_logits.detach().float(),
            teacher_logits.detach().float(),
            gt_labels,
            self.progress,
            self.score_type,
        )
        if base_out is None:
            return states
        extra = base_state(student_logits, teacher_logits, base_out, self.score_type)
        return torch.cat([states, extra], dim=1)

    def _accumulate_warmup_states(
        self,
        student_logits: Tensor,
        teacher_logits: Tensor,
        gt_labels: Tensor,
        base_out: Optional[TemperatureOutput] = None,
    ) -> None:
        """Sum the warm-up states' moments, so the agent's normaliser is warm when it acts.
        Rows with a non-finite value are left out, without a host synchronisation."""
        with torch.no_grad(), torch.autocast(student_logits.device.type, enabled=False):
            states = self._states(student_logits, teacher_logits, gt_labels, base_out).double()
            finite = torch.isfinite(states).all(dim=1, keepdim=True)
            states = torch.where(finite, states, 0.0)
            new = (finite.sum().double(), states.sum(dim=0), (states * states).sum(dim=0))
        if self._warmup_moments is None:
            self._warmup_moments = new
        else:
            self._warmup_moments = tuple(a + b for a, b in zip(self._warmup_moments, new))

    def pop_warmup_moments(self) -> Optional[Tuple[Tensor, Tensor, Tensor]]:
        """``(count, sum, sum of squares)`` of the states seen during warm-up (float64), or
        None; forgotten here. ``RLKDHook`` sums them over ranks and merges them into the
        agent's normaliser when the agent starts acting."""
        out, self._warmup_moments = self._warmup_moments, None
        return out

    # ------------------------------------------------------------------ used by RLKDHook
    def pop_pending(self) -> Optional[AgentStep]:
        """The step of the current iteration (None if nothing was acted on), forgotten here."""
        step, self._pending = self._pending, None
        return step

    def record_rewards(
        self, temperatures: Tensor, rewards: Tensor, step: Optional[AgentStep] = None
    ) -> float:
        """Keep the last ``dump_size`` rewarded instances as rows of ``REWARD_RECORD_COLUMNS``:
        temperature, reward centred on its batch, and, given the ``step`` that acted, the
        standardised exploration noise (``RLKDAgent.exploration_noise``, NaN for an instance
        that took the mean action) and the teacher's confidence in the label. The reward's
        action signal for analysis (``tools/analysis/policy_report.py``).

        Returns:
            float: this batch's action signal, the mean of noise x centred reward over its
            explored instances (> 0: the rewards push the mean temperature up); NaN without
            a step or an explored instance. ``RLKDHook`` logs it as ``rlkd_action_signal``,
            so its course over the whole training is in the run's scalars.
        """
        if rewards.numel() == 0:
            return float('nan')
        centred = rewards.detach().float() - rewards.detach().float().mean()
        nan = torch.full_like(centred, float('nan'))
        noise, confidence = nan, nan
        if step is not None:
            noise = self.agent.exploration_noise(step).float().to(centred.device)
            confidence = step.raw_states[:, _TEACHER_GT_PROB].float().to(centred.device)
        explored = torch.isfinite(noise)
        signal = (
            float((noise[explored] * centred[explored]).mean())
            if bool(explored.any())
            else float('nan')
        )
        if self.dump_size > 0:
            rows = torch.stack(
                [temperatures.detach().float().to(centred.device), centred, noise, confidence],
                dim=1,
            ).cpu()
            if self._reward_rows is not None:
                rows = torch.cat([self._reward_rows, rows])
            self._reward_rows = rows[-self.dump_size :]
        return signal

    def reward_record(self) -> Tensor:
        """``[n, 4]`` rows (see ``REWARD_RECORD_COLUMNS``), oldest first."""
        if self._reward_rows is None:
            return torch.zeros((0, len(REWARD_RECORD_COLUMNS)))
        return self._reward_rows

    def dump(self) -> Tensor:
        """Dumped rows ``[n, len(DUMP_COLUMNS)]`` on the CPU, oldest first."""
        if self._dump_rows is None:
            return torch.zeros((0, len(DUMP_COLUMNS)))
        rows = self._dump_rows[: self._dump_filled].cpu()
        if self._dump_filled == self.dump_size:
            rows = rows.roll(-self._dump_next, dims=0)
        return rows

    def rl_state_dict(self) -> Dict[str, Any]:
        """Policy-side state that is not in the module's state dict (agent included)."""
        pending = self._pending
        return dict(
            agent=self.agent.state_dict(),
            pending=None if pending is None else pending.to('cpu').to_dict(),
            num_empty_batches=self.num_empty_batches,
            # states seen in a warm-up not yet over (merged when the agent starts acting)
            warmup_moments=tensors_to(self._warmup_moments, 'cpu'),
            dump=self.dump(),
            reward_record=self.reward_record().clone(),
            shuffle_generator=self._shuffle_generator.get_state(),
        )

    def load_rl_state_dict(self, state: Dict[str, Any]) -> None:
        self.agent.load_state_dict(state['agent'])
        pending = state.get('pending')
        self._pending = (
            None if pending is None else AgentStep.from_dict(pending).to(self.agent.device)
        )
        self.num_empty_batches = int(state.get('num_empty_batches', 0))
        if state.get('shuffle_generator') is not None:
            self._shuffle_generator.set_state(state['shuffle_generator'])
        self._warmup_moments = tensors_to(state.get('warmup_moments'), self.agent.device)
        record = state.get('reward_record')
        if (
            record is not None
            and record.numel() > 0
            and record.size(1) < len(REWARD_RECORD_COLUMNS)
        ):
            # a record saved before the noise and confidence columns existed
            pad = torch.full(
                (record.size(0), len(REWARD_RECORD_COLUMNS) - record.size(1)), float('nan')
            )
            record = torch.cat([record, pad], dim=1)
        self._reward_rows = None if record is None or record.numel() == 0 else record.clone()
        self._dump_rows, self._dump_next, self._dump_filled = None, 0, 0
        dump = state.get('dump')
        if self.dump_size > 0 and dump is not None and dump.numel() > 0:
            self._write_dump(dump[-self.dump_size :].to(self.agent.device))

    # ------------------------------------------------------------------ internals
    def _append_dump(self, step: AgentStep, states: Tensor) -> None:
        rows = torch.stack(
            [
                torch.full_like(step.temperatures, float(self.iteration)),
                step.temperatures,
                step.hq_mask.float(),
                states[:, 0],
                states[:, 1],
            ],
            dim=1,
        )
        self._write_dump(rows[-self.dump_size :])

    def _write_dump(self, rows: Tensor) -> None:
        if self._dump_rows is None:
            self._dump_rows = rows.new_zeros((self.dump_size, len(DUMP_COLUMNS)))
        elif self._dump_rows.device != rows.device:
            self._dump_rows = self._dump_rows.to(rows.device)
        num = rows.size(0)
        # Positions are computed on the host from counters: no device synchronisation.
        index = (torch.arange(num) + self._dump_next) % self.dump_size
        self._dump_rows[index.to(rows.device)] = rows.float()
        self._dump_next = (self._dump_next + num) % self.dump_size
        self._dump_filled = min(self._dump_filled + num, self.dump_size)

    def extra_repr(self) -> str:
        if self.base is not None:
            return (
                f'a_min={self.a_min}, a_max={self.a_max}, score_type={self.score_type!r}, '
                f'deterministic={self.deterministic}'
            )
        return (
            f't_min={self.t_min}, t_max={self.t_max}, t_init={self.t_init}, '
            f'warmup_temperature={self.warmup_temperature}, score_type={self.score_type!r}, '
            f'deterministic={self.deterministic}'
        )
