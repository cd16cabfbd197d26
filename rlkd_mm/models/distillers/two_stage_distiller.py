"""Distillation of mmdet two-stage detectors (Faster R-CNN) with one temperature per sampled
RoI."""

import copy
from typing import Dict, Optional

import torch
from torch import Tensor

from rlkd_mm.registry import MODELS

from .base import BaseDistiller, ModelCfg, captured_inputs, check_score_type, with_score_type

_ROI_HEAD_METHODS = ('loss', 'bbox_loss', '_bbox_forward')


def _check_roi_head(name: str, model) -> None:
    """Raise ``TypeError`` unless ``model`` is a Faster R-CNN-like detector we can distill."""
    from mmdet.models.detectors import TwoStageDetector
    from mmdet.models.roi_heads import StandardRoIHead

    if not isinstance(model, TwoStageDetector):
        raise TypeError(f'the {name} must be an mmdet TwoStageDetector, got {type(model).__name__}')
    roi_head = model.roi_head
    if not (
        isinstance(roi_head, StandardRoIHead)
        and all(
            getattr(type(roi_head), m) is getattr(StandardRoIHead, m) for m in _ROI_HEAD_METHODS
        )
    ):
        raise TypeError(
            f'unsupported {name} roi_head {type(roi_head).__name__}: '
            'TwoStageDetDistiller supports StandardRoIHead (Faster R-CNN)'
        )
    if roi_head.with_mask:
        raise TypeError(
            f'the {name} roi_head has a mask head: TwoStageDetDistiller supports '
            'box-only StandardRoIHead (Faster R-CNN)'
        )
    bbox_head = roi_head.bbox_head
    if not bbox_head.with_cls or bbox_head.custom_cls_channels:
        raise TypeError(
            f'the {name} bbox head {type(bbox_head).__name__} must give [R, C + 1] '
            'softmax class scores (with_cls=True, no custom_cls_channels)'
        )


@MODELS.register_module()
class TwoStageDetDistiller(BaseDistiller):
    """KD for mmdet Faster R-CNN where an instance is one sampled RoI.

    One training iteration:

    1. the student's features, its RPN losses and proposals exactly as
       ``TwoStageDetector.loss`` computes them (``rpn_`` prefixed keys);
    2. the student's RoI assignment and sampling as ``StandardRoIHead.loss`` does, its RoI head
       forward on the R sampled RoIs and its ``loss_and_target`` (``loss_cls``, ``acc``,
       ``loss_bbox`` and the labels of the RoIs, C = background);
    3. the teacher's features under ``no_grad`` and its RoI head on the SAME RoIs, so both give
       (C + 1)-way logits [R, C + 1] for each RoI;
    4. ``choose_temperatures(s_cls, t_cls, roi_labels)`` once, then ``kd_loss``
       (``InstanceKDLoss`` or ``InstanceDKDLoss``, averaged over the R RoIs) with each RoI's
       temperature;
    5. optionally ``reg_kd_loss`` (an mmdet regression loss such as ``mmdet.MSELoss``) between
       student and teacher box deltas [P, 4] at the P positive RoIs, taken for the RoI's
       ground-truth class when regression is class-specific.

    RoI heads use softmax over C + 1 classes, so the policy must have ``score_type='softmax'``:
    the distiller sets it when the ``temperature`` config leaves it out and raises
    ``ValueError`` otherwise.

    Returned dict: the student's losses, ``loss_kd``, ``loss_reg_kd`` (if enabled) and the
    non-loss scalars ``num_kd_instances`` (R) and ``t_mean``, ``t_std``, ``t_min``, ``t_max``.

    Args:
        student, teacher, teacher_ckpt, data_preprocessor, init_cfg: see :class:`BaseDistiller`.
            Both must be mmdet ``TwoStageDetector`` s with a box-only ``StandardRoIHead``.
        temperature (dict): the temperature policy config.
        kd_loss (dict): ``InstanceKDLoss`` or ``InstanceDKDLoss`` config.
        reg_kd_loss (dict, optional): box regression KD loss; ``None`` (default) disables it.

    Example:
        >>> model = dict(
        ...     type='rlkd_mm.TwoStageDetDistiller',
        ...     student='configs/digits/frcnn_student.py',
        ...     teacher='configs/digits/frcnn_teacher.py',
        ...     teacher_ckpt='checkpoints/digits/frcnn_teacher.pth',
        ...     temperature=dict(type='rlkd_mm.RLTemperature'),
        ...     kd_loss=dict(type='rlkd_mm.InstanceKDLoss', loss_weight=1.0))
    """

    reward_items = ('task_loss', 'instance_losses', 'logit_grads')

    def __init__(
        self,
        student: ModelCfg,
        teacher: ModelCfg,
        teacher_ckpt: Optional[str] = None,
        temperature: dict = dict(type='rlkd_mm.FixedTemperature', temperature=4.0),
        kd_loss: dict = dict(type='rlkd_mm.InstanceKDLoss', loss_weight=1.0),
        reg_kd_loss: Optional[dict] = None,
        data_preprocessor: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ) -> None:
        temperature = with_score_type(temperature, 'softmax')
        super().__init__(
            student=student,
            teacher=teacher,
            teacher_ckpt=teacher_ckpt,
            temperature=temperature,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
        )
        check_score_type(self.temperature, 'softmax')
        _check_roi_head('student', self.student)
        _check_roi_head('teacher', self.teacher)
        s_bbox_head = self.student.roi_head.bbox_head
        t_bbox_head = self.teacher.roi_head.bbox_head
        if s_bbox_head.num_classes != t_bbox_head.num_classes:
            raise ValueError(
                'student and teacher disagree on roi_head.bbox_head.num_classes: '
                f'student has {s_bbox_head.num_classes}, teacher has '
                f'{t_bbox_head.num_classes}'
            )
        self.kd_loss = MODELS.build(kd_loss)
        self.reg_kd_loss = None
        if reg_kd_loss is not None:
            self._check_regression(s_bbox_head, t_bbox_head)
            self.reg_kd_loss = MODELS.build(reg_kd_loss)

    @staticmethod
    def _check_regression(s_bbox_head, t_bbox_head) -> None:
        """Box deltas are only comparable when both heads encode them the same way."""
        for name, head in (('student', s_bbox_head), ('teacher', t_bbox_head)):
            if not head.with_reg:
                raise ValueError(
                    f'reg_kd_loss needs box regression, but the {name} bbox head has with_reg=False'
                )
        pairs = [
            ('reg_decoded_bbox', s_bbox_head.reg_decoded_bbox, t_bbox_head.reg_decoded_bbox),
            (
                'bbox_coder',
                type(s_bbox_head.bbox_coder).__name__,
                type(t_bbox_head.bbox_coder).__name__,
            ),
        ]
        for attr in ('means', 'stds'):
            pairs.append(
                (
                    f'bbox_coder.{attr}',
                    getattr(s_bbox_head.bbox_coder, attr, None),
                    getattr(t_bbox_head.bbox_coder, attr, None),
                )
            )
        for attr, s_value, t_value in pairs:
            if (
                s_value is not None
                and t_value is not None
                and list(_as_list(s_value)) != list(_as_list(t_value))
            ):
                raise ValueError(
                    'reg_kd_loss needs the same box encoding: student and teacher '
                    f'disagree on roi_head.bbox_head.{attr}: student has '
                    f'{s_value}, teacher has {t_value}'
                )

    # ------------------------------------------------------------------ training
    def _rpn(self, x, data_samples: list):
        """RPN losses and proposals, as ``TwoStageDetector.loss`` computes them."""
        student = self.student
        if not student.with_rpn:
            return {}, [data_sample.proposals for data_sample in data_samples]
        proposal_cfg = student.train_cfg.get('rpn_proposal', student.test_cfg.rpn)
        rpn_data_samples = copy.deepcopy(data_samples)
        # the RPN is class-agnostic: every ground truth is foreground class 0
        for data_sample in rpn_data_samples:
            data_sample.gt_instances.labels = torch.zeros_like(data_sample.gt_instances.labels)
        rpn_losses, rpn_results_list = student.rpn_head.loss_and_predict(
            x, rpn_data_samples, proposal_cfg=proposal_cfg
        )
        for key in list(rpn_losses.keys()):
            if 'loss' in key and 'rpn' not in key:
                rpn_losses[f'rpn_{key}'] = rpn_losses.pop(key)
        return rpn_losses, rpn_results_list

    def loss(self, inputs: Tensor, data_samples: list) -> Dict[str, Tensor]:
        """Student losses plus KD losses of one batch.

        Args:
            inputs (Tensor): Preprocessed images [B, 3, H, W].
            data_samples (list[DetDataSample]): With ``gt_instances``.

        Returns:
            dict[str, Tensor]: See the class docstring.
        """
        from mmdet.models.utils import unpack_gt_instances
        from mmdet.structures.bbox import bbox2roi

        x = self.student.extract_feat(inputs)
        losses, rpn_results_list = self._rpn(x, data_samples)

        roi_head = self.student.roi_head
        batch_gt_instances, batch_gt_instances_ignore, _ = unpack_gt_instances(data_samples)
        sampling_results = []
        for i, rpn_results in enumerate(rpn_results_list):
            rpn_results.priors = rpn_results.pop('bboxes')
            assign_result = roi_head.bbox_assigner.assign(
                rpn_results, batch_gt_instances[i], batch_gt_instances_ignore[i]
            )
            sampling_results.append(
                roi_head.bbox_sampler.sample(
                    assign_result,
                    rpn_results,
                    batch_gt_instances[i],
                    feats=[lvl_feat[i][None] for lvl_feat in x],
                )
            )
        rois = bbox2roi([res.priors for res in sampling_results])
        keep = self.keeps()
        s_results, roi_feats = self._student_rois(x, rois, 'logit_grads' in keep)
        loss_and_target = roi_head.bbox_head.loss_and_target(
            cls_score=s_results['cls_score'],
            bbox_pred=s_results['bbox_pred'],
            rois=rois,
            sampling_results=sampling_results,
            rcnn_train_cfg=roi_head.train_cfg,
        )
        losses.update(loss_and_target['loss_bbox'])
        roi_labels = loss_and_target['bbox_targets'][0]
        self.keep_task_loss(losses)

        with torch.no_grad():
            t_results = self.teacher.roi_head._bbox_forward(self.teacher.extract_feat(inputs), rois)
        s_cls, t_cls = s_results['cls_score'], t_results['cls_score']
        temperatures, stats = self.choose_temperatures(s_cls, t_cls, roi_labels)
        if s_cls.shape[0] == 0:
            losses['loss_kd'] = s_cls.sum() * 0
        else:
            losses['loss_kd'] = self.policy_kd_loss(
                self.kd_loss, s_cls, t_cls, temperatures, gt_labels=roi_labels
            )
        if self.reg_kd_loss is not None:
            losses['loss_reg_kd'] = self._reg_kd(
                s_results['bbox_pred'], t_results['bbox_pred'], roi_labels
            )
        self.apply_kd_warmup(losses)
        losses['num_kd_instances'] = s_cls.new_tensor(float(s_cls.shape[0]))
        losses.update(stats)
        if self.keeps_instances():
            # the RoIs, their labels and classification losses; with 'logit_grads' each RoI's
            # fc_cls input and gradient of its trained objective w.r.t. its logits
            kept = dict(
                inputs=inputs,
                rois=rois,
                labels=roi_labels,
                losses=_roi_losses(s_cls.detach(), roi_labels),
            )
            if 'logit_grads' in keep:
                grads = self._logit_grads(losses, s_cls)
                kept.update(features=roi_feats[0].float(), grads=grads.float())
            self.keep_for_reward(**kept)
        return losses

    def _student_rois(self, x, rois: Tensor, with_features: bool):
        """The student RoI head's outputs on ``rois`` and, if asked, the inputs of its
        ``fc_cls``."""
        fc_cls = self.student.roi_head.bbox_head.fc_cls
        with captured_inputs(fc_cls, with_features) as feats:
            results = self.student.roi_head._bbox_forward(x, rois)
        return results, feats

    def _probe_gradients(self, cache: dict):
        """``fc_cls`` inputs and mean-CE gradients w.r.t. the logits of the kept RoIs, on the
        current student."""
        x = self.student.extract_feat(cache['inputs'])
        results, feats = self._student_rois(x, cache['rois'], with_features=True)
        with torch.enable_grad():
            logits = results['cls_score'].detach().float().requires_grad_(True)
            (grads,) = torch.autograd.grad(_roi_losses(logits, cache['labels']).mean(), logits)
        return feats[0].float(), grads, None

    def _instance_losses(self, cache: dict) -> Tensor:
        """Classification loss of each kept RoI on the student's current RoI head."""
        x = self.student.extract_feat(cache['inputs'])
        results, _ = self._student_rois(x, cache['rois'], with_features=False)
        return _roi_losses(results['cls_score'], cache['labels'])

    def _reg_kd(self, s_pred: Tensor, t_pred: Tensor, roi_labels: Tensor) -> Tensor:
        """Regression KD at the positive RoIs.

        Args:
            s_pred (Tensor): Student deltas [R, 4] or [R, 4 * C].
            t_pred (Tensor): Teacher deltas, likewise.
            roi_labels (Tensor): [R], C = background.

        Returns:
            Tensor: 0-dim loss; ``0 * sum(s_pred)`` without positives.
        """
        num_classes = self.student.roi_head.bbox_head.num_classes
        pos = (roi_labels >= 0) & (roi_labels < num_classes)
        if not pos.any():
            return s_pred.sum() * 0
        labels = roi_labels[pos]
        s_pos = _class_deltas(s_pred[pos], labels, self.student.roi_head.bbox_head)
        t_pos = _class_deltas(t_pred[pos], labels, self.teacher.roi_head.bbox_head)
        return self.reg_kd_loss(s_pos, t_pos.detach())


def _roi_losses(cls_score: Tensor, labels: Tensor) -> Tensor:
    """Softmax cross-entropy of each RoI's [C + 1] scores with its label (C = background)."""
    return torch.nn.functional.cross_entropy(cls_score.float(), labels, reduction='none')


def _class_deltas(pred: Tensor, labels: Tensor, bbox_head) -> Tensor:
    """[P, 4] deltas of each RoI's class from class-agnostic [P, 4] or class-specific
    [P, 4 * C] predictions of ``bbox_head``."""
    if bbox_head.reg_class_agnostic:
        return pred
    return pred.view(pred.shape[0], bbox_head.num_classes, -1)[torch.arange(pred.shape[0]), labels]


def _as_list(value):
    if isinstance(value, (list, tuple)):
        return value
    if isinstance(value, Tensor):
        return value.tolist()
    return [value]
