"""Per-instance state features of the RLKD agent and their running normalisation."""

from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Names of the state columns, in order. ``instance_state`` returns ``[N, STATE_DIM]``.
STATE_NAMES: Tuple[str, ...] = (
    'student_gt_prob',
    'teacher_gt_prob',
    'student_correct',
    'teacher_correct',
    'student_ce',
    'kl_teacher_student',
    'student_entropy',
    'teacher_entropy',
    'student_margin',
    'teacher_margin',
    'progress',
)
STATE_DIM: int = len(STATE_NAMES)

_SCORE_TYPES = ('softmax', 'sigmoid')


def _check_logits(student_logits: Tensor, teacher_logits: Tensor, gt_labels: Tensor) -> None:
    if student_logits.dim() != 2 or student_logits.shape != teacher_logits.shape:
        raise ValueError(
            'student_logits and teacher_logits must both be [N, C], got '
            f'{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}'
        )
    num = student_logits.size(0)
    if gt_labels.dim() != 1 or gt_labels.size(0) != num:
        raise ValueError(f'gt_labels must be [N] with N={num}, got {tuple(gt_labels.shape)}')
    if gt_labels.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise TypeError(f'gt_labels must be an integer tensor, got dtype={gt_labels.dtype}')


def _log_probs(logits: Tensor, score_type: str) -> Tensor:
    """Log of the class distribution a score type induces, ``[N, C]``.

    Softmax: ``log_softmax(z)``. Sigmoid: log of the independent class scores normalised over the
    classes, ``s / s.sum()`` with ``s = sigmoid(z)``, computed as ``log_softmax(logsigmoid(z))``
    (the same value, but finite when every score underflows to 0).
    """
    if score_type == 'softmax':
        return F.log_softmax(logits, dim=1)
    return F.log_softmax(F.logsigmoid(logits), dim=1)


def _normalised_entropy(prob: Tensor, log_p: Tensor) -> Tensor:
    num_classes = log_p.size(1)
    entropy = -(prob * log_p).sum(dim=1)
    if num_classes < 2:
        return torch.zeros_like(entropy)
    return (entropy / torch.log(torch.tensor(float(num_classes)))).clamp(0.0, 1.0)


def _margin(prob: Tensor) -> Tensor:
    """Top-1 minus top-2 probability (``topk``: ``kthvalue(p, 2)`` would be the 2nd smallest)."""
    if prob.size(1) < 2:
        return prob[:, 0]
    top2 = prob.topk(2, dim=1).values
    return top2[:, 0] - top2[:, 1]


@torch.no_grad()
def instance_state(
    student_logits: Tensor,
    teacher_logits: Tensor,
    gt_labels: Tensor,
    progress: float,
    score_type: str = 'softmax',
) -> Tensor:
    """State of every instance for the RLKD agent.

    Columns (``STATE_NAMES``):

    0. ``student_gt_prob``: student probability of the ground-truth class.
    1. ``teacher_gt_prob``: teacher probability of the ground-truth class.
    2. ``student_correct``: 1 if the student's top-1 class is the ground truth, else 0.
    3. ``teacher_correct``: the same for the teacher.
    4. ``student_ce``: student cross-entropy on the ground truth.
    5. ``kl_teacher_student``: KL(teacher || student) at T = 1.
    6. ``student_entropy``: student entropy divided by ``log C`` (in [0, 1]).
    7. ``teacher_entropy``: the same for the teacher.
    8. ``student_margin``: student top-1 minus top-2 probability.
    9. ``teacher_margin``: the same for the teacher.
    10. ``progress``: training progress in [0, 1], the same for all rows.

    With ``score_type='sigmoid'`` (dense detection heads that score each class independently) the
    ground-truth "probability" is the ground-truth class's sigmoid score, the cross-entropy is the
    binary cross-entropy with logits of the ground-truth class alone, and the entropies, margins
    and KL use the scores normalised over the classes, ``s / s.sum()``. Top-1 is the arg-max of
    the logits in both cases.

    Everything is computed in float32 without gradient and stays finite for logits of +-1e4,
    constant rows and one-hot teachers.

    Args:
        student_logits (Tensor): ``[N, C]``.
        teacher_logits (Tensor): ``[N, C]``.
        gt_labels (Tensor): ``[N]`` integer class indices in ``[0, C)``.
        progress (float): training progress in [0, 1].
        score_type (str): 'softmax' or 'sigmoid'.

    Returns:
        Tensor: ``[N, STATE_DIM]`` float32 on the logits' device.
    """
    if score_type not in _SCORE_TYPES:
        raise ValueError(f"score_type must be 'softmax' or 'sigmoid', got {score_type!r}")
    if not 0.0 <= float(progress) <= 1.0:
        raise ValueError(f'progress must be in [0, 1], got progress={progress}')
    _check_logits(student_logits, teacher_logits, gt_labels)
    num, num_classes = student_logits.shape
    if num == 0:
        return student_logits.new_zeros((0, STATE_DIM), dtype=torch.float32)
    if num_classes == 0:
        raise ValueError('logits must have at least one class, got C=0')
    gt = gt_labels.long()
    if bool(((gt < 0) | (gt >= num_classes)).any()):
        raise ValueError(
            f'gt_labels must be in [0, {num_classes}), got values in '
            f'[{int(gt.min())}, {int(gt.max())}]'
        )
    s_logits = student_logits.float()
    t_logits = teacher_logits.float()

    log_ps = _log_probs(s_logits, score_type)
    log_pt = _log_probs(t_logits, score_type)
    ps, pt = log_ps.exp(), log_pt.exp()
    gt_col = gt[:, None]
    if score_type == 'softmax':
        s_gt = ps.gather(1, gt_col).squeeze(1)
        t_gt = pt.gather(1, gt_col).squeeze(1)
        s_ce = -log_ps.gather(1, gt_col).squeeze(1)
    else:
        s_gt_logit = s_logits.gather(1, gt_col).squeeze(1)
        s_gt = torch.sigmoid(s_gt_logit)
        t_gt = torch.sigmoid(t_logits.gather(1, gt_col).squeeze(1))
        # BCE with target 1 for the ground-truth class: -log sigmoid(z) = softplus(-z).
        s_ce = F.softplus(-s_gt_logit)
    s_correct = (s_logits.argmax(dim=1) == gt).float()
    t_correct = (t_logits.argmax(dim=1) == gt).float()
    # pt * (log pt - log ps): every log term is finite (log_softmax of finite logits), so a
    # zero teacher probability contributes exactly 0 even when the student's is 0 as well.
    kl = (pt * (log_pt - log_ps)).sum(dim=1).clamp_min(0.0)
    progress_col = s_logits.new_full((num,), float(progress))
    return torch.stack(
        [
            s_gt,
            t_gt,
            s_correct,
            t_correct,
            s_ce,
            kl,
            _normalised_entropy(ps, log_ps),
            _normalised_entropy(pt, log_pt),
            _margin(ps),
            _margin(pt),
            progress_col,
        ],
        dim=1,
    )


@torch.no_grad()
def high_quality_mask(
    teacher_logits: Tensor, gt_labels: Tensor, tau: float = 0.5, score_type: str = 'softmax'
) -> Tensor:
    """Instances the teacher gets right with confidence: the early-exploration set.

    Args:
        teacher_logits (Tensor): ``[N, C]``.
        gt_labels (Tensor): ``[N]`` integer class indices.
        tau (float): minimum teacher confidence (softmax probability or sigmoid score) of the
            ground-truth class.
        score_type (str): 'softmax' or 'sigmoid'.

    Returns:
        Tensor: ``[N]`` bool, teacher top-1 correct and teacher ground-truth confidence >= tau.
    """
    if score_type not in _SCORE_TYPES:
        raise ValueError(f"score_type must be 'softmax' or 'sigmoid', got {score_type!r}")
    _check_logits(teacher_logits, teacher_logits, gt_labels)
    if teacher_logits.size(0) == 0:
        return torch.zeros(0, dtype=torch.bool, device=teacher_logits.device)
    gt = gt_labels.long()
    logits = teacher_logits.float()
    if score_type == 'softmax':
        conf = F.softmax(logits, dim=1).gather(1, gt[:, None]).squeeze(1)
    else:
        conf = torch.sigmoid(logits.gather(1, gt[:, None]).squeeze(1))
    return (logits.argmax(dim=1) == gt) & (conf >= tau)


class RunningNorm(nn.Module):
    """Running mean and variance of the states, used to standardise them.

    Statistics are merged batch by batch with the parallel form of Welford's algorithm (Chan et
    al.), in float64 so that long runs do not drift. ``normalize`` returns
    ``clamp((x - mean) / sqrt(var + eps), -clip, clip)``; before any update it is the identity
    followed by the clip.

    Columns listed in ``fixed_columns`` are not standardised with the running statistics but
    mapped by a fixed affine map ``(x - center) / scale``. This is needed for columns whose
    value drifts over training, such as the training progress: a cumulative mean/std always
    lags behind such a column, so after standardisation it would be nearly constant (about
    1.7 to 1.9 whatever the progress) and carry no information. The running statistics of
    these columns are still accumulated (harmless, and they keep the state dict layout), but
    unused.

    Args:
        dim (int): number of state columns D.
        clip (float): bound of the normalised values.
        eps (float): added to the variance, so constant columns map to 0 instead of dividing by 0.
        fixed_columns (dict[int, tuple[float, float]], optional): column index ->
            ``(center, scale)`` of its fixed affine map, ``scale > 0``. E.g. ``{10: (0.5, 0.5)}``
            maps a progress ``p`` in [0, 1] to ``2p - 1``.
    """

    def __init__(
        self,
        dim: int,
        clip: float = 5.0,
        eps: float = 1e-8,
        fixed_columns: Optional[Dict[int, Tuple[float, float]]] = None,
    ) -> None:
        super().__init__()
        if dim <= 0:
            raise ValueError(f'dim must be > 0, got dim={dim}')
        if clip <= 0:
            raise ValueError(f'clip must be > 0, got clip={clip}')
        self.dim = dim
        self.clip = float(clip)
        self.eps = float(eps)
        self.fixed_columns = dict(fixed_columns or {})
        self.register_buffer('mean', torch.zeros(dim, dtype=torch.float64))
        self.register_buffer('var', torch.ones(dim, dtype=torch.float64))
        self.register_buffer('count', torch.zeros((), dtype=torch.float64))
        # Configuration, not state: kept out of the state dict (``persistent=False``).
        fixed_mask = torch.zeros(dim, dtype=torch.bool)
        fixed_center = torch.zeros(dim, dtype=torch.float64)
        fixed_scale = torch.ones(dim, dtype=torch.float64)
        for col, pair in self.fixed_columns.items():
            if not isinstance(col, int) or not 0 <= col < dim:
                raise ValueError(f'fixed_columns keys must be ints in [0, {dim}), got {col!r}')
            center, scale = pair
            if not scale > 0:
                raise ValueError(f'fixed_columns[{col}] scale must be > 0, got scale={scale}')
            fixed_mask[col] = True
            fixed_center[col] = float(center)
            fixed_scale[col] = float(scale)
        self.register_buffer('fixed_mask', fixed_mask, persistent=False)
        self.register_buffer('fixed_center', fixed_center, persistent=False)
        self.register_buffer('fixed_scale', fixed_scale, persistent=False)

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        """Merge the statistics of ``x`` (``[N, D]``) into the running ones."""
        if x.dim() != 2 or x.size(1) != self.dim:
            raise ValueError(f'x must be [N, {self.dim}], got {tuple(x.shape)}')
        self.merge_moments(*moments(x))

    @torch.no_grad()
    def merge_moments(self, count: Tensor, total: Tensor, total_sq: Tensor) -> None:
        """Merge the statistics of a set given by its count, column sums and sums of squares
        (what :func:`moments` returns; sums over several processes add up)."""
        _merge_welford(self, count, total, total_sq)

    def normalize(self, x: Tensor) -> Tensor:
        """Standardised (fixed-affine for ``fixed_columns``) and clipped ``x``: ``[N, D]`` in
        ``x``'s dtype."""
        mean = torch.where(self.fixed_mask, self.fixed_center, self.mean).to(x.dtype)
        std = torch.where(self.fixed_mask, self.fixed_scale, torch.sqrt(self.var + self.eps))
        return ((x - mean) / std.to(x.dtype)).clamp(-self.clip, self.clip)

    def extra_repr(self) -> str:
        fixed = f', fixed_columns={self.fixed_columns}' if self.fixed_columns else ''
        return f'dim={self.dim}, clip={self.clip}{fixed}'


def moments(x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """``(count, sum, sum of squares)`` over the rows of ``x`` (``[N, D]`` or ``[N]``), float64.

    These add up over batches and processes, so statistics gathered during warm-up or on
    several DDP ranks can be all-reduced and then merged with ``merge_moments``.
    """
    x = x.detach().to(torch.float64)
    return x.new_tensor(float(x.size(0))), x.sum(dim=0), (x * x).sum(dim=0)


def _merge_welford(stats: nn.Module, count: Tensor, total: Tensor, total_sq: Tensor) -> None:
    """Merge a set (count, sum, sum of squares) into ``stats.mean/var/count`` (Chan et al.)."""
    device = stats.mean.device
    n = float(count)
    if n <= 0:
        return
    batch_mean = total.to(device, torch.float64) / n
    batch_m2 = (total_sq.to(device, torch.float64) - n * batch_mean**2).clamp_min(0.0)
    merged = stats.count + n
    delta = batch_mean - stats.mean
    m2 = stats.var * stats.count + batch_m2 + delta**2 * stats.count * n / merged
    stats.mean.add_(delta * n / merged)
    stats.var.copy_(m2 / merged)
    stats.count.copy_(merged)


class RunningScale(nn.Module):
    """Running spread of a scalar signal (the instance rewards), to divide it by.

    ``scale()`` is ``sqrt(var)`` of everything merged so far (1 before any update, and never
    below ``eps``). Rewards are divided, not centred: PPO normalises its advantages itself, and
    the critic's targets keep their sign.

    Args:
        eps (float): lower bound of the scale. Defaults to 1e-8.
    """

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = float(eps)
        self.register_buffer('mean', torch.zeros((), dtype=torch.float64))
        self.register_buffer('var', torch.ones((), dtype=torch.float64))
        self.register_buffer('count', torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        """Merge the values of ``x`` (any shape) into the running statistics."""
        _merge_welford(self, *moments(x.reshape(-1)))

    def scale(self) -> Tensor:
        """The current spread, a 0-dim float64 tensor."""
        if float(self.count) < 2:
            return torch.ones_like(self.var)
        return self.var.sqrt().clamp_min(self.eps)
