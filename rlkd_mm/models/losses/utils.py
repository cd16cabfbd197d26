"""Reduction and temperature helpers shared by the per-instance-temperature KD losses.

mmdet stays an optional dependency of rlkd_mm, so the reduction helper is our own small version of
``mmdet.models.losses.utils.weight_reduce_loss`` with the same semantics.
"""

from numbers import Real
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

TemperatureType = Union[float, int, Tensor, Sequence[Union[float, int, Tensor]]]

_REDUCTIONS = ('none', 'mean', 'sum')


def check_reduction(reduction: str, key: str = 'reduction') -> str:
    """Return ``reduction`` if it is one of 'none', 'mean', 'sum', else raise ``ValueError``."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f'{key} must be one of {_REDUCTIONS}, got {key}={reduction!r}')
    return reduction


def weight_reduce_loss(
    loss: Tensor,
    weight: Optional[Tensor] = None,
    reduction: str = 'mean',
    avg_factor: Optional[float] = None,
) -> Tensor:
    """Apply an element-wise weight, then reduce, as mmdet's losses do.

    Args:
        loss (Tensor): Element-wise loss, here per instance, shape [N].
        weight (Tensor, optional): Element-wise weight, shape [N] (or broadcastable to ``loss``).
        reduction (str): 'none', 'mean' or 'sum'.
        avg_factor (float, optional): With 'mean', the sum is divided by this instead of N (plus
            float32 eps, as mmdet does). It cannot be combined with 'sum'.

    Returns:
        Tensor: ``loss`` (weighted) for 'none', else a 0-dim tensor.

    One deliberate difference from mmdet: an empty loss reduces to a zero for 'mean' (torch gives
    NaN), so a batch without instances (no positive prior) neither poisons training nor breaks the
    graph.
    """
    check_reduction(reduction)
    if weight is not None:
        loss = loss * weight
    if avg_factor is None:
        if reduction == 'mean':
            return loss.mean() if loss.numel() > 0 else loss.sum()
        if reduction == 'sum':
            return loss.sum()
        return loss
    if reduction == 'mean':
        # eps keeps avg_factor=0 (no positives) finite, as in mmdet.
        eps = torch.finfo(torch.float32).eps
        return loss.sum() / (avg_factor + eps)
    if reduction == 'sum':
        raise ValueError(
            f'avg_factor can not be used with reduction="sum", got avg_factor={avg_factor}'
        )
    return loss


def _to_vector(value: Union[float, int, Tensor], n: int, like: Tensor, key: str) -> Tensor:
    """One temperature argument as a positive vector [n] with ``like``'s dtype and device."""
    if isinstance(value, Tensor):
        if value.dim() == 0:
            vec = value.to(dtype=like.dtype, device=like.device).expand(n)
        elif value.shape == (n,):
            vec = value.to(dtype=like.dtype, device=like.device)
        else:
            raise ValueError(
                f'{key} must be a number, a 0-dim tensor or a tensor of shape '
                f'[N]=({n},), got shape {tuple(value.shape)}'
            )
    elif isinstance(value, Real) and not isinstance(value, bool):
        vec = torch.full((n,), float(value), dtype=like.dtype, device=like.device)
        if not float(value) > 0:
            raise ValueError(f'{key} must be > 0, got {key}={value}')
    else:
        raise TypeError(
            f'{key} must be a float, an int, a tensor or a pair of them, got '
            f'{type(value).__name__}: {value!r}'
        )
    # `not (t > 0)` also catches NaN temperatures.
    if vec.numel() > 0 and not bool((vec.detach() > 0).all()):
        bad = vec.detach()[~(vec.detach() > 0)]
        raise ValueError(
            f'{key} must be > 0 for every instance, got values such as {bad[:5].tolist()}'
        )
    return vec


def split_temperature(temperature: TemperatureType, n: int, like: Tensor) -> Tuple[Tensor, Tensor]:
    """Normalise the ``temperature`` argument of a KD loss to per-instance (T_s, T_t).

    Args:
        temperature (float | int | Tensor | tuple): One of
            - a number, the same T for every instance, student and teacher;
            - a 0-dim tensor, likewise (gradient kept, e.g. CTKD's global T);
            - a tensor [N], one T per instance shared by student and teacher;
            - a pair ``(T_student, T_teacher)`` whose items are any of the above.
        n (int): Number of instances N.
        like (Tensor): Tensor whose dtype and device the temperatures take (the student logits).

    Returns:
        tuple[Tensor, Tensor]: ``T_s`` [N] and ``T_t`` [N]. The same tensor twice unless a pair is
        given. Gradients of tensor temperatures are kept.

    Raises:
        TypeError: ``temperature`` is of another type, or a sequence that is not a pair.
        ValueError: a tensor of the wrong shape or a temperature that is not > 0.
    """
    if isinstance(temperature, tuple) and 'prefactor' in getattr(temperature, '_fields', ()):
        raise TypeError(
            'temperature is a policy output (TemperatureOutput): pass output.temperatures with '
            'prefactor=output.prefactor and weight=output.weight for each of output.terms(), '
            'or sum them with BaseDistiller.policy_kd_loss'
        )
    if isinstance(temperature, (tuple, list)):
        if len(temperature) != 2:
            raise TypeError(
                'temperature given as a sequence must be a pair (T_student, '
                f'T_teacher), got {len(temperature)} items'
            )
        t_s = _to_vector(temperature[0], n, like, 'temperature[0] (T_student)')
        t_t = _to_vector(temperature[1], n, like, 'temperature[1] (T_teacher)')
        return t_s, t_t
    t = _to_vector(temperature, n, like, 'temperature')
    return t, t


def check_instance_weight(weight: Optional[Tensor], n: int) -> None:
    """Raise ``ValueError`` unless ``weight`` is None or a tensor of shape [N]."""
    if weight is not None and tuple(weight.shape) != (n,):
        raise ValueError(
            f'weight must be a per-instance tensor of shape [N]=({n},), got shape '
            f'{tuple(weight.shape)}'
        )


def check_prefactor(prefactor: Optional[Tensor], n: int, like: Tensor) -> Optional[Tensor]:
    """``prefactor`` as a tensor [N] in ``like``'s dtype and device (gradient kept), or None.

    Accepts None, a number, a 0-dim tensor or a tensor of shape [N]; raises ``TypeError`` /
    ``ValueError`` otherwise.
    """
    if prefactor is None:
        return None
    if isinstance(prefactor, Tensor):
        if prefactor.dim() == 0:
            return prefactor.to(dtype=like.dtype, device=like.device).expand(n)
        if tuple(prefactor.shape) == (n,):
            return prefactor.to(dtype=like.dtype, device=like.device)
        raise ValueError(
            f'prefactor must be a number, a 0-dim tensor or a tensor of shape [N]=({n},), got '
            f'shape {tuple(prefactor.shape)}'
        )
    if isinstance(prefactor, Real) and not isinstance(prefactor, bool):
        return torch.full((n,), float(prefactor), dtype=like.dtype, device=like.device)
    raise TypeError(
        f'prefactor must be None, a number or a tensor, got {type(prefactor).__name__}: '
        f'{prefactor!r}'
    )


def check_logit_pair(preds_S: Tensor, preds_T: Tensor, dim: int) -> None:
    """Raise ``ValueError`` unless student and teacher outputs share one shape of ``dim`` dims."""
    if preds_S.dim() != dim or preds_S.shape != preds_T.shape:
        raise ValueError(
            f'preds_S and preds_T must have the same {dim}-dim shape, got '
            f'{tuple(preds_S.shape)} and {tuple(preds_T.shape)}'
        )
