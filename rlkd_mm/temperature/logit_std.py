"""Logit standardisation (Sun et al., CVPR 2024) as per-instance, per-model temperatures, and a
scaled variant of ours."""

from typing import Optional

from torch import Tensor

from rlkd_mm.registry import MODELS

from .base import BaseTemperature, TemperatureOutput


class _LogitStdBase(BaseTemperature):
    """Shared checks and the per-instance std of the two logit sets."""

    def __init__(self, base_temperature: float, eps: float, score_type: str) -> None:
        super().__init__(score_type=score_type)
        if not base_temperature > 0:
            raise ValueError(
                f'base_temperature must be > 0, got base_temperature={base_temperature}'
            )
        if not eps > 0:
            raise ValueError(f'eps must be > 0, got eps={eps}')
        self.base_temperature = float(base_temperature)
        self.eps = float(eps)

    def _check(self, student_logits: Tensor, teacher_logits: Tensor) -> None:
        self._check_inputs(student_logits, teacher_logits)
        if student_logits.shape[1] < 2:
            raise ValueError(
                f'{type(self).__name__} needs at least 2 classes, got logits of shape '
                f'{tuple(student_logits.shape)}'
            )

    def _student_logits(self, student_logits: Tensor) -> Tensor:
        # Softmax: the z-score is inside the graph, so T_s keeps its gradient. Sigmoid: detached
        # (see the class docstrings).
        return student_logits if self.score_type == 'softmax' else student_logits.detach()

    def extra_repr(self) -> str:
        return f'base_temperature={self.base_temperature}, eps={self.eps}'


@MODELS.register_module()
class LogitStdTemperature(_LogitStdBase):
    """Logit standardisation as its authors train it: ``tau^2 * KL(p_t || p_s)`` on z-scores.

    The authors' KD loss (their public code) is, per instance,
    ``tau^2 * KL(softmax(zscore(z_t) / tau) || softmax(zscore(z_s) / tau))`` with
    ``zscore(z) = (z - mean(z)) / (eps + std(z))`` over the classes, torch's unbiased std and
    ``eps = 1e-7``, the student's z-score inside the graph. Softmax is invariant to shifts, so
    ``softmax(zscore(z) / tau) = softmax(z / T)`` with ``T = tau * (eps + std(z))``: this policy
    returns ``T_s = tau * (eps + std(z_s))`` (with its gradient w.r.t. the student logits),
    ``T_t = tau * (eps + std(z_t))`` (detached) and the prefactor ``tau^2`` in place of the
    losses' default ``T_s * T_t``. With :class:`InstanceKDLoss` that is their objective exactly.

    Sigmoid scores (dense detection heads, our adaptation): sigmoids are not shift invariant, so
    dividing by ``T`` is not the z-score; we keep dividing the raw logits by ``tau * (eps +
    std(z))`` and detach ``T_s`` (a gradient through ``std(z_s)`` would only push the class
    branch towards a logit scale that changes its own temperature). The prefactor stays
    ``tau^2``.

    See :class:`ScaledLogitStdTemperature` for the variant this project shipped before, which
    scales each instance by ``T_s * T_t`` instead.

    Args:
        base_temperature (float): tau, > 0. Defaults to 2.0 (the authors' CIFAR value).
        eps (float): Added to the std, > 0, as in the authors' code. Defaults to 1e-7.
        score_type (str): See :class:`BaseTemperature`. Defaults to 'softmax'.
    """

    def __init__(
        self, base_temperature: float = 2.0, eps: float = 1e-7, score_type: str = 'softmax'
    ) -> None:
        super().__init__(base_temperature, eps, score_type)

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, gt_labels: Optional[Tensor] = None
    ) -> TemperatureOutput:
        """Return ``T_s = tau (eps + std(z_s))``, ``T_t = tau (eps + std(z_t))``, prefactor
        ``tau^2``, each of shape [N].

        Args:
            student_logits (Tensor): Shape [N, C], C >= 2.
            teacher_logits (Tensor): Shape [N, C].
            gt_labels (Tensor, optional): Not used.
        """
        self._check(student_logits, teacher_logits)
        tau = self.base_temperature
        if student_logits.shape[0] == 0:
            # torch warns about the degrees of freedom of an empty std; nothing to compute.
            empty = student_logits.sum(dim=1)
            return TemperatureOutput(empty, empty.detach(), prefactor=empty.detach())
        z_s = self._student_logits(student_logits)
        t_s = tau * (self.eps + z_s.std(dim=1))
        t_t = tau * (self.eps + teacher_logits.detach().std(dim=1))
        prefactor = self._full(student_logits.shape[0], tau**2, t_s)
        return TemperatureOutput(t_s, t_t.to(t_s.dtype), prefactor=prefactor)


@MODELS.register_module()
class ScaledLogitStdTemperature(_LogitStdBase):
    """Logit standardisation with a per-instance KD weight ``std(z_s) * std(z_t)``: our variant.

    The temperatures are logit standardisation's, ``T_s = tau * std(z_s)`` (gradient kept for
    softmax scores) and ``T_t = tau * std(z_t)`` (std clamped at ``eps``), but the KD losses scale
    each instance by their default ``T_s * T_t = tau^2 * std(z_s) * std(z_t)`` instead of the
    authors' ``tau^2``. Relative to :class:`LogitStdTemperature` this is

    - logit standardisation,
    - times a per-instance KD weight ``std(z_s) * std(z_t)`` (instances with widely spread logits
      count more), and
    - a gradient through ``std(z_s)`` in that weight, a push on the scale of the student's logits
      (the weight's own gradient lowers ``std(z_s)`` wherever the KL is positive).

    It is what this project shipped as "logit standardisation" before the authors' scaling was
    restored, kept under its own name with its own rows in the digits tables. For sigmoid scores
    ``T_s`` is detached, as in :class:`LogitStdTemperature`.

    Args:
        base_temperature (float): tau, > 0. Defaults to 2.0.
        eps (float): Lower bound of the std, > 0. Defaults to 1e-6.
        score_type (str): See :class:`BaseTemperature`. Defaults to 'softmax'.
    """

    def __init__(
        self, base_temperature: float = 2.0, eps: float = 1e-6, score_type: str = 'softmax'
    ) -> None:
        super().__init__(base_temperature, eps, score_type)

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, gt_labels: Optional[Tensor] = None
    ) -> TemperatureOutput:
        """Return ``(tau * std(z_s), tau * std(z_t))``, each of shape [N], and no prefactor (the
        losses' ``T_s * T_t``).

        Args:
            student_logits (Tensor): Shape [N, C], C >= 2.
            teacher_logits (Tensor): Shape [N, C].
            gt_labels (Tensor, optional): Not used.
        """
        self._check(student_logits, teacher_logits)
        if student_logits.shape[0] == 0:
            empty = student_logits.sum(dim=1)
            return TemperatureOutput(empty, empty.detach())
        z_s = self._student_logits(student_logits)
        t_s = self.base_temperature * z_s.std(dim=1).clamp_min(self.eps)
        t_t = self.base_temperature * teacher_logits.detach().std(dim=1).clamp_min(self.eps)
        return TemperatureOutput(t_s, t_t)
