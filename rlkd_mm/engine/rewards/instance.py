"""The per-instance reward that measures fit: each instance's own task loss, before and after
the step."""

from typing import Any, Dict

from torch import Tensor

from rlkd_mm.registry import REWARDS

from .base import BaseReward


@REWARDS.register_module(name='instance')
class InstanceReward(BaseReward):
    """``'instance'`` (per instance, measures fit): after the optimizer step of iteration ``k``
    the distiller evaluates the student alone again, without grad, on exactly the inputs and
    targets of iteration ``k`` (kept at its forward, so no second data-preprocessor call), and
    instance ``i`` gets ``r_i = l_i(theta_k) - l_i(theta_k+1)``, ``l_i`` the student's own task
    loss on the instance. Same mode as training (BN on batch statistics, its running buffers
    restored afterwards), no RNG stream consumed.

    The distiller keeps ``'instance_losses'`` and offers ``instance_losses(kept)``.
    """

    keeps = ('instance_losses',)

    def rewards(self, model: Any, kept: Dict[str, Any]) -> Tensor:
        return kept['losses'] - model.instance_losses(kept)
