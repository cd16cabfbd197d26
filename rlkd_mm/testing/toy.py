"""A linear distiller for tests of ``RLKDHook`` and its reward units."""

from typing import Any, Dict, Tuple

import torch
from torch import Tensor, nn

from rlkd_mm.models.distillers import RewardCacheMixin
from rlkd_mm.temperature import RLTemperature


class LinearDistiller(RewardCacheMixin, nn.Module):
    """A linear student distilled from a frozen linear teacher (its logits scaled by 3) with
    per-instance KD at the temperatures of its ``RLTemperature``; keeps what a reward unit asks
    for ('task_loss', 'instance_losses': the inputs, labels and each instance's CE).

    ``forward(x, y)`` returns ``(CE + T^2-weighted KL, temperatures)``.

    Args:
        in_dim (int): input features. Defaults to 6.
        num_classes (int): classes. Defaults to 4.
        **policy_kwargs: of the ``RLTemperature``.
    """

    reward_items = ('task_loss', 'instance_losses')

    def __init__(self, in_dim: int = 6, num_classes: int = 4, **policy_kwargs: Any) -> None:
        super().__init__()
        self.student = nn.Linear(in_dim, num_classes)
        self.teacher = nn.Linear(in_dim, num_classes).requires_grad_(False)
        self.temperature = RLTemperature(**policy_kwargs)

    def forward(self, x: Tensor, y: Tensor) -> Tuple[Tensor, Tensor]:
        s, t = self.student(x), self.teacher(x) * 3
        temp, _ = self.temperature(s.detach(), t, y).temperatures
        task = nn.functional.cross_entropy(s, y, reduction='none')
        if 'instance_losses' in self.keeps():
            self.keep_for_reward(x=x, y=y, losses=task.detach())
        self.keep_task_loss(dict(loss_task=task.mean()))
        kd = nn.functional.kl_div(
            nn.functional.log_softmax(s / temp[:, None], 1),
            nn.functional.log_softmax(t / temp[:, None], 1),
            log_target=True,
            reduction='none',
        )
        return task.mean() + (temp**2 * kd.sum(1)).mean(), temp

    @torch.no_grad()
    def instance_losses(self, kept: Dict[str, Any]) -> Tensor:
        return nn.functional.cross_entropy(self.student(kept['x']), kept['y'], reduction='none')
