"""Distillation of mmdet one-stage detectors (GFL / LD, RetinaNet, ATSS, FCOS) with one temperature
per positive prior."""

import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from rlkd_mm.registry import MODELS
from rlkd_mm.temperature import TemperatureOutput

from .base import (
    BaseDistiller,
    ModelCfg,
    captured_inputs,
    check_score_type,
    detach_weights,
    student_untouched,
    with_score_type,
)
from .dense_heads import (
    DENSE_HEAD_ADAPTERS,
    DenseHeadAdapter,
    dense_head_adapter,
    flatten_levels,
)

# Marks a keyword argument that was not given.
_UNSET = object()


@MODELS.register_module()
class SingleStageDetDistiller(BaseDistiller):
    """KD for mmdet one-stage detectors where an instance is a positive prior.

    One training iteration:

    1. the student's features and head outputs; the teacher's under ``no_grad`` on the same
       inputs (both heads see the same priors: strides, priors per location and anchor shapes
       are checked at build);
    2. the student's target assignment is computed once (by the head family's adapter,
       ``dense_heads.py``) and gives both the student's own losses (computed as the head's
       ``loss_by_feat`` does, so they equal ``student.loss``) and the KD instances: the priors
       whose label lies in [0, C);
    3. the class logits [P, C] of student and teacher at the P positives (all levels and images)
       go to ``choose_temperatures`` once; every positive gets its (T_s, T_t) (and the
       policy's prefactor and extra terms, summed through the same loss);
    4. ``kd_loss`` (``InstanceSigmoidKDLoss``) on the [P, C] logits, averaged over the
       positives (``avg_factor`` = number of positives, averaged over ranks as the head's own
       ``avg_factor``), and, for GFL, ``ld_loss`` (``InstanceLDLoss``) on the box-side
       distribution logits [P, 4, R + 1]; the 4 sides share their prior's temperature. With
       ``ld_temperature='teacher'`` the LD term uses the teacher temperature T_t for both
       distributions (one temperature per prior) while the class-score term keeps the pair: a
       policy that softens student and teacher differently (logit standardisation, DTKD, CIST)
       would otherwise ask for box distributions flatter or sharper than the teacher's.

    LD weighting follows mmdet's ``LDHead``: each positive is weighted by the student's
    (detached) highest class score, the confidence GFL also weights its box losses with, and the
    weighted per-prior terms are summed over the positives (``avg_factor=1``, no division by their
    number, as ``LDHead`` does). ``InstanceLDLoss`` sums the KL over the R + 1 bins where mmdet
    averages it, so mmdet's ``loss_weight`` maps to ``loss_weight / (R + 1)`` here.

    Dense heads score classes with independent sigmoids, so the policy must be built with
    ``score_type='sigmoid'``: the distiller sets it when the ``temperature`` config leaves it out
    and raises ``ValueError`` for any other value.

    With no positive prior in the batch the policy is still called (with N = 0, it returns empty
    temperatures), and the KD terms are ``0 * sum(head outputs)``: finite, zero, graph intact.

    Returned dict: the student's losses (``loss_cls``, ``loss_bbox``, ``loss_dfl`` |
    ``loss_centerness``), ``loss_kd`` (class-score KD: the same key and config name
    ``kd_loss`` as in the other distillers), ``loss_ld`` (GFL), and the non-loss scalars
    ``num_kd_instances`` (P) and ``t_mean``, ``t_std``, ``t_min``, ``t_max`` (when P > 0).

    Args:
        student, teacher, teacher_ckpt, data_preprocessor, init_cfg: see :class:`BaseDistiller`.
            Both must be mmdet ``SingleStageDetector`` s with a head of a family in
            ``dense_heads.DENSE_HEAD_ADAPTERS`` (``GFLHead``, ``ATSSHead``, ``RetinaHead``,
            ``FCOSHead``), classifying with sigmoids.
        temperature (dict): the temperature policy config.
        kd_loss (dict, optional): KD loss on the class logits of the positives; the
            default weight 0.1 was chosen on DigitsDet's validation split. ``None`` disables it.
        cls_kd_loss (dict, optional): the former name of ``kd_loss``, still accepted (with a
            warning) when ``kd_loss`` is left at its default.
        ld_loss (dict, optional): LD loss on the box-side distributions; needs GFL heads on both
            sides. ``None`` disables it (required for RetinaNet / ATSS). The default weight
            0.25 / 17 is mmdet's LD weight 0.25 for GFL's default ``reg_max`` = 16.
        ld_temperature (str): ``'pair'`` (default): LD gets the policy's whole output as the
            class-score term does ((T_s, T_t), its prefactor and its extra terms);
            ``'teacher'``: LD gets (T_t, T_t) with the plain ``T_t^2`` scale and no extra
            terms. A policy's per-instance KD weight (CIST) multiplies both terms.

    Example:
        >>> model = dict(
        ...     type='rlkd_mm.SingleStageDetDistiller',
        ...     student='configs/digits/det_student_gfl.py',
        ...     teacher='configs/digits/det_teacher_gfl.py',
        ...     teacher_ckpt='checkpoints/digits/det_teacher_gfl.pth',
        ...     temperature=dict(type='rlkd_mm.RLTemperature'),
        ...     kd_loss=dict(type='rlkd_mm.InstanceSigmoidKDLoss', loss_weight=0.1),
        ...     ld_loss=dict(type='rlkd_mm.InstanceLDLoss', loss_weight=0.25 / 17))
    """

    reward_items = ('task_loss', 'instance_losses', 'logit_grads', 'candidate_grads')

    def __init__(
        self,
        student: ModelCfg,
        teacher: ModelCfg,
        teacher_ckpt: Optional[str] = None,
        temperature: dict = dict(type='rlkd_mm.FixedTemperature', temperature=4.0),
        kd_loss: Optional[dict] = dict(type='rlkd_mm.InstanceSigmoidKDLoss', loss_weight=0.1),
        ld_loss: Optional[dict] = dict(type='rlkd_mm.InstanceLDLoss', loss_weight=0.25 / 17),
        data_preprocessor: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
        cls_kd_loss: Any = _UNSET,
        ld_temperature: str = 'pair',
    ) -> None:
        if ld_temperature not in ('pair', 'teacher'):
            raise ValueError(
                f"ld_temperature must be 'pair' or 'teacher', got ld_temperature={ld_temperature!r}"
            )
        if cls_kd_loss is not _UNSET:
            warnings.warn(
                'SingleStageDetDistiller: cls_kd_loss is renamed kd_loss (the name the other '
                'distillers use for the KD on class logits); the value is used as kd_loss'
            )
            kd_loss = cls_kd_loss
        temperature = with_score_type(temperature, 'sigmoid')
        super().__init__(
            student=student,
            teacher=teacher,
            teacher_ckpt=teacher_ckpt,
            temperature=temperature,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
        )
        check_score_type(self.temperature, 'sigmoid')
        self.ld_temperature = ld_temperature
        # the student's and the teacher's head families (rlkd_mm.models.distillers.dense_heads)
        self.adapter, self.teacher_adapter = self._check_models()
        self.kd_loss = MODELS.build(kd_loss) if kd_loss is not None else None
        if ld_loss is not None and not (
            self.adapter.box_distribution and self.teacher_adapter.box_distribution
        ):
            raise ValueError(
                'ld_loss needs GFL heads on student and teacher, got student '
                f'{type(self.student.bbox_head).__name__} and teacher '
                f'{type(self.teacher.bbox_head).__name__}; set ld_loss=None'
            )
        self.ld_loss = MODELS.build(ld_loss) if ld_loss is not None else None
        if getattr(self.temperature, 'needs_features', False):
            # plain attribute: the policy must not hold the distiller as a submodule
            object.__setattr__(self.temperature, 'logit_grads_fn', self.candidate_logit_grads)
        # each positive's task-loss gradient w.r.t. its class logits, of the current training
        # forward (candidate_logit_grads' default)
        self._task_grads: Optional[Tensor] = None

    # ------------------------------------------------------------------ build-time checks
    def _check_models(self) -> Tuple[DenseHeadAdapter, DenseHeadAdapter]:
        """Check that student and teacher heads can be distilled prior by prior; return their
        family adapters."""
        from mmdet.models.detectors import SingleStageDetector

        adapters = {}
        for name, model in (('student', self.student), ('teacher', self.teacher)):
            if not isinstance(model, SingleStageDetector):
                raise TypeError(
                    f'the {name} must be an mmdet SingleStageDetector, got {type(model).__name__}'
                )
            head = model.bbox_head
            adapter = dense_head_adapter(head)
            if adapter is None:
                supported = ', '.join(a.head_type for a in DENSE_HEAD_ADAPTERS)
                raise TypeError(
                    f'unsupported {name} head {type(head).__name__}: SingleStageDetDistiller '
                    f'supports {supported}'
                )
            if not head.use_sigmoid_cls:
                raise ValueError(
                    f'the {name} head {type(head).__name__} must classify with '
                    'sigmoids (loss_cls.use_sigmoid=True), got use_sigmoid=False'
                )
            adapters[name] = adapter
        s_head, t_head = self.student.bbox_head, self.teacher.bbox_head
        pairs = [
            ('num_classes', s_head.num_classes, t_head.num_classes),
            (
                'prior_generator.strides',
                [tuple(s) for s in s_head.prior_generator.strides],
                [tuple(s) for s in t_head.prior_generator.strides],
            ),
            (
                'prior_generator.num_base_priors',
                list(s_head.prior_generator.num_base_priors),
                list(t_head.prior_generator.num_base_priors),
            ),
        ]
        pairs += adapters['student'].paired_attributes(adapters['teacher'])
        for attr, s_value, t_value in pairs:
            if s_value != t_value:
                raise ValueError(
                    f'student and teacher heads disagree on bbox_head.{attr}: '
                    f'student has {s_value}, teacher has {t_value}'
                )
        # same strides and counts: the anchors themselves must match too
        base_anchors = [
            getattr(head.prior_generator, 'base_anchors', None) for head in (s_head, t_head)
        ]
        if all(a is not None for a in base_anchors) and not (
            len(base_anchors[0]) == len(base_anchors[1])
            and all(torch.equal(a, b) for a, b in zip(*base_anchors))
        ):
            raise ValueError(
                'student and teacher heads disagree on bbox_head.prior_generator.base_anchors '
                '(anchor scales / ratios): prior i would be a different anchor in each model; '
                f'first level: student {base_anchors[0][0].tolist()}, '
                f'teacher {base_anchors[1][0].tolist()}'
            )
        return adapters['student'], adapters['teacher']

    # ------------------------------------------------------------------ training
    def loss(self, inputs: Tensor, data_samples: list) -> Dict[str, Tensor]:
        """Student losses plus KD losses of one batch.

        Args:
            inputs (Tensor): Preprocessed images [B, 3, H, W].
            data_samples (list[DetDataSample]): With ``gt_instances``.

        Returns:
            dict[str, Tensor | list[Tensor]]: See the class docstring.
        """
        from mmdet.models.utils import unpack_gt_instances
        from mmdet.utils import reduce_mean

        batch_gt_instances, batch_gt_instances_ignore, batch_img_metas = unpack_gt_instances(
            data_samples
        )
        keep = self.keeps()
        needs_features = self.training and getattr(self.temperature, 'needs_features', False)
        candidates = needs_features or 'candidate_grads' in keep
        s_outs, cls_feats = self._student_head(inputs, candidates or 'logit_grads' in keep)
        with torch.no_grad():
            t_outs = self.teacher.bbox_head(self.teacher.extract_feat(inputs))
        s_sizes = [tuple(s.shape[-2:]) for s in s_outs[0]]
        t_sizes = [tuple(t.shape[-2:]) for t in t_outs[0]]
        if s_sizes != t_sizes:
            raise ValueError(
                'student and teacher feature maps differ in size: student '
                f'{s_sizes}, teacher {t_sizes}'
            )

        # the student's own losses, its targets assigned once
        losses, targets = self.adapter.task_losses(
            s_outs, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore
        )
        self.keep_task_loss(losses)

        num_classes = self.student.bbox_head.num_classes
        labels = torch.cat([lvl.reshape(-1) for lvl in targets['labels']])
        pos = ((labels >= 0) & (labels < num_classes)).nonzero().squeeze(1)
        s_cls = flatten_levels(s_outs[0], num_classes)[pos]
        t_cls = flatten_levels(t_outs[0], num_classes)[pos]
        pos_labels = labels[pos]
        num_pos = pos.numel()

        patches = groups = None
        if candidates:
            self._task_grads = self._positive_task_grads(losses, s_outs, pos)
            patches, groups = self._positive_patches([f.detach() for f in cls_feats], pos)
        if needs_features:
            self.temperature.features = patches
            self.temperature.groups = groups
        temperatures, stats = self.choose_temperatures(s_cls, t_cls, pos_labels)

        if self.kd_loss is not None:
            # normalised like the head's own classification loss: by the positives, averaged over
            # ranks. The all-reduce runs on every rank, those without positives included, or the
            # ranks' collectives would no longer pair up.
            avg = reduce_mean(s_cls.new_tensor(float(num_pos))).clamp_(min=1).item()
            if num_pos > 0:
                losses['loss_kd'] = self.policy_kd_loss(
                    self.kd_loss, s_cls, t_cls, temperatures, avg_factor=avg, gt_labels=pos_labels
                )
            else:
                losses['loss_kd'] = _zero_like_sum(s_outs[0])
        if self.ld_loss is not None:
            if num_pos > 0:
                s_box = self.adapter.side_distributions(s_outs[1], pos)
                t_box = self.teacher_adapter.side_distributions(t_outs[1], pos)
                score_weight = s_cls.detach().sigmoid().max(dim=1)[0]
                ld_temperatures = temperatures
                if self.ld_temperature == 'teacher':
                    # one temperature per prior, the plain T_t^2 scale, no extra terms
                    ld_temperatures = TemperatureOutput(
                        temperatures.t_teacher, temperatures.t_teacher, temperatures.weight
                    )
                losses['loss_ld'] = self.policy_kd_loss(
                    self.ld_loss,
                    s_box,
                    t_box,
                    ld_temperatures,
                    weight=score_weight,
                    avg_factor=1.0,
                )
            else:
                losses['loss_ld'] = _zero_like_sum(s_outs[1])

        self.apply_kd_warmup(losses)
        losses['num_kd_instances'] = s_cls.new_tensor(float(num_pos))
        losses.update(stats)
        if self.keeps_instances():
            self._keep_positives(keep, inputs, s_outs, cls_feats, targets, pos, pos_labels, losses)
            if 'candidate_grads' in keep:
                self.keep_for_reward(
                    logits=s_cls,
                    teacher_logits=t_cls,
                    labels=pos_labels,
                    features=patches,
                    groups=groups,
                    task_grads=self._task_grads,
                )
        return losses

    # ------------------------------------------------------------------ candidate temperatures
    def _avg_factor(self, num_pos: int, like: Tensor) -> float:
        """The positives' divisor of the class-score losses (averaged over ranks, >= 1)."""
        from mmdet.utils import reduce_mean

        return reduce_mean(like.new_tensor(float(num_pos))).clamp_(min=1).item()

    def _positive_task_grads(
        self, losses: Dict[str, Any], s_outs: Tuple[List[Tensor], ...], pos: Tensor
    ) -> Tensor:
        """Each positive's gradient of the head's own classification loss w.r.t. its class
        logits ``[P, C]``, times the positives' divisor (the common ``1 / P`` left out, as
        :meth:`candidate_logit_grads` leaves it out of the KD term); the graph is kept."""
        maps = list(s_outs[0])
        loss_cls = losses['loss_cls']
        total = sum(loss_cls) if isinstance(loss_cls, (list, tuple)) else loss_cls
        grads = torch.autograd.grad(total, maps, retain_graph=True, allow_unused=True)
        grads = [torch.zeros_like(m) if g is None else g for g, m in zip(grads, maps)]
        num_classes = self.student.bbox_head.num_classes
        flat = flatten_levels(grads, num_classes)[pos].float()
        return flat * self._avg_factor(pos.numel(), flat)

    def candidate_logit_grads(
        self,
        student_logits: Tensor,
        teacher_logits: Tensor,
        gt_labels: Tensor,
        num_candidates: int,
        policy_fn: Callable[[Tensor, Tensor, Tensor], TemperatureOutput],
        task_grads: Optional[Tensor] = None,
    ) -> Tensor:
        """Each positive's gradient of its trained class-score objective w.r.t. its own class
        logits under K candidate policies: ``[K, P, C]``.

        As ``ClassifierDistiller.candidate_logit_grads``: the positives are repeated K times
        (candidate-major), ``policy_fn`` gives candidate ``k``'s output for the ``k``-th copy,
        and the class-score KD (``kd_loss`` with its weight and the KD warm-up factor) is
        differentiated in one batched backward. The task term is the head's own classification
        loss at each positive (``task_grads`` ``[P, C]``; by default those of the current
        training forward), the same for every candidate. The common ``1 / P`` of both terms is
        left out. The LD term acts on the box branch, not on the class logits, and plays no part.
        """
        if self.kd_loss is None:
            raise ValueError(
                'per-candidate class-score gradients need the class-score KD term: kd_loss is None'
            )
        if task_grads is None:
            task_grads = self._task_grads
        n, c = student_logits.shape
        if task_grads is None or tuple(task_grads.shape) != (n, c):
            raise RuntimeError(
                f'no task gradients for these {n} positives: a training forward keeps them '
                '(or pass task_grads)'
            )
        labels = gt_labels.repeat(num_candidates)
        with torch.enable_grad():
            z = student_logits.detach().float().repeat(num_candidates, 1).requires_grad_(True)
            t = teacher_logits.detach().float().repeat(num_candidates, 1)
            kd = self.policy_kd_loss(
                self.kd_loss,
                z,
                t,
                detach_weights(policy_fn(z, t, labels)),
                gt_labels=labels,
                reduction_override='sum',
            )
            (grads,) = torch.autograd.grad(self.kd_warmup_factor * kd, z)
        return grads.reshape(num_candidates, n, c) + task_grads.to(grads)[None]

    def last_layer(self) -> Tuple[Tensor, Tensor]:
        """The weight ``[A * C, F, k, k]`` and bias ``[A * C]`` of the head's last class conv
        (its rows flattened, ``[A * C, F * k * k]``, are what :meth:`quiz_layer_gradients` and
        the positives' patches use)."""
        conv = self.adapter.final_cls_conv
        if conv.bias is None:
            head = type(self.student.bbox_head).__name__
            raise TypeError(f'the last class conv of the student head {head} has no bias')
        return conv.weight, conv.bias

    @torch.no_grad()
    def quiz_layer_gradients(self, inputs: Tensor, data_samples: list) -> List[Tensor]:
        """The gradient of the head's own classification loss (its positives and negatives)
        w.r.t. its last class conv, ``[A * C, F * k * k + 1]`` (weight rows, then the bias), on
        each half of a batch of images: one forward of the student in training mode (its
        buffers and the random streams left as they were), then each half's loss with its own
        targets and divisor."""
        from mmdet.models.utils import unpack_gt_instances

        conv = self.adapter.final_cls_conv
        with student_untouched(self.student):
            s_outs, cls_feats = self._student_head(inputs, with_features=True)
        num = inputs.shape[0]
        if num < 2:
            raise ValueError(f'a quiz batch needs >= 2 images (two halves), got {num}')
        halves = []
        for sl in (slice(0, num // 2), slice(num // 2, None)):
            with torch.enable_grad():
                weight = conv.weight.detach().float().requires_grad_(True)
                bias = conv.bias.detach().float().requires_grad_(True)
                cls = [
                    F.conv2d(
                        f[sl].detach().float(),
                        weight,
                        bias,
                        conv.stride,
                        conv.padding,
                        conv.dilation,
                        conv.groups,
                    )
                    for f in cls_feats
                ]
                outs = (cls,) + tuple([o[sl].detach().float() for o in out] for out in s_outs[1:])
                gt, ignore, metas = unpack_gt_instances(data_samples[sl])
                losses, _ = self.adapter.task_losses(outs, gt, metas, ignore)
                loss_cls = losses['loss_cls']
                total = sum(loss_cls) if isinstance(loss_cls, (list, tuple)) else loss_cls
                g_w, g_b = torch.autograd.grad(total, (weight, bias))
            halves.append(torch.cat([g_w.reshape(g_w.shape[0], -1), g_b[:, None]], dim=1))
        return halves

    # ------------------------------------------------------------------ per-instance rewards
    def _student_head(self, inputs: Tensor, with_features: bool):
        """The student head's outputs and, if asked, the inputs of its last classification
        conv per level."""
        with captured_inputs(self.adapter.final_cls_conv, with_features) as feats:
            outs = self.student.bbox_head(self.student.extract_feat(inputs))
        return outs, feats

    def _positive_patches(self, cls_feats: List[Tensor], pos: Tensor) -> Tuple[Tensor, Tensor]:
        """The receptive-field patch of the last cls conv at each positive ``[P, F * k * k]``
        (what its weight multiplies) and the anchor index of each positive ``[P]``."""
        conv = self.adapter.final_cls_conv
        num_anchors = self.student.bbox_head.num_base_priors
        offsets, start = [], 0
        for feat in cls_feats:
            unfolded = F.unfold(
                feat.float(),
                conv.kernel_size,
                dilation=conv.dilation,
                padding=conv.padding,
                stride=conv.stride,
            )  # [B, F * k * k, H * W]
            num = unfolded.shape[0] * unfolded.shape[2] * num_anchors
            offsets.append((start, start + num, unfolded))
            start += num
        feat_dim = offsets[0][2].shape[1]
        rows = cls_feats[0].new_zeros((pos.numel(), feat_dim), dtype=torch.float32)
        for begin, end, unfolded in offsets:
            mask = (pos >= begin) & (pos < end)
            local = pos[mask] - begin  # image-major, then (H * W), then anchor
            per_image = unfolded.shape[2] * num_anchors
            image = local // per_image
            location = (local % per_image) // num_anchors
            rows[mask] = unfolded[image, :, location]
        return rows, pos % num_anchors

    def _probe_gradients(self, cache: Dict) -> Tuple[Tensor, Tensor, Tensor]:
        """Patches, class-BCE gradients (of the mean over the probe's positives) and anchor
        indices of the cached probe batch's positives, on the current student."""
        s_outs, cls_feats = self._student_head(cache['inputs'], with_features=True)
        num_classes = self.student.bbox_head.num_classes
        pos = cache['pos']
        with torch.enable_grad():
            cls = flatten_levels(s_outs[0], num_classes)[pos].detach().float()
            cls.requires_grad_(True)
            onehot = F.one_hot(cache['labels'], num_classes).to(cls.dtype)
            bce = F.binary_cross_entropy_with_logits(cls, onehot, reduction='none').sum(dim=1)
            (grads,) = torch.autograd.grad(bce.mean() if bce.numel() else bce.sum(), cls)
        patches, groups = self._positive_patches(cls_feats, pos)
        return patches, grads, groups

    def _keep_positives(
        self,
        keep: Tuple[str, ...],
        inputs: Tensor,
        s_outs: Tuple[List[Tensor], ...],
        cls_feats: List[Tensor],
        targets: Dict[str, List[Tensor]],
        pos: Tensor,
        pos_labels: Tensor,
        losses: Dict,
    ) -> None:
        """Keep the positives (targets assigned at this iteration) and, for
        'instance_losses', their anchors, box targets, strides and task loss; for
        'logit_grads', each positive's gradient of everything it is trained with w.r.t. its
        class logits, its last-layer patch and its anchor index."""
        cache = dict(inputs=inputs, pos=pos, labels=pos_labels)
        if 'instance_losses' in keep:
            dim = self.adapter.prior_dim
            strides = torch.cat(
                [
                    torch.full((anchors.numel() // dim,), float(stride[0]), device=pos.device)
                    for anchors, stride in zip(
                        targets['anchors'], self.student.bbox_head.prior_generator.strides
                    )
                ]
            )
            cache.update(
                anchors=torch.cat([a.reshape(-1, dim) for a in targets['anchors']])[pos],
                bbox_targets=torch.cat([t.reshape(-1, 4) for t in targets['bbox_targets']])[pos],
                strides=strides[pos],
            )
            cache['losses'] = self._positive_losses(s_outs, cache)
        if 'logit_grads' in keep:
            grads = self._logit_grads(losses, list(s_outs[0]))
            num_classes = self.student.bbox_head.num_classes
            cache['grads'] = flatten_levels(grads, num_classes)[pos].float()
            cache['features'], cache['groups'] = self._positive_patches(
                [f.detach() for f in cls_feats], pos
            )
        self.keep_for_reward(**cache)

    def _positive_losses(self, s_outs: Tuple[List[Tensor], ...], cache: Dict) -> Tensor:
        """Task loss of each cached positive prior ``[P]``: the binary cross-entropy of its
        class scores against its one-hot label (summed over classes) plus ``1 - GIoU`` of its
        decoded box with its target box. One formula for every family (their own
        losses weight positives by quality or centerness, which would mix the box and class
        branches of other priors into an instance's reward)."""
        from mmdet.structures.bbox import bbox_overlaps

        head = self.student.bbox_head
        pos = cache['pos']
        num_classes = head.num_classes
        if pos.numel() == 0:
            return s_outs[0][0].new_zeros(0, dtype=torch.float32)
        cls = flatten_levels(s_outs[0], num_classes)[pos].float()
        onehot = F.one_hot(cache['labels'], num_classes).to(cls.dtype)
        loss_cls = F.binary_cross_entropy_with_logits(cls, onehot, reduction='none').sum(dim=1)
        box = flatten_levels(s_outs[1], self.adapter.box_channels)[pos].float()
        pred, target = self.adapter.decode_positives(
            box, cache['anchors'].float(), cache['bbox_targets'].float(), cache['strides']
        )
        giou = bbox_overlaps(pred, target, mode='giou', is_aligned=True)
        return (loss_cls + 1.0 - giou).float()

    def _instance_losses(self, cache: Dict) -> Tensor:
        s_outs, _ = self._student_head(cache['inputs'], with_features=False)
        return self._positive_losses(s_outs, cache)


def _zero_like_sum(maps: Sequence[Tensor]) -> Tensor:
    """A zero that keeps the graph of ``maps`` (DDP expects every output to get a gradient)."""
    return sum(m.sum() for m in maps) * 0
