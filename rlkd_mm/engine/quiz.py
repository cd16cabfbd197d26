"""The quiz split's gradient at the student's last layer, as the optimizer would follow it: the
evaluator shared by the headroom oracle (``HeadroomHook``) and the counterfactual reward."""

from typing import Any, List, Optional, Sequence, Tuple

import torch
from mmengine.dataset import pseudo_collate
from mmengine.dist import all_reduce, get_world_size
from mmengine.registry import DATASETS
from torch import Tensor

from rlkd_mm.temperature.oracle import quiz_direction


class QuizGradient:
    """Batches of a quiz split held out of the training set, and the student's task-loss
    gradient on them w.r.t. its last layer (weight and bias, ``[C, D + 1]``).

    The batches follow a fixed seeded order of the quiz split, so which batch refresh ``r``
    takes depends on ``r`` alone. A gradient is measured with the student in training mode and
    its buffers (BN statistics) and the random streams left as they were (the distiller's
    ``quiz_gradients``), separately on the two halves of the batch; under DDP each half is
    averaged over the ranks. With an Adam-type optimizer it is preconditioned as Adam would
    (``1 / (sqrt(v_hat) + eps)`` from the last layer's second moments; see
    ``rlkd_mm.temperature.oracle.quiz_direction``).

    The quiz split must be held out of the training set (``tools/analysis/
    temperature_headroom.py`` carves it); never the validation or test split.

    Args:
        dataset (dict | Sequence): config of the quiz dataset (deterministic pipeline), or the
            dataset itself (items as the training dataloader's, e.g. in a benchmark).
        batch_size (int): images per quiz gradient, >= 2 (two halves).
        seed (int): seed of the quiz order.
    """

    def __init__(self, dataset: Any, batch_size: int, seed: int = 0) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 2:
            raise ValueError(
                f'quiz_batch_size must be an int >= 2, got quiz_batch_size={batch_size!r}'
            )
        if not isinstance(dataset, dict) and not hasattr(dataset, '__getitem__'):
            raise TypeError(f'quiz_dataset must be a dataset or its config dict, got {dataset!r}')
        self.cfg, self.batch_size, self.seed = dataset, batch_size, seed
        self._dataset = None
        self._order: Optional[Tensor] = None

    def build(self) -> None:
        """Build the dataset and its order (once)."""
        if self._dataset is not None:
            return
        cfg = self.cfg
        self._dataset = DATASETS.build(cfg) if isinstance(cfg, dict) else cfg
        if len(self._dataset) < 2:
            raise ValueError(f'the quiz split needs >= 2 images, got {len(self._dataset)}')
        gen = torch.Generator().manual_seed(self.seed)
        self._order = torch.randperm(len(self._dataset), generator=gen)

    def batch(self, refresh: int) -> dict:
        """The collated quiz batch of refresh ``refresh``."""
        self.build()
        num = len(self._order)
        size = min(self.batch_size, num)
        start = (refresh * size) % num
        idx = self._order[(torch.arange(size) + start) % num]
        return pseudo_collate([self._dataset[int(i)] for i in idx])

    def directions(self, runner: Any, model: Any, refresh: int) -> List[Tuple[Tensor, Tensor]]:
        """``[(G * P, P^2)]`` of the two halves of quiz batch ``refresh`` (see
        ``quiz_direction``), for ``model`` (the distiller) trained by ``runner``."""
        with torch.random.fork_rng(devices=[]):
            data = model.data_preprocessor(self.batch(refresh), False)
            layer_grads = self._layer_gradients(model, data['inputs'], data['data_samples'])
        halves = []
        moments = second_moments(runner, model)
        for g in layer_grads:
            if get_world_size() > 1:
                all_reduce(g, op='mean')
            halves.append(quiz_direction(g.float(), *moments))
        return halves

    @staticmethod
    def _layer_gradients(model: Any, inputs: Any, data_samples: Any) -> List[Tensor]:
        """The two halves' gradients at the last layer, ``[C, D + 1]`` each: the model's own
        (``quiz_layer_gradients``, a detector's, whose loss also has negatives), or the outer
        products of the last-layer inputs and logit gradients that ``quiz_gradients`` gives."""
        if hasattr(model, 'quiz_layer_gradients'):
            return [g.double() for g in model.quiz_layer_gradients(inputs, data_samples)]
        features, grads = model.quiz_gradients(inputs, data_samples)
        half = features.shape[0] // 2
        out = []
        for sl in (slice(0, half), slice(half, None)):
            h = torch.cat([features[sl], features.new_ones(features[sl].shape[0], 1)], dim=1)
            out.append(grads[sl].t().double() @ h.double())
        return out


def mean_direction(halves: Sequence[Sequence[Tensor]]) -> Tuple[Tensor, Tensor]:
    """One ``(G * P, P^2)`` from the halves' (their mean direction; they share ``P``)."""
    direction = sum(h[0] for h in halves) / len(halves)
    return direction, halves[0][1]


def second_moments(runner: Any, model: Any) -> Tuple[Optional[Tensor], float]:
    """Adam's bias-corrected second moments of the last layer ``[C, D + 1]`` and its eps
    (None before the first step or for other optimizers)."""
    weight, bias = model.last_layer()
    optimizer = runner.optim_wrapper.optimizer
    moments = []
    for param in (weight, bias):
        state = optimizer.state.get(param, {})
        if 'exp_avg_sq' not in state:
            return None, 1e-8
        group = next(g for g in optimizer.param_groups if any(p is param for p in g['params']))
        beta2, eps = group['betas'][1], group['eps']
        step = float(state['step'])
        v = state['exp_avg_sq'] / (1 - beta2**step)
        moments.append(v.reshape(v.shape[0], -1))
    return torch.cat(moments, dim=1).detach(), eps
