"""Dynamic temperature KD (DTKD, 2024): temperatures from the two models' maximum logits."""

from typing import Optional, Tuple

import torch
from torch import Tensor

from rlkd_mm.registry import MODELS

from .base import BaseTemperature, TemperatureOutput, check_temperature_range


@MODELS.register_module()
class DTKDTemperature(BaseTemperature):
    """DTKD's per-instance student and teacher temperatures and its two-term objective.

    With ``m_s = max_c z_s`` and ``m_t = max_c z_t`` per instance and a base temperature tau:

    ``T_s = 2 * m_s / (m_s + m_t) * tau`` and ``T_t = 2 * m_t / (m_s + m_t) * tau``,

    so the sharper model (larger maximum logit) is softened more and ``T_s + T_t = 2 * tau``.
    The authors' loss (their public code) is, averaged over the instances,

    ``alpha * T_s * T_t * KL(softmax(z_t / T_t) || softmax(z_s / T_s))
    + beta * tau^2 * KL(softmax(z_t / tau) || softmax(z_s / tau))``

    with the gradient flowing through both temperatures (both depend on the student's maximum
    logit) and the sum ramped in linearly over a warm-up (20 of 240 epochs in their code; use
    ``KDWarmupHook`` with the same fraction of the schedule). This policy returns the first term
    as ``(T_s, T_t)`` with prefactor ``alpha * T_s * T_t`` and the second as an ``extra`` term
    ``(tau, tau)`` with prefactor ``beta * tau^2``; the distiller passes both through the same
    KD loss and adds them. Authors' defaults: alpha 3, beta 1, tau 4.

    The formula assumes positive maxima. Logits are shift invariant, so a maximum can be <= 0 and
    the sum can be ~0 or negative, which would give negative or unbounded temperatures. Two
    guards, both our choice (the authors' code has none): where ``m_s + m_t <= eps`` both
    temperatures fall back to tau (plain KD for that instance, no gradient); everything is then
    clamped to ``[t_min, t_max]`` (no gradient at the bounds).

    With ``score_type='sigmoid'`` (dense detection heads) the classes are independent sigmoids,
    which are *not* shift invariant, and early in training every class logit of a positive prior
    is negative (the heads' prior-probability bias): the raw maxima then give a student
    temperature at ``t_min`` and a teacher one far above tau, which sharpens the student's scores
    tenfold and stops it from learning. A sigmoid's sharpness is the magnitude of its logit, so
    for sigmoid scores ``m = max_c |z_c|`` (>= 0) replaces the maximum, our adaptation of the
    formula.

    The variant this project shipped before is ``alpha=1, beta=0, detach=True``: the first term
    alone, with detached temperatures (no gradient through ``T_s``, ``T_t`` or their product).

    Args:
        base_temperature (float): tau, > 0. Defaults to 4.0.
        alpha (float): Weight of the dynamic-temperature term, >= 0. Defaults to 3.0.
        beta (float): Weight of the vanilla-KD term at tau, >= 0; 0 drops the term. Defaults
            to 1.0.
        detach (bool): Detach the temperatures (and so the prefactor) from the student logits.
            Defaults to False (the authors' gradient).
        t_min (float): Lower clamp, > 0. Defaults to 0.1.
        t_max (float): Upper clamp, >= t_min. Defaults to 100.0.
        eps (float): Smallest ``m_s + m_t`` the formula is applied to. Defaults to 1e-6.
        score_type (str): See :class:`BaseTemperature`. 'sigmoid' measures each model's
            sharpness by its largest absolute logit. Defaults to 'softmax'.
    """

    def __init__(
        self,
        base_temperature: float = 4.0,
        alpha: float = 3.0,
        beta: float = 1.0,
        detach: bool = False,
        t_min: float = 0.1,
        t_max: float = 100.0,
        eps: float = 1e-6,
        score_type: str = 'softmax',
    ) -> None:
        super().__init__(score_type=score_type)
        if not base_temperature > 0:
            raise ValueError(
                f'base_temperature must be > 0, got base_temperature={base_temperature}'
            )
        if not alpha >= 0:
            raise ValueError(f'alpha must be >= 0, got alpha={alpha}')
        if not beta >= 0:
            raise ValueError(f'beta must be >= 0, got beta={beta}')
        check_temperature_range(t_min, t_max)
        if not eps > 0:
            raise ValueError(f'eps must be > 0, got eps={eps}')
        self.base_temperature = float(base_temperature)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.detach = bool(detach)
        self.t_min = float(t_min)
        self.t_max = float(t_max)
        self.eps = float(eps)

    def dynamic_temperatures(
        self, student_logits: Tensor, teacher_logits: Tensor
    ) -> Tuple[Tensor, Tensor]:
        """The clamped DTKD pair ``(T_s[N], T_t[N])`` (gradient kept unless ``detach``)."""
        if self.detach:
            student_logits = student_logits.detach()
        teacher_logits = teacher_logits.detach()
        tau = self.base_temperature
        if self.score_type == 'sigmoid':
            student_logits, teacher_logits = student_logits.abs(), teacher_logits.abs()
        max_s = student_logits.max(dim=1).values
        max_t = teacher_logits.max(dim=1).values.to(max_s.dtype)
        total = max_s + max_t
        valid = total.detach() > self.eps
        safe_total = torch.where(valid, total, torch.ones_like(total))
        fallback = torch.full_like(total, tau)
        t_s = torch.where(valid, 2 * max_s / safe_total * tau, fallback)
        t_t = torch.where(valid, 2 * max_t / safe_total * tau, fallback)
        return t_s.clamp(self.t_min, self.t_max), t_t.clamp(self.t_min, self.t_max)

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, gt_labels: Optional[Tensor] = None
    ) -> TemperatureOutput:
        """Return ``(T_s, T_t)`` with prefactor ``alpha T_s T_t`` and, for ``beta > 0``, the
        extra term ``(tau, tau)`` with prefactor ``beta tau^2``; all of shape [N].

        Args:
            student_logits (Tensor): Shape [N, C].
            teacher_logits (Tensor): Shape [N, C].
            gt_labels (Tensor, optional): Not used.
        """
        self._check_inputs(student_logits, teacher_logits)
        t_s, t_t = self.dynamic_temperatures(student_logits, teacher_logits)
        extra = ()
        if self.beta > 0:
            tau = self._full(t_s.shape[0], self.base_temperature, t_s)
            prefactor = self._full(t_s.shape[0], self.beta * self.base_temperature**2, t_s)
            extra = (TemperatureOutput(tau, tau, prefactor=prefactor),)
        return TemperatureOutput(t_s, t_t, prefactor=self.alpha * t_s * t_t, extra=extra)

    def extra_repr(self) -> str:
        return (
            f'base_temperature={self.base_temperature}, alpha={self.alpha}, beta={self.beta}, '
            f'detach={self.detach}, t_min={self.t_min}, t_max={self.t_max}'
        )
