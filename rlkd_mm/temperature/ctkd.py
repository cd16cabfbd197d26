"""Curriculum temperature KD (CTKD, Li et al., AAAI 2023) and its gradient-reversal layer."""

import math
from typing import Optional, Tuple, Union

import torch
from torch import Tensor, nn

from rlkd_mm.registry import MODELS

from .base import BaseTemperature, TemperatureOutput, check_temperature_range


class _GradientReversal(torch.autograd.Function):
    """Identity forward; the backward multiplies the incoming gradient by ``-lambda_``."""

    @staticmethod
    def forward(ctx, x: Tensor, lambda_: Union[float, Tensor]) -> Tensor:
        ctx.lambda_ = lambda_
        return x.clone()

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tuple[Tensor, None]:
        return -ctx.lambda_ * grad_output, None


def gradient_reversal(x: Tensor, lambda_: Union[float, Tensor] = 1.0) -> Tensor:
    """Gradient-reversal layer: returns ``x`` unchanged, reverses and scales its gradient.

    A parameter behind this layer is updated by a minimising optimizer so as to *increase* the
    loss (scaled by ``lambda_``), which makes min-max training possible with one optimizer.

    Args:
        x (Tensor): Any tensor.
        lambda_ (float | Tensor): Strength of the reversal (a 0-dim tensor is fine). Not
            differentiated.

    Returns:
        Tensor: ``x`` (a view), whose gradient is ``-lambda_ * dL/dx``.
    """
    if isinstance(lambda_, Tensor):
        lambda_ = lambda_.detach()
    return _GradientReversal.apply(x, lambda_)


@MODELS.register_module()
class CTKDTemperature(BaseTemperature):
    """Learnable, adversarial temperature of CTKD.

    ``T = t_min + (t_max - t_min) * sigmoid(theta)`` where ``theta`` is

    - 'global': one scalar parameter, so one T for all instances;
    - 'instance': the output of an MLP (Linear(2C, hidden) - ReLU - Linear(hidden, 1)) on the
      concatenated, detached student and teacher logits [N, 2C].

    The policy is trained by the student's optimizer through the KD loss: T passes a
    gradient-reversal layer, so minimising the KD loss moves T to make it *larger* (the teacher's
    knowledge harder to match), with strength ``lambda`` following a cosine curriculum from 0 to
    ``lambda_max`` over the first ``ramp_iters`` training forwards:
    ``lambda = lambda_max * (1 - cos(pi * min(step / ramp_iters, 1))) / 2``.
    ``step`` is a persistent buffer (saved in checkpoints, so a resumed run continues the ramp)
    incremented after every forward in training mode only. The returned T keeps its gradient (to
    the policy's parameters only) and is shared by student and teacher.

    At initialisation T equals ``t_init`` for every instance: the instance MLP's last layer has
    zero weights and a bias of ``logit((t_init - t_min) / (t_max - t_min))``; it still learns
    from the first step, since the gradient of the last layer's weights does not vanish.

    The instance MLP is built in ``__init__`` from ``num_classes`` rather than with
    ``nn.LazyLinear``: the runner builds the optimizer before the first forward, and an
    optimizer cannot be built on uninitialised lazy parameters.

    Args:
        mode (str): 'global' or 'instance'. Defaults to 'global'.
        t_min (float): Lowest temperature, > 0. Defaults to 1.0.
        t_max (float): Highest temperature. Defaults to 21.0.
        t_init (float): Temperature at initialisation, strictly between t_min and t_max.
            Defaults to 4.0.
        num_classes (int, optional): C, the logits' width; required for 'instance'.
        hidden_dim (int): Hidden width of the instance MLP. Defaults to 128.
        lambda_max (float): Final strength of the gradient reversal, >= 0. Defaults to 1.0.
        ramp_iters (int): Training forwards over which lambda ramps up; 0 starts at
            ``lambda_max``. Defaults to 4000 (about 10 CIFAR epochs at batch size 128).
        score_type (str): See :class:`BaseTemperature`. Not used. Defaults to 'softmax'.
    """

    def __init__(
        self,
        mode: str = 'global',
        t_min: float = 1.0,
        t_max: float = 21.0,
        t_init: float = 4.0,
        num_classes: Optional[int] = None,
        hidden_dim: int = 128,
        lambda_max: float = 1.0,
        ramp_iters: int = 4000,
        score_type: str = 'softmax',
    ) -> None:
        super().__init__(score_type=score_type)
        if mode not in ('global', 'instance'):
            raise ValueError(f"mode must be 'global' or 'instance', got mode={mode!r}")
        check_temperature_range(t_min, t_max)
        if not t_min < t_init < t_max:
            raise ValueError(
                f't_init must lie strictly between t_min and t_max, got '
                f't_init={t_init}, t_min={t_min}, t_max={t_max}'
            )
        if not lambda_max >= 0:
            raise ValueError(f'lambda_max must be >= 0, got lambda_max={lambda_max}')
        if not isinstance(ramp_iters, int) or isinstance(ramp_iters, bool) or ramp_iters < 0:
            raise ValueError(f'ramp_iters must be an int >= 0, got ramp_iters={ramp_iters!r}')
        self.mode = mode
        self.t_min = float(t_min)
        self.t_max = float(t_max)
        self.t_init = float(t_init)
        self.lambda_max = float(lambda_max)
        self.ramp_iters = ramp_iters
        self.num_classes = num_classes

        fraction = (t_init - t_min) / (t_max - t_min)
        theta_init = math.log(fraction / (1 - fraction))
        if mode == 'global':
            self.theta = nn.Parameter(torch.tensor(theta_init))
        else:
            if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
                raise ValueError(
                    "mode='instance' needs num_classes, a positive int, got "
                    f'num_classes={num_classes!r}'
                )
            if not isinstance(hidden_dim, int) or isinstance(hidden_dim, bool) or hidden_dim < 1:
                raise ValueError(
                    f'hidden_dim must be a positive int, got hidden_dim={hidden_dim!r}'
                )
            self.mlp = nn.Sequential(
                nn.Linear(2 * num_classes, hidden_dim),
                nn.ReLU(inplace=True),
                nn.Linear(hidden_dim, 1),
            )
            nn.init.zeros_(self.mlp[-1].weight)
            nn.init.constant_(self.mlp[-1].bias, theta_init)
        self.register_buffer('step', torch.zeros((), dtype=torch.long), persistent=True)

    def grl_lambda(self) -> Tensor:
        """Current reversal strength (0-dim tensor) from the ``step`` buffer."""
        if self.ramp_iters == 0:
            return torch.tensor(self.lambda_max, device=self.step.device)
        progress = (self.step.double() / self.ramp_iters).clamp(max=1.0)
        return (self.lambda_max * (1 - torch.cos(math.pi * progress)) / 2).float()

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, gt_labels: Optional[Tensor] = None
    ) -> TemperatureOutput:
        """Return ``TemperatureOutput(T[N], T[N])``, the same tensor twice, with gradient to the
        policy's parameters.

        Args:
            student_logits (Tensor): Shape [N, C].
            teacher_logits (Tensor): Shape [N, C].
            gt_labels (Tensor, optional): Not used.
        """
        self._check_inputs(student_logits, teacher_logits)
        n = student_logits.shape[0]
        lambda_ = self.grl_lambda()
        if self.training:
            with torch.no_grad():
                self.step += 1
        if self.mode == 'global':
            theta = self.theta.expand(n)
        else:
            if student_logits.shape[1] != self.num_classes:
                raise ValueError(
                    f'CTKDTemperature was built with num_classes={self.num_classes}'
                    f', got logits of shape {tuple(student_logits.shape)}'
                )
            weight = self.mlp[0].weight
            # The MLP only reads the logits: T must not open a gradient path into the student.
            inputs = torch.cat([student_logits.detach(), teacher_logits.detach()], dim=1)
            theta = self.mlp(inputs.to(weight.dtype)).squeeze(1)
        temperature = self.t_min + (self.t_max - self.t_min) * torch.sigmoid(theta)
        temperature = gradient_reversal(temperature, lambda_)
        return TemperatureOutput(temperature, temperature)

    def extra_repr(self) -> str:
        return (
            f'mode={self.mode!r}, t_min={self.t_min}, t_max={self.t_max}, '
            f't_init={self.t_init}, lambda_max={self.lambda_max}, '
            f'ramp_iters={self.ramp_iters}'
        )
