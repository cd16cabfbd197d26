"""A control: a one-knob state rule, T_i = T0 * f(s_i)^k."""

from typing import Optional

import torch
from torch import Tensor

from rlkd_mm.registry import MODELS

from .base import BaseTemperature, TemperatureOutput, check_temperature_range

_FEATURES = ('teacher_gt_prob', 'teacher_margin')


@MODELS.register_module()
class RuleTemperature(BaseTemperature):
    """``T_i = clamp(T0 * f_i^k, t_min, t_max)`` from the teacher's confidence ``f_i``.

    The simplest state-dependent policy, with one knob ``k`` to tune on validation; RLKD has to
    beat it to be worth its cost. ``f_i`` is computed from the teacher's (detached) scores at
    T = 1, softmax probabilities (or sigmoid ones for ``score_type='sigmoid'``):

    - ``'teacher_gt_prob'``: the teacher's probability of the instance's label (of its own top
      class when no labels are given);
    - ``'teacher_margin'``: the teacher's top-1 minus top-2 probability.

    ``f`` is clamped to ``[f_min, 1]`` (a margin or probability of 0 would give 0 or an infinite
    temperature). ``k > 0`` lowers the temperature (sharper soft labels) where the teacher is
    unsure, ``k < 0`` raises it there; ``k = 0`` returns exactly what
    ``FixedTemperature(T0)`` returns. Student and teacher share ``T_i``; temperatures are
    detached and the KD losses scale by their default ``T_i^2``.

    Args:
        temperature (float): T0, > 0, within ``[t_min, t_max]``. Defaults to 4.0.
        power (float): k. Defaults to 0.0 (fixed T).
        feature (str): 'teacher_gt_prob' or 'teacher_margin'. Defaults to 'teacher_gt_prob'.
        t_min (float): Lower clamp, > 0. Defaults to 0.5.
        t_max (float): Upper clamp, >= t_min. Defaults to 20.0.
        f_min (float): Floor of ``f``, in (0, 1]. Defaults to 1e-3.
        score_type (str): See :class:`BaseTemperature`. Defaults to 'softmax'.
    """

    def __init__(
        self,
        temperature: float = 4.0,
        power: float = 0.0,
        feature: str = 'teacher_gt_prob',
        t_min: float = 0.5,
        t_max: float = 20.0,
        f_min: float = 1e-3,
        score_type: str = 'softmax',
    ) -> None:
        super().__init__(score_type=score_type)
        check_temperature_range(t_min, t_max)
        if not t_min <= temperature <= t_max:
            raise ValueError(
                f'temperature must lie in [t_min, t_max], got temperature={temperature}, '
                f't_min={t_min}, t_max={t_max}'
            )
        if feature not in _FEATURES:
            raise ValueError(f'feature must be one of {_FEATURES}, got feature={feature!r}')
        if not 0 < f_min <= 1:
            raise ValueError(f'f_min must lie in (0, 1], got f_min={f_min}')
        if not abs(power) < float('inf'):
            raise ValueError(f'power must be finite, got power={power}')
        self.temperature = float(temperature)
        self.power = float(power)
        self.feature = feature
        self.t_min = float(t_min)
        self.t_max = float(t_max)
        self.f_min = float(f_min)

    def confidence(self, teacher_logits: Tensor, gt_labels: Optional[Tensor] = None) -> Tensor:
        """``f`` [N] in ``[f_min, 1]`` (float32 at least), from the detached teacher logits."""
        logits = teacher_logits.detach()
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()
        probs = logits.sigmoid() if self.score_type == 'sigmoid' else logits.softmax(dim=1)
        if self.feature == 'teacher_margin':
            if probs.shape[1] < 2:
                raise ValueError(
                    "feature='teacher_margin' needs at least 2 classes, got logits of shape "
                    f'{tuple(probs.shape)}'
                )
            top2 = probs.topk(2, dim=1).values
            f = top2[:, 0] - top2[:, 1]
        else:
            target = gt_labels if gt_labels is not None else probs.argmax(dim=1)
            target = target.to(probs.device).long().reshape(-1, 1)
            f = probs.gather(1, target).squeeze(1)
        return f.clamp(self.f_min, 1.0)

    @torch.no_grad()
    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, gt_labels: Optional[Tensor] = None
    ) -> TemperatureOutput:
        """Return ``TemperatureOutput(T[N], T[N])``, detached, in the student logits' dtype.

        Args:
            student_logits (Tensor): Shape [N, C]; gives N, dtype and device.
            teacher_logits (Tensor): Shape [N, C].
            gt_labels (Tensor, optional): Shape [N], the labels of 'teacher_gt_prob'.
        """
        self._check_inputs(student_logits, teacher_logits)
        n = student_logits.shape[0]
        if self.power == 0 or n == 0:
            t = self._full(n, self.temperature, student_logits)
            return TemperatureOutput(t, t)
        f = self.confidence(teacher_logits, gt_labels)
        t = (self.temperature * f.pow(self.power)).clamp(self.t_min, self.t_max)
        t = t.to(dtype=student_logits.dtype, device=student_logits.device)
        return TemperatureOutput(t, t)

    def extra_repr(self) -> str:
        return (
            f'temperature={self.temperature}, power={self.power}, feature={self.feature!r}, '
            f't_min={self.t_min}, t_max={self.t_max}, f_min={self.f_min}'
        )
