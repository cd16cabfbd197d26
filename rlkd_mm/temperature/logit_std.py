"""Logit standardisation (Sun et al., CVPR 2024) as a per-instance, per-model temperature."""

from typing import Optional, Tuple

from torch import Tensor

from rlkd_mm.registry import MODELS

from .base import BaseTemperature


@MODELS.register_module()
class LogitStdTemperature(BaseTemperature):
    """Per-instance temperatures ``tau * std(z)`` of logit standardisation.

    Logit standardisation distils ``softmax(zscore(z) / tau)``, with ``zscore`` taken per instance
    over the classes. Softmax is invariant to shifts, so
    ``softmax((z - mean(z)) / (std(z) * tau)) = softmax(z / (tau * std(z)))``: the method is KD
    with the per-instance, per-model temperatures ``T_s = tau * std(z_s)`` and
    ``T_t = tau * std(z_t)``, which is what this policy returns.

    The std is torch's default (unbiased, as in the authors' code); it is clamped at ``eps`` so
    that constant logits give a finite temperature. For softmax scores ``T_s`` keeps its
    gradient w.r.t. the student logits, since the method standardises the student's logits
    inside the graph; ``T_t`` is detached. For sigmoid scores (dense detection) ``T_s`` is
    detached too: sigmoids are not shift-invariant, so dividing by ``tau * std(z)`` is no longer
    the z-score the method back-propagates through, and a gradient through ``std(z_s)`` would
    only push the class branch towards a logit scale that changes its own temperature.

    Scaling: our KD losses multiply each instance by ``T_s * T_t = tau^2 * std(z_s) * std(z_t)``,
    whereas the paper scales by ``tau^2`` only; the two differ per instance by the factor
    ``std(z_s) * std(z_t)``. Compensate in the loss weight if exact parity is wanted.

    Args:
        base_temperature (float): tau, > 0. Defaults to 2.0.
        eps (float): Lower bound of the std, > 0. Defaults to 1e-6.
        score_type (str): See :class:`BaseTemperature`. Not used. Defaults to 'softmax'.
    """

    def __init__(
        self, base_temperature: float = 2.0, eps: float = 1e-6, score_type: str = 'softmax'
    ) -> None:
        super().__init__(score_type=score_type)
        if not base_temperature > 0:
            raise ValueError(
                f'base_temperature must be > 0, got base_temperature={base_temperature}'
            )
        if not eps > 0:
            raise ValueError(f'eps must be > 0, got eps={eps}')
        self.base_temperature = float(base_temperature)
        self.eps = float(eps)

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, gt_labels: Optional[Tensor] = None
    ) -> Tuple[Tensor, Tensor]:
        """Return ``(tau * std(z_s), tau * std(z_t))``, each of shape [N].

        Args:
            student_logits (Tensor): Shape [N, C], C >= 2.
            teacher_logits (Tensor): Shape [N, C].
            gt_labels (Tensor, optional): Not used.
        """
        self._check_inputs(student_logits, teacher_logits)
        if student_logits.shape[1] < 2:
            raise ValueError(
                'LogitStdTemperature needs at least 2 classes, got logits of shape '
                f'{tuple(student_logits.shape)}'
            )
        if student_logits.shape[0] == 0:
            # torch warns about the degrees of freedom of an empty std; nothing to compute.
            empty = student_logits.sum(dim=1)
            return empty, empty.detach()
        z_s = student_logits if self.score_type == 'softmax' else student_logits.detach()
        t_s = self.base_temperature * z_s.std(dim=1).clamp_min(self.eps)
        t_t = self.base_temperature * teacher_logits.detach().std(dim=1).clamp_min(self.eps)
        return t_s, t_t

    def extra_repr(self) -> str:
        return f'base_temperature={self.base_temperature}, eps={self.eps}'
