"""A constant temperature: plain KD."""

from numbers import Real
from typing import Optional

from torch import Tensor

from rlkd_mm.registry import MODELS

from .base import BaseTemperature, TemperatureOutput


@MODELS.register_module()
class FixedTemperature(BaseTemperature):
    """The same constant temperature for every instance, student and teacher.

    Args:
        temperature (float): The temperature T, > 0. Defaults to 4.0.
        score_type (str): See :class:`BaseTemperature`. Not used. Defaults to 'softmax'.
    """

    def __init__(self, temperature: float = 4.0, score_type: str = 'softmax') -> None:
        super().__init__(score_type=score_type)
        if not isinstance(temperature, Real) or isinstance(temperature, bool):
            raise TypeError(
                f'temperature must be a number, got {type(temperature).__name__}: {temperature!r}'
            )
        if not temperature > 0:
            raise ValueError(f'temperature must be > 0, got temperature={temperature}')
        self.temperature = float(temperature)

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, gt_labels: Optional[Tensor] = None
    ) -> TemperatureOutput:
        """Return ``TemperatureOutput(T[N], T[N])``, the same detached constant tensor twice.

        Args:
            student_logits (Tensor): Shape [N, C]; gives N, dtype and device.
            teacher_logits (Tensor): Shape [N, C].
            gt_labels (Tensor, optional): Not used.
        """
        self._check_inputs(student_logits, teacher_logits)
        t = self._full(student_logits.shape[0], self.temperature, student_logits)
        return TemperatureOutput(t, t)

    def extra_repr(self) -> str:
        return f'temperature={self.temperature}'
