"""The interface every temperature policy implements, and the type every policy returns."""

from typing import Iterator, NamedTuple, Optional, Tuple

import torch
from torch import Tensor, nn


def check_temperature_range(t_min: float, t_max: float, prefix: str = '') -> None:
    """Raise ``ValueError`` naming the keys when ``0 < t_min <= t_max`` does not hold."""
    if not t_min > 0:
        raise ValueError(f'{prefix}t_min must be > 0, got t_min={t_min}')
    if t_min > t_max:
        raise ValueError(f'{prefix}t_min must be <= t_max, got t_min={t_min}, t_max={t_max}')


class TemperatureOutput(NamedTuple):
    """What a temperature policy returns for N instances: one or more KD terms.

    The KD loss of a policy is a sum over its terms (:meth:`terms`): this output itself and each
    output in ``extra``. A distiller passes every term through the same KD loss (with the same
    ``loss_weight``, reduction and distiller-side weights) and adds the results::

        loss = sum(kd_loss(z_s, z_t, (o.t_student, o.t_teacher), weight=o.weight,
                           prefactor=o.prefactor) for o in out.terms())

    Attributes:
        t_student (Tensor): [N] student temperatures, > 0. May carry gradient (CTKD's learnable
            T; logit standardisation's and DTKD's T_s, which depend on the student logits).
        t_teacher (Tensor): [N] teacher temperatures, > 0. Policies with one shared T return
            the same tensor as ``t_student``.
        weight (Tensor, optional): [N] per-instance multiplier of this term's KD loss (CIST).
            Detached by the distiller. None: no weight.
        prefactor (Tensor, optional): [N] multiplier of each instance's KL divergence as the
            policy's authors scale it (e.g. ``tau^2`` for logit standardisation). Its gradient is
            kept. None: the losses' default ``T_s * T_t`` (Hinton's ``T^2`` for a shared T).
        extra (tuple[TemperatureOutput, ...]): further terms added to this one, e.g. DTKD's
            vanilla-KD term ``beta * tau^2 * KL(tau)``. Empty for most policies. Extra terms
            have no ``extra`` of their own (they are flattened by :meth:`terms`).
    """

    t_student: Tensor
    t_teacher: Tensor
    weight: Optional[Tensor] = None
    prefactor: Optional[Tensor] = None
    extra: Tuple['TemperatureOutput', ...] = ()

    def terms(self) -> Iterator['TemperatureOutput']:
        """This term (without ``extra``) followed by every extra term, flattened."""
        yield self._replace(extra=())
        for term in self.extra:
            if not isinstance(term, TemperatureOutput):
                raise TypeError(
                    'TemperatureOutput.extra must hold TemperatureOutput terms, got '
                    f'{type(term).__name__}'
                )
            yield from term.terms()

    @property
    def temperatures(self) -> Tuple[Tensor, Tensor]:
        """``(t_student, t_teacher)``, the pair a KD loss takes as its ``temperature``."""
        return self.t_student, self.t_teacher


class BaseTemperature(nn.Module):
    """Chooses one temperature per instance for a KD loss.

    Call: ``policy(student_logits[N, C], teacher_logits[N, C], gt_labels[N] | None)`` returns a
    :class:`TemperatureOutput` (``t_student[N]``, ``t_teacher[N]``, optional ``weight``,
    ``prefactor`` and ``extra`` terms). Policies with one shared temperature return the same
    tensor twice. The temperatures carry gradient where the policy's objective differentiates
    through them (CTKD's parameters; the student logits for logit standardisation and DTKD);
    all others are detached.

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
    ) -> TemperatureOutput:
        raise NotImplementedError

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
