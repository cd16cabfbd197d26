"""HeadroomHook: the quiz gradient of the headroom oracle (``OracleTemperature``)."""

from typing import Any, List, Optional, Tuple

import torch
from mmengine.dataset import pseudo_collate
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import DATASETS
from torch import Tensor

from rlkd_mm.agent import tensors_to
from rlkd_mm.registry import HOOKS
from rlkd_mm.temperature.oracle import OracleTemperature, quiz_direction


@HOOKS.register_module()
class HeadroomHook(Hook):
    """Gives the model's ``OracleTemperature`` the quiz loss's gradient at the last layer.

    Every ``refresh_interval`` iterations (and whenever none is set) the student's task-loss
    gradient w.r.t. its last layer (weight and bias, ``[C, D + 1]``) is measured on the next
    ``quiz_batch_size`` images of the quiz split, separately on its two halves, with the
    student in training mode and its buffers (BN statistics) and the random streams left as
    they were; under DDP each half is averaged over the ranks. With an Adam-type optimizer the
    gradient is preconditioned as Adam would (``1 / (sqrt(v_hat) + eps)`` from the last
    layer's second moments). The quiz batches follow a fixed seeded order of the quiz split,
    so which batch a refresh takes depends on the iteration alone; the current quiz gradient is
    saved with checkpoints, so a resumed run scores as the uninterrupted one would.

    The quiz split must be held out of the training set (``tools/analysis/
    temperature_headroom.py`` carves it); never the validation or test split.

    After each iteration the oracle's pick statistics (``oracle_gain``, ``oracle_grid_end_share``,
    ``oracle_half_agreement``, ...) are logged.

    Args:
        quiz_dataset (dict): config of the quiz dataset (deterministic pipeline).
        quiz_batch_size (int): images per quiz gradient. Defaults to 256.
        refresh_interval (int): R, iterations between quiz gradients. Defaults to 10.
        seed (int): seed of the quiz order. Defaults to 0.
    """

    priority = 'NORMAL'

    def __init__(
        self,
        quiz_dataset: dict,
        quiz_batch_size: int = 256,
        refresh_interval: int = 10,
        seed: int = 0,
    ) -> None:
        # a quiz batch is split into two halves, so it needs two images
        for key, value, low in (
            ('quiz_batch_size', quiz_batch_size, 2),
            ('refresh_interval', refresh_interval, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f'{key} must be an int >= {low}, got {key}={value!r}')
        self.quiz_cfg = quiz_dataset
        self.quiz_batch_size = quiz_batch_size
        self.refresh_interval = refresh_interval
        self.seed = seed
        self._dataset = None
        self._order: Optional[Tensor] = None
        self._loaded: Optional[List[Tuple[Tensor, Tensor]]] = None

    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def _policy(self, runner) -> OracleTemperature:
        policy = getattr(self._model(runner), 'temperature', None)
        if not isinstance(policy, OracleTemperature):
            raise TypeError(
                'HeadroomHook needs a distiller whose temperature is an OracleTemperature, got '
                f'{type(policy).__name__}'
            )
        return policy

    def before_train(self, runner) -> None:
        self._policy(runner)
        self._dataset = DATASETS.build(self.quiz_cfg)
        if len(self._dataset) < 2:
            raise ValueError(f'the quiz split needs >= 2 images, got {len(self._dataset)}')
        gen = torch.Generator().manual_seed(self.seed)
        self._order = torch.randperm(len(self._dataset), generator=gen)
        if self._loaded is not None:
            device = next(self._model(runner).parameters()).device
            self._policy(runner).set_quiz(tensors_to(self._loaded, device))
            self._loaded = None

    def _quiz_batch(self, refresh: int) -> dict:
        num = len(self._order)
        size = min(self.quiz_batch_size, num)
        start = (refresh * size) % num
        idx = self._order[(torch.arange(size) + start) % num]
        return pseudo_collate([self._dataset[int(i)] for i in idx])

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        policy = self._policy(runner)
        if policy.quiz is not None and runner.iter % self.refresh_interval != 0:
            return
        model = self._model(runner)
        with torch.random.fork_rng(devices=[]):
            data = model.data_preprocessor(
                self._quiz_batch(runner.iter // self.refresh_interval), False
            )
            features, grads = model.quiz_gradients(data['inputs'], data['data_samples'])
        halves = []
        half = features.shape[0] // 2
        for sl in (slice(0, half), slice(half, None)):
            h = torch.cat([features[sl], features.new_ones(features[sl].shape[0], 1)], dim=1)
            g = grads[sl].t().double() @ h.double()
            if get_world_size() > 1:
                all_reduce(g, op='mean')
            halves.append(quiz_direction(g.float(), *self._second_moments(runner, model)))
        policy.set_quiz(halves, refresh=runner.iter // self.refresh_interval)

    @staticmethod
    def _second_moments(runner, model) -> Tuple[Optional[Tensor], float]:
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

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        for key, value in self._policy(runner).last_stats.items():
            runner.message_hub.update_scalar(f'train/{key}', value)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        quiz = self._policy(runner).quiz
        if quiz is not None:
            checkpoint['headroom_quiz'] = tensors_to(quiz, 'cpu')

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get('headroom_quiz')
