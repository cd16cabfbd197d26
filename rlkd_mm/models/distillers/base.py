"""The part every distiller shares: building a student and a frozen teacher, choosing the
temperatures, bookkeeping of the KD losses."""

import contextlib
import os.path as osp
from typing import Any, Dict, Iterator, Optional, Tuple, Union

import torch
from mmengine.logging import MessageHub, print_log
from mmengine.model import BaseModel
from mmengine.registry import MODELS as ROOT_MODELS
from torch import Tensor, nn

from rlkd_mm.registry import MODELS
from rlkd_mm.temperature import TemperatureOutput
from rlkd_mm.utils.config import load_model_config
from rlkd_mm.utils.fileio import check_checkpoint_readable, load_weights_only, resolve_checkpoint

ModelCfg = Union[str, dict]


def _strip_prefix(state_dict: dict, prefix: str) -> dict:
    if state_dict and all(k.startswith(prefix) for k in state_dict):
        return {k[len(prefix) :]: v for k, v in state_dict.items()}
    return state_dict


def load_teacher_checkpoint(teacher: nn.Module, path: str) -> None:
    """Load ``path`` into ``teacher`` strictly, raising on any key mismatch.

    Accepts an mmengine checkpoint (``state_dict`` entry), a plain state dict, a DDP state dict
    (``module.`` prefix) or a distiller checkpoint's teacher (``teacher.`` prefix). ``path`` may
    be a local file, an ``http(s)://`` URL or a ``torchvision://`` / ``open-mmlab://`` model-zoo
    name (downloaded once, see ``resolve_checkpoint``); every file is loaded weights-only.
    """
    local = resolve_checkpoint(path)
    if not osp.isfile(local):
        raise FileNotFoundError(f'teacher checkpoint not found: {path}')
    check_checkpoint_readable(local, what='teacher checkpoint')
    ckpt = load_weights_only(local, what='teacher checkpoint', source=path)
    state_dict = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    state_dict = _strip_prefix(_strip_prefix(dict(state_dict), 'module.'), 'teacher.')
    if any(k.startswith('teacher.') for k in state_dict):
        state_dict = {
            k[len('teacher.') :]: v for k, v in state_dict.items() if k.startswith('teacher.')
        }
    result = teacher.load_state_dict(state_dict, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise RuntimeError(
            f'teacher checkpoint {path} does not match the teacher model: '
            f'missing keys {result.missing_keys}; unexpected keys {result.unexpected_keys}'
        )


class RewardCacheMixin:
    """What ``RLKDHook``'s reward unit needs from a model (an ``nn.Module``): ``reward_items``,
    the ``reward_keep`` set by the hook before each training iteration, and
    ``pop_reward_cache()`` after its optimizer step. The model's training forward calls
    :meth:`keep_task_loss` with its task losses and :meth:`keep_for_reward` with what else
    :meth:`keeps` asks for."""

    _reward_cache: Optional[Dict[str, Any]] = None

    #: What a training forward can keep (``rlkd_mm.engine.rewards.BaseReward`` describes each
    #: item): 'task_loss' here; a model that also gives 'instance_losses' (with an
    #: ``instance_losses(kept)`` method), 'logit_grads' (``last_layer_gradients(kept)``) or
    #: 'candidate_grads' (``candidate_logit_grads``, ``last_layer`` and ``quiz_gradients``)
    #: adds them.
    reward_items: Tuple[str, ...] = ('task_loss',)
    #: What the current iteration's forward keeps (set by ``RLKDHook`` before every iteration).
    reward_keep: Tuple[str, ...] = ()

    def keeps(self) -> Tuple[str, ...]:
        """What this forward keeps: ``reward_keep`` in training, nothing in eval mode."""
        return tuple(self.reward_keep) if self.training else ()

    def keeps_instances(self) -> bool:
        """Whether this forward keeps anything per instance (beyond the batch's task loss)."""
        return any(item != 'task_loss' for item in self.keeps())

    def keep_for_reward(self, **items: Any) -> None:
        """Keep ``items`` (tensors detached) until ``RLKDHook`` pops them after the step."""
        kept = dict(self._reward_cache or {})
        kept.update({k: v.detach() if isinstance(v, Tensor) else v for k, v in items.items()})
        self._reward_cache = kept

    def keep_task_loss(self, losses: Dict[str, Tensor]) -> None:
        """Keep the student's own (task) loss of this batch if asked ('task_loss'), summed the
        way mmengine's ``parse_losses`` sums what it optimises (forwards of one iteration are
        averaged by the reward unit: ``task_loss_sum`` / ``task_loss_count``)."""
        if 'task_loss' not in self.keeps():
            return
        total = None
        for key, value in losses.items():
            if 'loss' not in key:
                continue
            values = value if isinstance(value, (list, tuple)) else [value]
            for v in values:
                total = v.detach().mean() if total is None else total + v.detach().mean()
        if total is not None:
            total = total.detach().float().reshape(())
            kept = self._reward_cache or {}
            if 'task_loss_sum' in kept:
                total = kept['task_loss_sum'] + total
            self.keep_for_reward(
                task_loss_sum=total, task_loss_count=kept.get('task_loss_count', 0) + 1
            )

    def pop_reward_cache(self) -> Optional[Dict[str, Any]]:
        """What this iteration's forward kept (None if nothing), forgotten here."""
        kept, self._reward_cache = self._reward_cache, None
        return kept


class BaseDistiller(RewardCacheMixin, BaseModel):
    """A student trained with its own losses plus KD from a frozen teacher.

    The teacher is a real submodule (it moves with ``.to()`` and is saved with the distiller
    under the ``teacher.`` prefix) but its parameters never require grad, it stays in eval mode
    even when the distiller trains (its BN statistics never change), and
    ``DistillerOptimWrapperConstructor`` keeps it out of the optimizer. ``predict`` and
    ``tensor`` modes are the student's, so stock evaluators and the downstream ``tools/test.py``
    see an ordinary model.

    Args:
        student (str | dict): the student model config, or a config file whose ``model`` is
            used (local path, or ``'mmdet::...'`` / ``'mmpretrain::...'``).
        teacher (str | dict): the teacher, given like ``student``.
        teacher_ckpt (str, optional): checkpoint of the trained teacher, loaded strictly and
            weights-only when the distiller is built: a local path, an ``http(s)://`` URL or a
            ``torchvision://`` / ``open-mmlab://`` name (downloaded once into torch hub's
            cache). ``None`` keeps a randomly initialised teacher and warns.
        temperature (dict): the temperature policy config (``FixedTemperature``,
            ``CTKDTemperature``, ``LogitStdTemperature``, ``ScaledLogitStdTemperature``,
            ``DTKDTemperature``, ``CISTTemperature``, ``RandomTemperature``,
            ``RuleTemperature``, ``RLTemperature``); it returns a ``TemperatureOutput``.
        data_preprocessor (dict, optional): a preprocessor config with a ``type``; by default
            (and for a dict without ``type``) the student's own preprocessor is used.
        init_cfg (dict, optional): initialisation config of the distiller.
    """

    def __init__(
        self,
        student: ModelCfg,
        teacher: ModelCfg,
        teacher_ckpt: Optional[str] = None,
        temperature: dict = dict(type='rlkd_mm.FixedTemperature', temperature=4.0),
        data_preprocessor: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ) -> None:
        student_model = ROOT_MODELS.build(load_model_config(student))
        teacher_model = ROOT_MODELS.build(load_model_config(teacher))
        if data_preprocessor is None or 'type' not in data_preprocessor:
            # A typeless dict is what mmengine's Runner injects from a top-level
            # `data_preprocessor` of a downstream config: the student's own preprocessor, built
            # from the student config (with e.g. its mixup batch augments), is the one meant.
            data_preprocessor = student_model.data_preprocessor
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        _warn_if_preprocessing_differs(self.data_preprocessor, teacher_model.data_preprocessor)
        self.student = student_model
        self.teacher = teacher_model
        self.temperature = MODELS.build(temperature)
        self.teacher_ckpt = teacher_ckpt
        if teacher_ckpt is None:
            print_log(
                'teacher_ckpt is None: distilling from a randomly initialised teacher',
                logger='current',
                level=30,
            )
        else:
            load_teacher_checkpoint(self.teacher, teacher_ckpt)
            # init_weights() must not overwrite the loaded weights.
            self.teacher._is_init = True
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        # Multiplier of the KD terms, set per iteration by KDWarmupHook (1 without it).
        self.kd_warmup_factor = 1.0

    #: Loss keys of the distillation terms (what ``kd_warmup_factor`` scales).
    kd_loss_keys: Tuple[str, ...] = ('loss_kd', 'loss_ld', 'loss_reg_kd')

    def apply_kd_warmup(self, losses: Dict[str, Tensor]) -> None:
        """Scale the distillation terms of ``losses`` by ``kd_warmup_factor`` (in place)."""
        if self.kd_warmup_factor != 1.0:
            for key in self.kd_loss_keys:
                if key in losses:
                    losses[key] = losses[key] * self.kd_warmup_factor

    def train(self, mode: bool = True) -> 'BaseDistiller':
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        # predict / tensor: exactly the student's behaviour (the teacher's inside
        # ``predicting_with_teacher``, e.g. for ``TeacherValHook``)
        return self._predictor()(inputs, data_samples, mode=mode)

    def predict(self, inputs, data_samples=None):
        return self._predictor()(inputs, data_samples, mode='predict')

    def _predictor(self):
        return self.teacher if getattr(self, '_predict_with_teacher', False) else self.student

    @contextlib.contextmanager
    def predicting_with_teacher(self) -> Iterator[None]:
        """``predict`` / ``tensor`` modes use the teacher inside the block."""
        self._predict_with_teacher = True
        try:
            yield
        finally:
            self._predict_with_teacher = False

    # ----------------------------------------------------------------- KD helpers
    @staticmethod
    def _current_iter() -> Optional[int]:
        return MessageHub.get_current_instance().get_info('iter')

    def _check_finite(self, name: str, tensor: Tensor) -> None:
        """Warn about non-finite logits: the total loss is then non-finite too, and the
        optimizer wrapper skips the step (``NonFiniteSkipOptimWrapper``)."""
        if not torch.isfinite(tensor).all():
            print_log(
                f'non-finite {name} at training iteration {self._current_iter()}',
                logger='current',
                level=30,
            )

    def choose_temperatures(
        self, student_logits: Tensor, teacher_logits: Tensor, gt_labels: Optional[Tensor] = None
    ) -> Tuple[TemperatureOutput, Dict[str, Tensor]]:
        """The policy's :class:`TemperatureOutput` for the instances and statistics for the log.

        Args:
            student_logits (Tensor): [N, C], with gradient (logit standardisation and DTKD use
                it).
            teacher_logits (Tensor): [N, C].
            gt_labels (Tensor, optional): [N] ground-truth labels.

        Returns:
            tuple: ``(output, stats)``: the policy's output with every term's ``weight``
            detached, and ``stats``, the non-loss scalars ``t_mean``, ``t_std``, ``t_min``,
            ``t_max`` (of the student temperature) and, with a weight, ``kd_weight_std``.

        Raises:
            TypeError: the policy returned anything but a ``TemperatureOutput``.
        """
        self._check_finite('student logits', student_logits.detach())
        self._check_finite('teacher logits', teacher_logits)
        out = self.temperature(student_logits, teacher_logits, gt_labels)
        if not isinstance(out, TemperatureOutput):
            raise TypeError(
                f'{type(self.temperature).__name__} must return a rlkd_mm.temperature.'
                f'TemperatureOutput(t_student, t_teacher, weight, prefactor, extra), got '
                f'{type(out).__name__}'
            )
        out = detach_weights(out)
        stats = {}
        if out.t_student.numel() > 0:
            t = out.t_student.detach()
            stats = dict(t_mean=t.mean(), t_std=t.std(unbiased=False), t_min=t.min(), t_max=t.max())
            if out.weight is not None:
                stats['kd_weight_std'] = out.weight.std(unbiased=False)
        return out, stats

    @staticmethod
    def policy_kd_loss(
        loss: nn.Module,
        preds_S: Tensor,
        preds_T: Tensor,
        output: TemperatureOutput,
        *args: Any,
        weight: Optional[Tensor] = None,
        **kwargs: Any,
    ) -> Tensor:
        """``loss`` summed over the policy's terms (``output.terms()``).

        Every term is ``loss(preds_S, preds_T, (T_s, T_t), *args, weight=w,
        prefactor=term.prefactor, **kwargs)`` with ``w`` the product of the distiller's own
        ``weight`` (e.g. LD's score weight) and the term's ``weight`` (either may be None).
        """
        total = None
        for term in output.terms():
            w = term.weight
            if weight is not None:
                w = weight if w is None else weight * w
            value = loss(
                preds_S,
                preds_T,
                term.temperatures,
                *args,
                weight=w,
                prefactor=term.prefactor,
                **kwargs,
            )
            total = value if total is None else total + value
        return total

    # ----------------------------------------------------------------- for RLKDHook's reward unit
    @torch.no_grad()
    def instance_losses(self, kept: Dict[str, Any]) -> Tensor:
        """The student's task loss per instance ``[N]`` on the inputs ``kept`` at a forward
        ('instance_losses'), evaluated now: no grad, in its current mode, its buffers (BN
        running statistics) and every RNG stream left as they were."""
        with student_untouched(self.student):
            return self._instance_losses(kept)

    @torch.no_grad()
    def last_layer_gradients(self, kept: Dict[str, Any]) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        """On the inputs ``kept`` at a forward ('logit_grads'), evaluated now (as
        :meth:`instance_losses`): the inputs of the layer that makes the class logits
        ``[M, D]``, the gradients of the mean task loss w.r.t. the logits ``[M, C]`` and each
        row's weight group ``[M]`` (None: one shared weight)."""
        with student_untouched(self.student):
            return self._probe_gradients(kept)

    def _logit_grads(self, losses: Dict[str, Any], logits: Any) -> Any:
        """Gradients of the objective the student is trained with (``parse_losses``' sum of
        the loss terms: task + KD) w.r.t. ``logits`` (a tensor or a list of tensors); the
        graph is kept for the optimizer's backward."""
        total, _ = self.parse_losses(losses)
        many = isinstance(logits, (list, tuple))
        grads = torch.autograd.grad(
            total, list(logits) if many else logits, retain_graph=True, allow_unused=True
        )
        inputs = list(logits) if many else [logits]
        grads = [torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs)]
        return grads if many else grads[0]

    def _instance_losses(self, cache: Dict[str, Any]) -> Tensor:
        """The student's task loss per instance ``[N]`` on the kept inputs."""
        raise NotImplementedError(f'{type(self).__name__} does not re-evaluate instances')

    def _probe_gradients(self, cache: Dict[str, Any]) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        """See :meth:`last_layer_gradients` (without its context)."""
        raise NotImplementedError(f'{type(self).__name__} gives no last-layer gradients')


def detach_weights(output: TemperatureOutput) -> TemperatureOutput:
    """``output`` with the weight of every term detached (extra terms included)."""
    weight = output.weight.detach() if output.weight is not None else None
    extra = tuple(detach_weights(term) for term in output.extra)
    return output._replace(weight=weight, extra=extra)


def with_score_type(temperature: dict, score_type: str) -> dict:
    """The policy config with ``score_type`` filled in when it is left out."""
    if not isinstance(temperature, dict):
        raise TypeError(
            f'temperature must be a policy config dict, got {type(temperature).__name__}'
        )
    temperature = temperature.copy()
    temperature.setdefault('score_type', score_type)
    return temperature


def check_score_type(policy, score_type: str) -> None:
    value = getattr(policy, 'score_type', None)
    if value != score_type:
        raise ValueError(
            f"this distiller needs temperature.score_type='{score_type}', got "
            f'temperature.score_type={value!r}'
        )


@contextlib.contextmanager
def captured_inputs(module: nn.Module, enabled: bool = True) -> Iterator[list]:
    """Collect the first input of every call of ``module`` inside the block (a forward hook,
    removed on exit); nothing is registered when ``enabled`` is False."""
    inputs: list = []
    handle = (
        module.register_forward_hook(lambda mod, args, output: inputs.append(args[0]))
        if enabled
        else None
    )
    try:
        yield inputs
    finally:
        if handle is not None:
            handle.remove()


@contextlib.contextmanager
def student_untouched(student: nn.Module) -> Iterator[None]:
    """Run the student (in its current mode) without changing its buffers (BN running
    statistics, counters) or any RNG stream (dropout draws from a forked one)."""
    saved = {name: buf.clone() for name, buf in student.named_buffers()}
    devices = sorted(
        {b.device.index or 0 for b in saved.values() if b.device.type == 'cuda'}
        | {p.device.index or 0 for p in student.parameters() if p.device.type == 'cuda'}
    )
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        buffers = dict(student.named_buffers())
        for name, value in saved.items():
            buffers[name].copy_(value)


def _preprocessing(preprocessor) -> dict:
    """What an image preprocessor does to the pixels: normalisation and channel order."""
    summary = dict(
        channel_conversion=bool(
            getattr(preprocessor, '_channel_conversion', False)
            or getattr(preprocessor, 'to_rgb', False)
        )
    )
    if getattr(preprocessor, '_enable_normalize', False):
        summary['mean'] = [round(float(v), 4) for v in preprocessor.mean.flatten()]
        summary['std'] = [round(float(v), 4) for v in preprocessor.std.flatten()]
    return summary


def _warn_if_preprocessing_differs(used, teacher_own) -> None:
    """The teacher sees the distiller's (the student's) preprocessed inputs; say so when its
    own config preprocesses differently, since it then sees off-distribution inputs."""
    ours, theirs = _preprocessing(used), _preprocessing(teacher_own)
    if ours != theirs:
        print_log(
            "the teacher is fed the inputs of the distiller's data_preprocessor "
            f'({ours}), but its own config preprocesses them differently ({theirs}); '
            'give student and teacher the same mean / std / channel order',
            logger='current',
            level=30,
        )
