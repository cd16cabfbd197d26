"""A control: a random per-instance temperature, drawn log-uniformly every training call."""

import math
from typing import Any, Dict, Optional

import torch
from torch import Tensor

from rlkd_mm.registry import MODELS

from .base import BaseTemperature, TemperatureOutput, check_temperature_range


@MODELS.register_module()
class RandomTemperature(BaseTemperature):
    """Each instance's temperature drawn log-uniformly from ``[t_min, t_max]``, every call.

    ``log T_i ~ U(log t_min, log t_max)`` independently per instance and per training call;
    student and teacher share ``T_i``; the KD losses scale by their default ``T_i^2``. In eval
    mode every instance gets the geometric mean ``sqrt(t_min * t_max)`` of the range.

    This is the control that separates "a per-instance temperature" from "a random one": the
    published RLKD code rewards its agent with a quantity its actions do not change, so what it
    effectively trains with is a random per-instance temperature.

    The draws come from the policy's own ``torch.Generator`` (CPU), seeded with ``seed`` or, by
    default, with ``torch.initial_seed()`` when the policy is built (the run's seed: mmengine's
    runner sets it before it builds the model). Its state is part of the module's state dict
    (``get_extra_state``), so a checkpoint resumes the exact sequence of draws. Under DDP every
    rank starts from the same seed and draws the same sequence for its own instances; only
    rank 0's generator state is what a checkpoint keeps.

    Args:
        t_min (float): Lower end of the range, > 0. Defaults to 1.0.
        t_max (float): Upper end, >= t_min. Defaults to 8.0.
        seed (int, optional): Seed of the generator; None: ``torch.initial_seed()``.
        score_type (str): See :class:`BaseTemperature`. Not used. Defaults to 'softmax'.
    """

    def __init__(
        self,
        t_min: float = 1.0,
        t_max: float = 8.0,
        seed: Optional[int] = None,
        score_type: str = 'softmax',
    ) -> None:
        super().__init__(score_type=score_type)
        check_temperature_range(t_min, t_max)
        self.t_min = float(t_min)
        self.t_max = float(t_max)
        self.seed = int(torch.initial_seed() if seed is None else seed)
        self.generator = torch.Generator()
        self.generator.manual_seed(self.seed)

    @property
    def eval_temperature(self) -> float:
        """The geometric mean of the range, used in eval mode."""
        return math.sqrt(self.t_min * self.t_max)

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, gt_labels: Optional[Tensor] = None
    ) -> TemperatureOutput:
        """Return ``TemperatureOutput(T[N], T[N])``, detached, in the logits' dtype.

        Args:
            student_logits (Tensor): Shape [N, C]; gives N, dtype and device.
            teacher_logits (Tensor): Shape [N, C].
            gt_labels (Tensor, optional): Not used.
        """
        self._check_inputs(student_logits, teacher_logits)
        n = student_logits.shape[0]
        if not self.training:
            t = self._full(n, self.eval_temperature, student_logits)
            return TemperatureOutput(t, t)
        low, high = math.log(self.t_min), math.log(self.t_max)
        u = torch.rand(n, generator=self.generator, dtype=torch.float64)
        t = torch.exp(low + (high - low) * u).clamp(self.t_min, self.t_max)
        t = t.to(dtype=student_logits.dtype, device=student_logits.device)
        return TemperatureOutput(t, t)

    def get_extra_state(self) -> Dict[str, Any]:
        return dict(seed=self.seed, generator=self.generator.get_state())

    def set_extra_state(self, state: Dict[str, Any]) -> None:
        self.seed = int(state['seed'])
        self.generator.set_state(state['generator'].to(device='cpu', dtype=torch.uint8))

    def extra_repr(self) -> str:
        return f't_min={self.t_min}, t_max={self.t_max}, seed={self.seed}'
