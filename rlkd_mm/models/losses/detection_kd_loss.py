"""KD losses with per-instance temperatures for dense detection heads.

An instance here is one positive prior (anchor or point): its box-side distributions (GFL/LD)
or its per-class sigmoid scores.
"""

from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from rlkd_mm.registry import MODELS

from .base_kd_loss import BaseInstanceKDLoss


def instance_ld_loss(
    preds_S: Tensor,
    preds_T: Tensor,
    t_s: Tensor,
    t_t: Tensor,
    prefactor: Optional[Tensor] = None,
) -> Tensor:
    """Per-prior localization distillation loss.

    Args:
        preds_S (Tensor): Student box-side logits, shape [N, 4, R + 1].
        preds_T (Tensor): Teacher box-side logits, shape [N, 4, R + 1]. Detached here.
        t_s (Tensor): Student temperatures, shape [N], shared by the prior's 4 sides.
        t_t (Tensor): Teacher temperatures, shape [N].
        prefactor (Tensor, optional): Shape [N], replaces ``T_s * T_t``.

    Returns:
        Tensor: ``T_s * T_t * mean over sides of KL(side_t || side_s)``, shape [N].
    """
    log_p_s = F.log_softmax(preds_S / t_s[:, None, None], dim=2)
    log_p_t = F.log_softmax(preds_T.detach() / t_t[:, None, None], dim=2)
    kl = F.kl_div(log_p_s, log_p_t, reduction='none', log_target=True).sum(dim=2)
    kl = kl.mean(dim=1)
    return kl * t_s * t_t if prefactor is None else kl * prefactor


def instance_sigmoid_kd_loss(
    preds_S: Tensor,
    preds_T: Tensor,
    t_s: Tensor,
    t_t: Tensor,
    prefactor: Optional[Tensor] = None,
) -> Tensor:
    """Per-instance KD loss between independent per-class Bernoulli distributions.

    Args:
        preds_S (Tensor): Student class logits, shape [N, C].
        preds_T (Tensor): Teacher class logits, shape [N, C]. Detached here.
        t_s (Tensor): Student temperatures, shape [N].
        t_t (Tensor): Teacher temperatures, shape [N].
        prefactor (Tensor, optional): Shape [N], replaces ``T_s * T_t``.

    Returns:
        Tensor: ``T_s * T_t * sum_c KL(Bern(sigmoid(z_t / T_t)) || Bern(sigmoid(z_s / T_s)))``,
        shape [N].
    """
    z_s = preds_S / t_s[:, None]
    z_t = preds_T.detach() / t_t[:, None]
    # log(1 - sigmoid(z)) = logsigmoid(-z): exact for saturated scores where 1 - p rounds to 0.
    log_pos_s, log_neg_s = F.logsigmoid(z_s), F.logsigmoid(-z_s)
    log_pos_t, log_neg_t = F.logsigmoid(z_t), F.logsigmoid(-z_t)
    kl = log_pos_t.exp() * (log_pos_t - log_pos_s) + log_neg_t.exp() * (log_neg_t - log_neg_s)
    kl = kl.sum(dim=1)
    return kl * t_s * t_t if prefactor is None else kl * prefactor


@MODELS.register_module()
class InstanceLDLoss(BaseInstanceKDLoss):
    """Localization distillation (LD) of GFL box-side distributions with per-prior temperatures.

    Inputs are the student and teacher distribution logits of N positive priors, shape
    [N, 4, R + 1] (4 box sides, R = ``reg_max``). The prior's temperature is shared by its 4
    sides:

    ``loss_i = T_s,i * T_t,i * (1/4) * sum_sides KL(softmax(d_t / T_t,i) || softmax(d_s / T_s,i))``.

    Relation to mmdet's ``LDHead``: it flattens to [N * 4, R + 1], repeats each prior's weight
    4 times and calls ``KnowledgeDistillationKLDivLoss`` with ``avg_factor=4``, i.e. a weighted
    sum over priors of the mean over their 4 sides. Our per-prior term already takes that mean,
    so the same quantity is ``reduction='sum'`` here with the prior weights as ``weight`` (or
    'mean' with ``avg_factor=1``). As in :class:`InstanceKDLoss`, the KL is summed over the
    R + 1 bins, whereas mmdet averages it over them (a factor R + 1).

    Args:
        reduction (str): 'none', 'mean' or 'sum'. Defaults to 'mean'.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    pred_dim = 3

    instance_loss_fn = staticmethod(instance_ld_loss)


@MODELS.register_module()
class InstanceSigmoidKDLoss(BaseInstanceKDLoss):
    """KD of dense sigmoid classification scores with per-instance temperatures.

    Dense detectors (RetinaNet, ATSS, GFL: the heads ``SingleStageDetDistiller`` supports)
    score every class with its own sigmoid, so the classes do not form one softmax distribution.
    Each class is therefore treated as an independent Bernoulli distribution softened by the
    instance's temperature, and the binary KLs are summed over the C classes (the sum mirrors
    the softmax KL, which sums over classes):

    ``loss_i = T_s,i * T_t,i * sum_c KL(Bern(sigmoid(z_t,ic / T_t,i)) ||
    Bern(sigmoid(z_s,ic / T_s,i)))``.

    At high T the gradient of one binary KL w.r.t. a student logit is about
    ``(z_s - z_t) / (4 T^2)``, so the ``T_s * T_t`` factor (T^2 for a shared T) keeps the
    gradient scale independent of T, as Hinton's T^2 does for the softmax KL. Inputs are logits
    of shape [N, C].

    Args:
        reduction (str): 'none', 'mean' or 'sum'. Defaults to 'mean'.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    instance_loss_fn = staticmethod(instance_sigmoid_kd_loss)
