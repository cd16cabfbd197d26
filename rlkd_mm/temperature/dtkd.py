"""Dynamic temperature KD (DTKD, 2024): temperatures from the two models' maximum logits."""

from typing import Optional, Tuple

import torch
from torch import Tensor

from rlkd_mm.registry import MODELS

from .base import BaseTemperature, check_temperature_range


@MODELS.register_module()
class DTKDTemperature(BaseTemperature):
    """Per-instance student and teacher temperatures of DTKD.

    With ``m_s = max_c z_s`` and ``m_t = max_c z_t`` per instance and a base temperature tau:

    ``T_s = 2 * m_s / (m_s + m_t) * tau`` and ``T_t = 2 * m_t / (m_s + m_t) * tau``,

    so the sharper model (larger maximum logit) is softened more and ``T_s + T_t = 2 * tau``.

    The formula assumes positive maxima. Logits are shift invariant, so a maximum can be <= 0 and
    the sum can be ~0 or negative, which would give negative or unbounded temperatures. Two
    guards, both our choice (the paper is silent): where ``m_s + m_t <= eps`` both temperatures
    fall back to tau (plain KD for that instance); everything is then clamped to
    ``[t_min, t_max]``. Both temperatures are detached.

    With ``score_type='sigmoid'`` (dense detection heads) the classes are independent sigmoids,
    which are *not* shift invariant, and early in training every class logit of a positive prior
    is negative (the heads' prior-probability bias): the raw maxima then give a student
    temperature at ``t_min`` and a teacher one far above tau, which sharpens the student's scores
    tenfold and stops it from learning. A sigmoid's sharpness is the magnitude of its logit, so
    for sigmoid scores ``m = max_c |z_c|`` (>= 0) replaces the maximum, our adaptation of the
    formula.

    Args:
        base_temperature (float): tau, > 0. Defaults to 4.0.
        t_min (float): Lower clamp, > 0. Defaults to 0.1.
        t_max (float): Upper clamp, >= t_min. Defaults to 100.0.
        eps (float): Smallest ``m_s + m_t`` the formula is applied to. Defaults to 1e-6.
        score_type (str): See :class:`BaseTemperature`. 'sigmoid' measures each model's
            sharpness by its largest absolute logit. Defaults to 'softmax'.
    """

    def __init__(
        self,
        base_temperature: float = 4.0,
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
        check_temperature_range(t_min, t_max)
        if not eps > 0:
            raise ValueError(f'eps must be > 0, got eps={eps}')
        self.base_temperature = float(base_temperature)
        self.t_min = float(t_min)
        self.t_max = float(t_max)
        self.eps = float(eps)

    @torch.no_grad()
    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, gt_labels: Optional[Tensor] = None
    ) -> Tuple[Tensor, Tensor]:
        """Return the detached DTKD temperatures (T_s[N], T_t[N]).

        Args:
            student_logits (Tensor): Shape [N, C].
            teacher_logits (Tensor): Shape [N, C].
            gt_labels (Tensor, optional): Not used.
        """
        self._check_inputs(student_logits, teacher_logits)
        tau = self.base_temperature
        if self.score_type == 'sigmoid':
            student_logits, teacher_logits = student_logits.abs(), teacher_logits.abs()
        max_s = student_logits.max(dim=1).values
        max_t = teacher_logits.max(dim=1).values.to(max_s.dtype)
        total = max_s + max_t
        valid = total > self.eps
        safe_total = torch.where(valid, total, torch.ones_like(total))
        t_s = torch.where(valid, 2 * max_s / safe_total * tau, torch.full_like(total, tau))
        t_t = torch.where(valid, 2 * max_t / safe_total * tau, torch.full_like(total, tau))
        return t_s.clamp(self.t_min, self.t_max), t_t.clamp(self.t_min, self.t_max)

    def extra_repr(self) -> str:
        return f'base_temperature={self.base_temperature}, t_min={self.t_min}, t_max={self.t_max}'
