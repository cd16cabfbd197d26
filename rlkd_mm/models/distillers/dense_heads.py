"""The mmdet dense-head families ``SingleStageDetDistiller`` distills, one adapter class each:
what the distiller needs to know of a family (its target assignment and losses, its last class
conv, how its box outputs decode). A new family is one new adapter in ``DENSE_HEAD_ADAPTERS``."""

from typing import Dict, List, Optional, Sequence, Tuple, Type

import torch
from torch import Tensor, nn


def flatten_levels(maps: Sequence[Tensor], channels: int) -> Tensor:
    """Concatenate per-level dense maps into one row per prior.

    Args:
        maps (list[Tensor]): Per level [B, A * channels, H, W].
        channels (int): Channels of one prior.

    Returns:
        Tensor: [sum_l B * H_l * W_l * A, channels], level-major, then image, then the
        (H, W, A) order of mmdet's prior generators (the order of the head's targets).
    """
    return torch.cat([m.permute(0, 2, 3, 1).reshape(-1, channels) for m in maps])


class DenseHeadAdapter:
    """One family of mmdet dense heads, as ``SingleStageDetDistiller`` sees it.

    A head belongs to the family if it is an instance of the family's mmdet class and keeps
    that class's target assignment and loss code (:attr:`family_methods` not overridden;
    ``LDHead``, which changes ``loss_by_feat``, is not GFL).

    Args:
        head: the mmdet head.
    """

    #: Name of the family's head class in ``mmdet.models.dense_heads``.
    head_type: str = ''
    #: Attribute of the head's last classification conv (the one that makes the logits).
    cls_conv: str = ''
    #: Whether the head predicts box-side distributions (GFL: the LD loss applies).
    box_distribution: bool = False
    #: Methods whose code the adapter reproduces.
    family_methods: Tuple[str, ...] = ('loss_by_feat', 'loss_by_feat_single', 'get_targets')
    #: Coordinates of one prior: 4 for an anchor box, 2 for a point.
    prior_dim: int = 4

    def __init__(self, head: nn.Module) -> None:
        self.head = head

    @classmethod
    def matches(cls, head: nn.Module) -> bool:
        from mmdet.models import dense_heads

        base = getattr(dense_heads, cls.head_type)
        return isinstance(head, base) and all(
            getattr(type(head), m) is getattr(base, m) for m in cls.family_methods
        )

    @property
    def final_cls_conv(self) -> nn.Conv2d:
        """The head's last classification conv."""
        return getattr(self.head, self.cls_conv)

    @property
    def box_channels(self) -> int:
        """Box-output channels of one prior."""
        return 4

    def paired_attributes(self, other: 'DenseHeadAdapter') -> List[Tuple[str, object, object]]:
        """``(attribute, this head's value, the other's)`` that must agree between student and
        teacher beyond the priors (checked by the distiller)."""
        return []

    def task_losses(
        self,
        outs: Tuple[List[Tensor], ...],
        batch_gt_instances: list,
        batch_img_metas: List[dict],
        batch_gt_instances_ignore: list,
    ) -> Tuple[Dict[str, list], Dict[str, List[Tensor]]]:
        """The head's own losses with its targets, assigned once.

        Args:
            outs (tuple[list[Tensor]]): The head's outputs: per level cls scores
                [B, A * C, H, W], bbox preds, and (ATSS) centernesses.

        Returns:
            tuple: ``(losses, targets)``; ``losses`` equals the head's ``loss_by_feat``
            output; ``targets`` holds per level ``labels`` [B, H * W * A] (C = background),
            ``anchors`` [B, H * W * A, prior_dim] (anchors, or points) and ``bbox_targets``
            [B, H * W * A, 4] (as the head's ``get_targets`` gives them: boxes for GFL / ATSS,
            encoded deltas for RetinaNet unless ``reg_decoded_bbox``, distances for FCOS).
        """
        head = self.head
        device = outs[0][0].device
        featmap_sizes = [score.shape[-2:] for score in outs[0]]
        anchor_list, valid_flag_list = head.get_anchors(featmap_sizes, batch_img_metas, device)
        targets = head.get_targets(
            anchor_list,
            valid_flag_list,
            batch_gt_instances,
            batch_img_metas,
            batch_gt_instances_ignore=batch_gt_instances_ignore,
        )
        return self._losses(outs, anchor_list, targets, device)

    def _losses(self, outs, anchor_list, targets, device):
        raise NotImplementedError

    def decode_positives(
        self, box: Tensor, anchors: Tensor, box_targets: Tensor, strides: Tensor
    ) -> Tuple[Tensor, Tensor]:
        """The predicted and the target box ``[P, 4]`` of positive priors from their box
        outputs ``[P, box_channels]``, anchors, box targets (as ``task_losses`` gives them) and
        strides ``[P]``, in the same coordinates (for their GIoU)."""
        head = self.head
        pred = head.bbox_coder.decode(anchors, box)
        target = (
            box_targets if head.reg_decoded_bbox else head.bbox_coder.decode(anchors, box_targets)
        )
        return pred, target


class RetinaAdapter(DenseHeadAdapter):
    """RetinaNet: focal class loss, box deltas, ``MaxIoUAssigner`` targets."""

    head_type = 'RetinaHead'
    cls_conv = 'retina_cls'

    def _losses(self, outs, anchor_list, targets, device):
        from mmdet.models.utils import images_to_levels, multi_apply
        from mmdet.structures.bbox import cat_boxes

        labels_list, label_weights_list, bbox_targets_list, bbox_weights_list, avg_factor = targets
        num_level_anchors = [anchors.size(0) for anchors in anchor_list[0]]
        level_anchors = images_to_levels([cat_boxes(a) for a in anchor_list], num_level_anchors)
        losses_cls, losses_bbox = multi_apply(
            self.head.loss_by_feat_single,
            outs[0],
            outs[1],
            level_anchors,
            labels_list,
            label_weights_list,
            bbox_targets_list,
            bbox_weights_list,
            avg_factor=avg_factor,
        )
        extras = dict(labels=labels_list, anchors=level_anchors, bbox_targets=bbox_targets_list)
        return dict(loss_cls=losses_cls, loss_bbox=losses_bbox), extras


class ATSSAdapter(DenseHeadAdapter):
    """ATSS: focal class loss, GIoU box loss weighted by centerness, centerness loss."""

    head_type = 'ATSSHead'
    cls_conv = 'atss_cls'

    def _losses(self, outs, anchor_list, targets, device):
        from mmdet.utils import reduce_mean

        level_anchors, labels_list, label_weights_list, bbox_targets_list, _, avg_factor = targets
        extras = dict(labels=labels_list, anchors=level_anchors, bbox_targets=bbox_targets_list)
        avg_factor = reduce_mean(torch.tensor(avg_factor, dtype=torch.float, device=device)).item()
        losses = self._level_losses(
            outs, level_anchors, labels_list, label_weights_list, bbox_targets_list, avg_factor
        )
        return losses, extras

    def _level_losses(self, outs, anchors, labels, label_weights, bbox_targets, avg_factor):
        from mmdet.models.utils import multi_apply
        from mmdet.utils import reduce_mean

        losses_cls, losses_bbox, losses_centerness, box_weight_sums = multi_apply(
            self.head.loss_by_feat_single,
            anchors,
            outs[0],
            outs[1],
            outs[2],
            labels,
            label_weights,
            bbox_targets,
            avg_factor=avg_factor,
        )
        box_avg = reduce_mean(sum(box_weight_sums)).clamp_(min=1).item()
        return dict(
            loss_cls=losses_cls,
            loss_bbox=[x / box_avg for x in losses_bbox],
            loss_centerness=losses_centerness,
        )


class GFLAdapter(ATSSAdapter):
    """GFL: quality focal class loss, GIoU and distribution focal box losses on box-side
    distributions over ``reg_max + 1`` bins (ATSS assignment)."""

    head_type = 'GFLHead'
    cls_conv = 'gfl_cls'
    box_distribution = True

    @property
    def box_channels(self) -> int:
        return 4 * (self.head.reg_max + 1)

    def paired_attributes(self, other: DenseHeadAdapter) -> List[Tuple[str, object, object]]:
        if not other.box_distribution:
            return []
        return [('reg_max', self.head.reg_max, other.head.reg_max)]

    def side_distributions(self, box_maps: Sequence[Tensor], pos: Tensor) -> Tensor:
        """The box-side distribution logits ``[P, 4, reg_max + 1]`` of the priors ``pos``."""
        bins = self.head.reg_max + 1
        return flatten_levels(box_maps, 4 * bins)[pos].reshape(-1, 4, bins)

    def _level_losses(self, outs, anchors, labels, label_weights, bbox_targets, avg_factor):
        from mmdet.models.utils import multi_apply
        from mmdet.utils import reduce_mean

        losses_cls, losses_bbox, losses_dfl, box_weight_sums = multi_apply(
            self.head.loss_by_feat_single,
            anchors,
            outs[0],
            outs[1],
            labels,
            label_weights,
            bbox_targets,
            self.head.prior_generator.strides,
            avg_factor=avg_factor,
        )
        box_avg = reduce_mean(sum(box_weight_sums)).clamp_(min=1).item()
        return dict(
            loss_cls=losses_cls,
            loss_bbox=[x / box_avg for x in losses_bbox],
            loss_dfl=[x / box_avg for x in losses_dfl],
        )

    def decode_positives(
        self, box: Tensor, anchors: Tensor, box_targets: Tensor, strides: Tensor
    ) -> Tuple[Tensor, Tensor]:
        head = self.head
        strides = strides[:, None]
        centers = head.anchor_center(anchors) / strides[:, :1]
        pred = head.bbox_coder.decode(centers, head.integral(box))
        return pred, box_targets / strides


class FCOSAdapter(DenseHeadAdapter):
    """FCOS: anchor-free, one point per location; focal class loss, IoU box loss on distances
    weighted by centerness, centerness loss (``FCOSHead.loss_by_feat`` with the targets
    assigned once)."""

    head_type = 'FCOSHead'
    cls_conv = 'conv_cls'
    family_methods = ('loss_by_feat', 'get_targets', '_get_targets_single', 'centerness_target')
    prior_dim = 2

    def task_losses(self, outs, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore):
        from mmdet.utils import reduce_mean

        head = self.head
        cls_scores, bbox_preds, centernesses = outs
        device = bbox_preds[0].device
        featmap_sizes = [featmap.size()[-2:] for featmap in cls_scores]
        points = head.prior_generator.grid_priors(
            featmap_sizes, dtype=bbox_preds[0].dtype, device=device
        )
        labels, bbox_targets = head.get_targets(points, batch_gt_instances)
        level_points = [p.repeat(cls_scores[0].size(0), 1) for p in points]
        flat_labels, flat_targets = torch.cat(labels), torch.cat(bbox_targets)
        flat_cls = flatten_levels(cls_scores, head.cls_out_channels)
        flat_box = flatten_levels(bbox_preds, 4)
        flat_centerness = flatten_levels(centernesses, 1).reshape(-1)
        pos = ((flat_labels >= 0) & (flat_labels < head.num_classes)).nonzero().reshape(-1)
        num_pos = max(reduce_mean(torch.tensor(len(pos), dtype=torch.float, device=device)), 1.0)
        losses = {}
        if getattr(head.loss_cls, 'custom_accuracy', False):
            losses.update(head.loss_cls.get_accuracy(flat_cls, flat_labels))
        losses['loss_cls'] = head.loss_cls(flat_cls, flat_labels, avg_factor=num_pos)
        pos_box, pos_centerness = flat_box[pos], flat_centerness[pos]
        pos_targets = flat_targets[pos]
        centerness_targets = head.centerness_target(pos_targets)
        denorm = max(reduce_mean(centerness_targets.sum().detach()), 1e-6)
        if len(pos) > 0:
            pos_points = torch.cat(level_points)[pos]
            losses['loss_bbox'] = head.loss_bbox(
                head.bbox_coder.decode(pos_points, pos_box),
                head.bbox_coder.decode(pos_points, pos_targets),
                weight=centerness_targets,
                avg_factor=denorm,
            )
            losses['loss_centerness'] = head.loss_centerness(
                pos_centerness, centerness_targets, avg_factor=num_pos
            )
        else:
            losses['loss_bbox'], losses['loss_centerness'] = pos_box.sum(), pos_centerness.sum()
        return losses, dict(labels=labels, anchors=level_points, bbox_targets=bbox_targets)

    def decode_positives(
        self, box: Tensor, anchors: Tensor, box_targets: Tensor, strides: Tensor
    ) -> Tuple[Tensor, Tensor]:
        decode = self.head.bbox_coder.decode
        return decode(anchors, box), decode(anchors, box_targets)


#: The supported families, in the order they are tried.
DENSE_HEAD_ADAPTERS: Tuple[Type[DenseHeadAdapter], ...] = (
    GFLAdapter,
    ATSSAdapter,
    RetinaAdapter,
    FCOSAdapter,
)


def dense_head_adapter(head: nn.Module) -> Optional[DenseHeadAdapter]:
    """The adapter of ``head``'s family, or None for an unsupported head."""
    for adapter in DENSE_HEAD_ADAPTERS:
        if adapter.matches(head):
            return adapter(head)
    return None
