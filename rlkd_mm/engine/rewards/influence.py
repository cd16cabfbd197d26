"""The per-instance reward that measures generalisation: the first-order influence of each
instance's gradient on the task loss of a probe batch from the training split."""

from typing import Any, Dict, Optional

from torch import Tensor

from rlkd_mm.agent import tensors_to
from rlkd_mm.registry import REWARDS

from .base import BaseReward


@REWARDS.register_module(name='influence')
class InfluenceReward(BaseReward):
    """``'influence'`` (per instance, measures generalisation): the first-order effect of
    instance ``i``'s gradient on the task loss of a probe batch from the training split (the
    inputs of the previous rewarded iteration, evaluated again after step ``k``), at the
    student's last layer: ``r_i = sum_j (g_i . g_j)(h_i . h_j + 1)`` (:func:`influence_rewards`)
    with ``g`` the loss gradient w.r.t. the logits and ``h`` the input of the layer that makes
    the class logits (classifier fc, a dense head's last class conv, the RoI head's
    ``fc_cls``).

    The distiller keeps ``'logit_grads'`` and offers ``last_layer_gradients(kept)``. The first
    rewarded iteration only becomes the probe (no reward). The probe batch outlives its
    iteration: it is this unit's checkpoint state, and each rank's own under DDP.
    """

    keeps = ('logit_grads',)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.probe: Optional[Dict[str, Any]] = None

    def rewards(self, model: Any, kept: Dict[str, Any]) -> Optional[Tensor]:
        probe, self.probe = self.probe, kept
        if probe is None:
            return None
        features, grads, groups = model.last_layer_gradients(probe)
        return influence_rewards(
            kept['features'], kept['grads'], features, grads, kept.get('groups'), groups
        )

    def state_dict(self) -> Dict[str, Any]:
        return dict(probe=tensors_to(self.probe, 'cpu'))

    def load_state_dict(self, state: Dict[str, Any], device: Any) -> None:
        self.probe = tensors_to(state.get('probe'), device)

    def drop_rank_local(self) -> None:
        self.probe = None


def influence_rewards(
    features: Tensor,
    grads: Tensor,
    probe_features: Tensor,
    probe_grads: Tensor,
    groups: Optional[Tensor] = None,
    probe_groups: Optional[Tensor] = None,
) -> Tensor:
    """``r_i = sum_j (g_i . g_j)(h_i . h_j + 1)``: the inner product of instance ``i``'s
    last-layer gradient ``g_i h_i^T`` (and bias gradient ``g_i``) with the probe batch's.

    Args:
        features (Tensor): ``[N, D]`` last-layer inputs of the instances.
        grads (Tensor): ``[N, C]`` loss gradients w.r.t. their logits.
        probe_features (Tensor): ``[M, D]``.
        probe_grads (Tensor): ``[M, C]``.
        groups (Tensor, optional): ``[N]`` which slice of the last layer's weight produced
            each instance's logits (e.g. the anchor of a dense head with several anchors per
            location); pairs of different groups share no weight and contribute 0.
        probe_groups (Tensor, optional): ``[M]``, likewise.

    Returns:
        Tensor: ``[N]`` float32.
    """
    f, g = features.float(), grads.float()
    pf, pg = probe_features.float(), probe_grads.float()
    pairs = (g @ pg.t()) * (f @ pf.t() + 1.0)
    if groups is not None and probe_groups is not None:
        pairs = pairs * (groups[:, None] == probe_groups[None, :]).to(pairs.dtype)
    return pairs.sum(dim=1)
