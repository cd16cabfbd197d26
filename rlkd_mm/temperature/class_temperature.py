"""One temperature for a group of ground-truth classes, another for the rest: a privileged control
for testbeds whose instances were made to differ by class."""

from typing import Optional, Sequence

import torch
from torch import Tensor

from rlkd_mm.registry import MODELS

from .base import BaseTemperature, TemperatureOutput


@MODELS.register_module()
class ClassTemperature(BaseTemperature):
    """``temperature`` for the instances whose ground-truth class is in ``classes``, ``default``
    for the others, student and teacher alike.

    A control, not a method: it reads the label, which a temperature policy's state does not hold
    as such. On a testbed whose instances were made to differ by class (e.g. a teacher trained on
    labels swapped between some class pairs, ``rlkd_mm.NoisyLabelDataset``) it measures the
    headroom of a per-group temperature by construction.

    Args:
        classes (list[int]): the class indices of the group.
        temperature (float): the group's temperature, > 0.
        default (float): every other instance's temperature (and every instance's when no labels
            are given, e.g. in eval mode), > 0.
    """

    def __init__(
        self,
        classes: Sequence[int],
        temperature: float,
        default: float,
        score_type: str = 'softmax',
    ) -> None:
        super().__init__(score_type=score_type)
        classes = sorted({int(c) for c in classes})
        if not classes or classes[0] < 0 or not temperature > 0 or not default > 0:
            raise ValueError(
                'classes must be class indices >= 0 and both temperatures > 0, got '
                f'classes={classes}, temperature={temperature}, default={default}'
            )
        self.classes, self.temperature, self.default = classes, float(temperature), float(default)
        self.register_buffer('group', torch.tensor(classes), persistent=False)

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, gt_labels: Optional[Tensor] = None
    ) -> TemperatureOutput:
        """``TemperatureOutput(T[N], T[N])`` by each instance's class."""
        self._check_inputs(student_logits, teacher_logits)
        t = self._full(student_logits.shape[0], self.default, student_logits)
        if gt_labels is not None:
            in_group = torch.isin(gt_labels.long().to(t.device), self.group.to(t.device))
            t = torch.where(in_group, self.temperature, t)
        return TemperatureOutput(t, t)

    def extra_repr(self) -> str:
        return f'classes={self.classes}, temperature={self.temperature}, default={self.default}'
