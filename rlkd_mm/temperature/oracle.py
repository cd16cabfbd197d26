"""The headroom oracle: per instance, the temperature multiplier with the best one-step effect on
a held-out quiz batch."""

import math
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from torch import Tensor

from rlkd_mm.registry import MODELS

from .base import BaseTemperature, TemperatureOutput


def multiplier_grid(num: int, a_min: float = 0.5, a_max: float = 2.0) -> Tensor:
    """``num`` multipliers log-spaced in ``[a_min, a_max]`` (float64, [num])."""
    if not isinstance(num, int) or num < 1:
        raise ValueError(f'num_candidates must be an int >= 1, got {num!r}')
    if not 0 < a_min <= a_max:
        raise ValueError(f'multipliers need 0 < a_min <= a_max, got a_min={a_min}, a_max={a_max}')
    if num == 1:
        return torch.ones(1, dtype=torch.float64)
    return torch.logspace(math.log10(a_min), math.log10(a_max), num, dtype=torch.float64)


def scale_output(output: TemperatureOutput, a: Tensor) -> TemperatureOutput:
    """Every temperature of ``output`` (extra terms included) times ``a`` ([N] or scalar,
    detached); an explicit prefactor times ``a^2`` (the default ``T_s * T_t`` scales so by
    itself); weights unchanged."""
    a = a.detach()
    prefactor = None if output.prefactor is None else output.prefactor * a * a
    return output._replace(
        t_student=output.t_student * a,
        t_teacher=output.t_teacher * a,
        prefactor=prefactor,
        extra=tuple(scale_output(term, a) for term in output.extra),
    )


def quiz_direction(quiz_grad: Tensor, exp_avg_sq: Optional[Tensor] = None, eps: float = 1e-8):
    """The quiz loss's gradient at the last layer as the optimizer would follow it.

    Args:
        quiz_grad (Tensor): ``[C, D + 1]`` gradient of the mean quiz loss w.r.t. the last layer
            (weight columns, then the bias).
        exp_avg_sq (Tensor, optional): ``[C, D + 1]`` Adam's bias-corrected second moments of
            those parameters; None for SGD.
        eps (float): Adam's epsilon.

    Returns:
        tuple[Tensor, Tensor]: ``(G * P, P^2)`` with ``P = 1 / (sqrt(v) + eps)`` (1 for SGD): a
        step of ``-lr * P * g h^T`` on an instance's gradient ``g h^T`` changes the quiz loss by
        ``-lr * g^T (G * P) h`` to first order, and its norm is ``sqrt((g^2)^T P^2 (h^2))``.
    """
    if exp_avg_sq is None:
        return quiz_grad, torch.ones_like(quiz_grad)
    p = 1.0 / (exp_avg_sq.sqrt() + eps)
    return quiz_grad * p, p * p


def candidate_scores(
    logit_grads: Tensor,
    features: Tensor,
    direction: Tensor,
    p_sq: Tensor,
    groups: Optional[Tensor] = None,
) -> Dict[str, Tensor]:
    """First-order quiz-loss decrease of each instance's step under each candidate.

    Args:
        logit_grads (Tensor): ``[K, N, C]`` gradient of instance ``i``'s trained objective
            (task + KD with candidate ``k``) w.r.t. its own logits.
        features (Tensor): ``[N, D]`` the inputs of the last layer.
        direction (Tensor): ``[C, D + 1]`` ``G * P`` of :func:`quiz_direction`; with
            ``groups``, ``[A * C, D + 1]``: A slices of C rows.
        p_sq (Tensor): ``P^2``, shaped as ``direction``.
        groups (Tensor, optional): ``[N]`` which slice of the last layer made each instance's
            logits (a dense head's anchor index at its location). None: one shared slice.

    Returns:
        dict: ``decrease`` ``[K, N]`` (``g^T (G P) h``, proportional to the predicted decrease
        of the quiz loss) and ``norm`` ``[K, N]`` (the norm of the preconditioned step).
    """
    h = torch.cat([features, features.new_ones(features.shape[0], 1)], dim=1).to(direction)
    g = logit_grads.to(direction)
    if groups is None:
        decrease = torch.einsum('knc,cd,nd->kn', g, direction, h)
        norm = torch.einsum('knc,cd,nd->kn', g * g, p_sq, h * h)
    else:
        c = g.shape[-1]
        rows = groups.to(direction.device).long()
        d = direction.reshape(-1, c, direction.shape[-1])[rows]  # [N, C, D + 1]
        p = p_sq.reshape(-1, c, p_sq.shape[-1])[rows]
        decrease = torch.einsum('knc,ncd,nd->kn', g, d, h)
        norm = torch.einsum('knc,ncd,nd->kn', g * g, p, h * h)
    return dict(decrease=decrease, norm=norm.clamp_min(0).sqrt())


@MODELS.register_module()
class OracleTemperature(BaseTemperature):
    """Each instance's best temperature multiplier by its one-step effect on a quiz batch.

    The headroom of per-instance temperatures: around a base policy (any registered one), K
    candidate multipliers ``a_k`` log-spaced in ``[a_min, a_max]`` scale every temperature the
    base uses (explicit prefactors by ``a^2``). For each training instance ``i`` and candidate
    ``k`` the distiller gives the gradient ``g_ik`` of the instance's trained objective (task +
    KD at ``a_k``) w.r.t. its logits; with the last layer's inputs ``h_i``, the first-order
    decrease of the quiz loss after a step on that instance is ``g_ik^T (G * P) h_i``, ``G``
    the quiz loss's gradient at the last layer and ``P`` the optimizer's preconditioner (Adam's
    ``1 / (sqrt(v) + eps)``; 1 for SGD). The score rescales each candidate's step to the norm
    of the base's (``a = 1``), so that the oracle prefers a direction, not a larger gradient;
    every instance trains with its best-scoring candidate. All K candidates are evaluated in
    one batched pass at the last layer.

    ``HeadroomHook`` refreshes ``G`` (and ``P``) every few iterations from a quiz split held
    out of the training set. ``null=True`` permutes the rows (classes) of ``G``: the same
    machinery with no signal, the control that tells real headroom from picking noise.

    A null result says that this one-step evaluator finds no per-instance choice worth making,
    not that none exists.

    Before the first quiz gradient and in eval mode the base's output is returned unchanged.

    Args:
        base (dict): the base policy's config. Defaults to ``FixedTemperature(4)``.
        num_candidates (int): K. Defaults to 5.
        a_min (float): smallest multiplier. Defaults to 0.5.
        a_max (float): largest multiplier. Defaults to 2.0.
        null (bool): permute the quiz gradient's rows (the null oracle). Defaults to False.
        seed (int): seed of the null oracle's permutations. Defaults to 0.
        normalise (bool): score each candidate's step rescaled to the base step's norm (the
            default). False scores the step as it is trained (the raw first-order decrease),
            which also prefers larger steps.
    """

    #: the distiller passes the last layer's inputs (``features``) before each call
    needs_features = True

    def __init__(
        self,
        base: dict = dict(type='rlkd_mm.FixedTemperature', temperature=4.0),
        num_candidates: int = 5,
        a_min: float = 0.5,
        a_max: float = 2.0,
        null: bool = False,
        seed: int = 0,
        normalise: bool = True,
        score_type: str = 'softmax',
    ) -> None:
        super().__init__(score_type=score_type)
        self.normalise = bool(normalise)
        base = dict(base)
        base.setdefault('score_type', score_type)
        self.base = MODELS.build(base)
        grid = multiplier_grid(num_candidates, a_min, a_max)
        self.register_buffer('multipliers', grid.float(), persistent=False)
        # the candidate closest to a = 1 is the base; its norm is the reference
        self.base_index = int((grid.log().abs()).argmin())
        self.null = bool(null)
        self.seed = int(seed)
        # Set by the distiller (plain attributes: never saved or moved with the module).
        object.__setattr__(self, 'features', None)
        object.__setattr__(self, 'logit_grads_fn', None)
        # [N] weight slice of each instance (dense heads: the anchor index), or None
        object.__setattr__(self, 'groups', None)
        # Set by HeadroomHook: the quiz direction(s) (G * P, P^2); one per disjoint quiz half.
        self.quiz: Optional[List[Sequence[Tensor]]] = None
        self.last_stats: Dict[str, float] = {}
        self.last_pick: Optional[Tensor] = None  # [N] candidate index of each instance

    def set_quiz(self, halves: List[Sequence[Tensor]], refresh: Optional[int] = None) -> None:
        """Quiz directions ``[(G * P, P^2), ...]`` of disjoint quiz halves (the oracle scores
        with their mean). The null oracle permutes the rows of a new quiz gradient, with a
        permutation seeded by ``seed`` and the refresh's index; ``refresh=None`` sets a quiz
        as it is (one restored from a checkpoint).

        Args:
            halves (list): ``(direction [C, D + 1], p_sq [C, D + 1])`` per quiz half.
            refresh (int, optional): index of this quiz gradient in the run.
        """
        if self.null and refresh is not None:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + refresh)
            perm = torch.randperm(halves[0][0].shape[0], generator=gen).to(halves[0][0].device)
            halves = [(d[perm], p) for d, p in halves]
        self.quiz = [tuple(h) for h in halves]

    def score(
        self,
        student_logits: Tensor,
        teacher_logits: Tensor,
        gt_labels: Tensor,
    ) -> Dict[str, Tensor]:
        """Scores ``[K, N]`` of the candidates under each quiz half and under their mean."""
        fn: Callable = self.logit_grads_fn
        if fn is None or self.features is None:
            raise RuntimeError(
                'OracleTemperature needs a distiller that gives the last-layer features and '
                'per-candidate logit gradients (ClassifierDistiller, SingleStageDetDistiller)'
            )
        num, n = len(self.multipliers), student_logits.shape[0]
        a = self.multipliers.repeat_interleave(n)

        def candidates(z: Tensor, t: Tensor, labels: Tensor) -> TemperatureOutput:
            return scale_output(self.base(z, t, labels), a.to(z.dtype))

        grads = fn(student_logits, teacher_logits, gt_labels, num, candidates)
        features = self.features.detach()
        per_half = [
            candidate_scores(grads, features, d, p_sq, self.groups) for d, p_sq in self.quiz
        ]
        # The halves share P (the optimizer's state), so their norms agree.
        norm = per_half[0]['norm']
        rescale = norm[self.base_index : self.base_index + 1] / norm.clamp_min(1e-30)
        if not self.normalise:
            rescale = torch.ones_like(rescale)
        half_scores = [s['decrease'] * rescale for s in per_half]
        return dict(score=sum(half_scores) / len(half_scores), half_scores=half_scores)

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, gt_labels: Optional[Tensor] = None
    ) -> TemperatureOutput:
        """The base's output with every instance's temperatures times its best multiplier.

        Args:
            student_logits (Tensor): ``[N, C]``.
            teacher_logits (Tensor): ``[N, C]``.
            gt_labels (Tensor, optional): ``[N]``; required once the quiz gradient is set.
        """
        self._check_inputs(student_logits, teacher_logits)
        base_out = self.base(student_logits, teacher_logits, gt_labels)
        if not self.training or self.quiz is None or student_logits.shape[0] == 0:
            return base_out
        if gt_labels is None:
            raise ValueError('OracleTemperature needs gt_labels in training, got None')
        scores = self.score(student_logits, teacher_logits, gt_labels)
        pick = scores['score'].argmax(dim=0)
        a = self.multipliers[pick].to(base_out.t_student.dtype)
        self.last_stats = _pick_stats(scores, pick, self.base_index, self.multipliers)
        self.last_pick = pick
        return scale_output(base_out, a)

    def extra_repr(self) -> str:
        grid = ', '.join(f'{a:.3g}' for a in self.multipliers.tolist())
        return f'multipliers=[{grid}], null={self.null}, normalise={self.normalise}'


def _pick_stats(
    scores: Dict[str, Any], pick: Tensor, base_index: int, multipliers: Tensor
) -> Dict[str, float]:
    """What the oracle's picks of one batch look like (logged by ``HeadroomHook``)."""
    num = len(multipliers)
    score = scores['score']
    best = score.gather(0, pick[None]).squeeze(0)
    base = score[base_index]
    halves = [s.argmax(dim=0) for s in scores['half_scores']]
    stats = dict(
        oracle_gain=float((best - base).mean()),
        oracle_base_decrease=float(base.mean()),
        oracle_grid_end_share=float(((pick == 0) | (pick == num - 1)).float().mean()),
        oracle_mean_log_a=float(multipliers[pick].log().mean()),
    )
    if len(halves) == 2:
        stats['oracle_half_agreement'] = float((halves[0] == halves[1]).float().mean())
    return stats


@MODELS.register_module()
class ScaledTemperature(BaseTemperature):
    """A base policy with every temperature times one global multiplier ``a`` (explicit
    prefactors times ``a^2``): the single-multiplier control of the headroom oracle.

    Args:
        base (dict): the base policy's config.
        multiplier (float): a, > 0. Defaults to 1 (the base itself).
    """

    def __init__(
        self,
        base: dict = dict(type='rlkd_mm.FixedTemperature', temperature=4.0),
        multiplier: float = 1.0,
        score_type: str = 'softmax',
    ) -> None:
        super().__init__(score_type=score_type)
        if not multiplier > 0:
            raise ValueError(f'multiplier must be > 0, got multiplier={multiplier}')
        base = dict(base)
        base.setdefault('score_type', score_type)
        self.base = MODELS.build(base)
        self.multiplier = float(multiplier)

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, gt_labels: Optional[Tensor] = None
    ) -> TemperatureOutput:
        out = self.base(student_logits, teacher_logits, gt_labels)
        return scale_output(out, out.t_student.new_tensor(self.multiplier))

    def extra_repr(self) -> str:
        return f'multiplier={self.multiplier}'
