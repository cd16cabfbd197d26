"""CIST (arXiv 2605.20357, 2026): separate per-instance teacher and student temperatures set from
each model's largest logit, plus a per-instance KD weight."""

from typing import Optional

import torch
from torch import Tensor

from rlkd_mm.registry import MODELS

from .base import BaseTemperature, TemperatureOutput, check_temperature_range


@MODELS.register_module()
class CISTTemperature(BaseTemperature):
    """Consistently informative soft-label temperatures, one pair and one weight per instance.

    The paper's abstract states the principle: the entropy of the teacher's soft label is governed
    by the ratio of its largest logit to the temperature, so each instance gets the teacher
    temperature that puts this ratio at a target, the student gets its own temperature by the same
    rule (no rigid logit-scale matching between the two), and the KD term is reweighted by the
    teacher's confidence and the student's difficulty. Its exact formulas could not be read, so
    this is our implementation of that principle:

    - sharpness ``m = max_c z_c - mean_c z_c`` for softmax scores (the largest logit of the
      zero-mean logits, so the rule is shift invariant like the softmax), and ``m = max_c |z_c|``
      for sigmoid scores (as in :class:`DTKDTemperature`; the raw maxima of dense-head positives
      are negative early in training);
    - ``T_t = clamp(m_t / rho, t_min, t_max)`` and ``T_s = clamp(m_s / rho, t_min, t_max)``;
      the KD losses scale the KL by ``T_s * T_t``;
    - weight ``w = c_t * (1 + d_s)``, normalised to mean 1 over the batch, with the teacher's
      confidence ``c_t`` (its largest class probability at T = 1) and the student's difficulty
      ``d_s = 1 - p_s(y)`` (one minus the student's probability of the ground-truth class, of the
      teacher's top class when no labels are given). The weight is detached and multiplies each
      instance's KD term; its batch mean of 1 keeps the KD term's overall weight at the loss's
      ``loss_weight``.

    Temperatures and weights are detached.

    Args:
        rho (float): Target ratio of the largest (centred) logit to the temperature, > 0. Larger
            rho gives lower temperatures (sharper soft labels). Defaults to 2.0.
        t_min (float): Lower clamp of both temperatures, > 0. Defaults to 0.5.
        t_max (float): Upper clamp, >= t_min. Defaults to 20.0.
        reweight (bool): Return the per-instance weight (else ``weight`` is None).
            Defaults to True.
        score_type (str): See :class:`BaseTemperature`. Defaults to 'softmax'.
    """

    def __init__(
        self,
        rho: float = 2.0,
        t_min: float = 0.5,
        t_max: float = 20.0,
        reweight: bool = True,
        score_type: str = 'softmax',
    ) -> None:
        super().__init__(score_type=score_type)
        if not rho > 0:
            raise ValueError(f'rho must be > 0, got rho={rho}')
        check_temperature_range(t_min, t_max)
        self.rho = float(rho)
        self.t_min = float(t_min)
        self.t_max = float(t_max)
        self.reweight = bool(reweight)

    def _sharpness(self, logits: Tensor) -> Tensor:
        if self.score_type == 'sigmoid':
            return logits.abs().max(dim=1).values
        return logits.max(dim=1).values - logits.mean(dim=1)

    def _probs(self, logits: Tensor) -> Tensor:
        return logits.sigmoid() if self.score_type == 'sigmoid' else logits.softmax(dim=1)

    @torch.no_grad()
    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, gt_labels: Optional[Tensor] = None
    ) -> TemperatureOutput:
        """Return ``TemperatureOutput(T_s[N], T_t[N], weight[N])`` (weight None without
        ``reweight``); the prefactor is the default ``T_s * T_t``.

        Args:
            student_logits (Tensor): Shape [N, C].
            teacher_logits (Tensor): Shape [N, C].
            gt_labels (Tensor, optional): Shape [N], the classes the student's difficulty is
                measured on; without them the teacher's top class.
        """
        self._check_inputs(student_logits, teacher_logits)
        student_logits, teacher_logits = student_logits.detach(), teacher_logits.detach()
        t_s = (self._sharpness(student_logits) / self.rho).clamp(self.t_min, self.t_max)
        t_t = (self._sharpness(teacher_logits) / self.rho).clamp(self.t_min, self.t_max)
        if not self.reweight:
            return TemperatureOutput(t_s, t_t)
        p_t = self._probs(teacher_logits)
        confidence = p_t.max(dim=1).values if p_t.numel() else p_t.new_zeros(0)
        target = gt_labels if gt_labels is not None else p_t.argmax(dim=1)
        target = target.to(student_logits.device).long().clamp(0, student_logits.shape[1] - 1)
        p_s = self._probs(student_logits).gather(1, target[:, None]).squeeze(1)
        raw = confidence * (2.0 - p_s)
        weight = raw / raw.mean().clamp_min(1e-12) if raw.numel() else raw
        return TemperatureOutput(t_s, t_t, weight)

    def extra_repr(self) -> str:
        return (
            f'rho={self.rho}, t_min={self.t_min}, t_max={self.t_max}, reweight={self.reweight}, '
            f'score_type={self.score_type!r}'
        )
