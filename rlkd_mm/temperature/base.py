"""The interface every temperature policy implements."""

from typing import Optional, Tuple

import torch
from torch import Tensor, nn


def check_temperature_range(t_min: float, t_max: float, prefix: str = '') -> None:
    """Raise ``ValueError`` naming the keys when ``0 < t_min <= t_max`` does not hold."""
    if not t_min > 0:
        raise ValueError(f'{prefix}t_min must be > 0, got t_min={t_min}')
    if t_min > t_max:
        raise ValueError(f'{prefix}t_min must be <= t_max, got t_min={t_min}, t_max={t_max}')


class BaseTemperature(nn.Module):
    """Chooses one temperature per instance for a KD loss.

    Call: ``policy(student_logits[N, C], teacher_logits[N, C], gt_labels[N] | None)`` returns
    ``(T_student[N], T_teacher[N])``. Policies with one shared temperature return the same tensor
    twice. The returned temperatures carry gradient only for policies trained by the student's
    optimizer (CTKD); all others return detached tensors.

    Policies are ``nn.Module`` s so that learnable ones (CTKD) are saved, moved and optimised with
    the student. A policy whose learner must stay outside the student's optimizer (RLKD) keeps it
    out of the module tree; see ``RLTemperature``.

    Args:
        score_type (str): 'softmax' for mutually exclusive classes (classification, RoI heads
            with a background column), 'sigmoid' for dense detection heads that score every
            class independently. Policies that derive T from the logits may use it.
    """

    def __init__(self, score_type: str = 'softmax') -> None:
        super().__init__()
        if score_type not in ('softmax', 'sigmoid'):
            raise ValueError(f"score_type must be 'softmax' or 'sigmoid', got {score_type!r}")
        self.score_type = score_type

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, gt_labels: Optional[Tensor] = None
    ) -> Tuple[Tensor, Tensor]:
        raise NotImplementedError

    def record_task_loss(self, task_loss: Tensor) -> None:
        """Told the student's own task loss of the current batch (a 0-dim tensor).

        Called by the distillers on every training forward. Only RLKD uses it (its reward);
        the default does nothing.
        """

    @staticmethod
    def _check_inputs(student_logits: Tensor, teacher_logits: Tensor) -> None:
        if student_logits.shape != teacher_logits.shape or student_logits.dim() != 2:
            raise ValueError(
                'student_logits and teacher_logits must both be [N, C], got '
                f'{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}'
            )

    @staticmethod
    def _full(n: int, value: float, like: Tensor) -> Tensor:
        return torch.full((n,), float(value), dtype=like.dtype, device=like.device)
