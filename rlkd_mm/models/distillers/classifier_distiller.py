"""Distillation of mmpretrain image classifiers with per-instance temperatures."""

import inspect
from typing import Dict, List, Optional

import torch
from torch import Tensor

from rlkd_mm.registry import MODELS

from .base import BaseDistiller, ModelCfg


@MODELS.register_module()
class ClassifierDistiller(BaseDistiller):
    """KD for mmpretrain classifiers (``ImageClassifier`` with a ``ClsHead``-style head).

    Loss = the student head's own loss (its ``loss_module``, so label smoothing and mixup /
    cutmix ``gt_score`` targets keep working) + ``kd_loss`` between student and teacher logits
    with the temperatures chosen by ``temperature`` for every image.

    Args:
        student, teacher, teacher_ckpt, temperature, data_preprocessor, init_cfg: see
            :class:`BaseDistiller`.
        kd_loss (dict): ``InstanceKDLoss`` or ``InstanceDKDLoss`` config (with its
            ``loss_weight``).

    Example:
        >>> model = dict(
        ...     type='rlkd_mm.ClassifierDistiller',
        ...     student='configs/digits/cls_student_cnn.py',
        ...     teacher='configs/digits/cls_teacher_cnn.py',
        ...     teacher_ckpt='work_dirs/cls_teacher/epoch_30.pth',
        ...     temperature=dict(type='rlkd_mm.RLTemperature'),
        ...     kd_loss=dict(type='rlkd_mm.InstanceKDLoss', loss_weight=1.0))
    """

    def __init__(
        self,
        student: ModelCfg,
        teacher: ModelCfg,
        teacher_ckpt: Optional[str] = None,
        temperature: dict = dict(type='rlkd_mm.FixedTemperature', temperature=4.0),
        kd_loss: dict = dict(type='rlkd_mm.InstanceKDLoss', loss_weight=1.0),
        data_preprocessor: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__(
            student=student,
            teacher=teacher,
            teacher_ckpt=teacher_ckpt,
            temperature=temperature,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
        )
        self.kd_loss = MODELS.build(kd_loss)
        self._needs_labels = 'gt_labels' in inspect.signature(self.kd_loss.forward).parameters
        for name, model in (('student', self.student), ('teacher', self.teacher)):
            if getattr(model, 'head', None) is None:
                raise TypeError(f'the {name} ({type(model).__name__}) has no classification head')
        s_classes = getattr(self.student.head, 'num_classes', None)
        t_classes = getattr(self.teacher.head, 'num_classes', None)
        if s_classes is not None and t_classes is not None and s_classes != t_classes:
            raise ValueError(
                f'student and teacher disagree on the number of classes: '
                f'student has {s_classes}, teacher has {t_classes}'
            )

    @staticmethod
    def _hard_labels(data_samples: List) -> Tensor:
        """[N] labels for the policy's state; mixed targets (``gt_score``) give their argmax."""
        if 'gt_score' in data_samples[0]:
            return torch.stack([s.gt_score for s in data_samples]).argmax(dim=1)
        return torch.cat([s.gt_label for s in data_samples])

    def loss(self, inputs: Tensor, data_samples: List) -> Dict[str, Tensor]:
        head = self.student.head
        student_logits = head(self.student.extract_feat(inputs))
        # Reuse the head's own target handling and loss; fall back to a second head forward
        # for heads without the private ``_get_loss`` split.
        if hasattr(head, '_get_loss'):
            losses = head._get_loss(student_logits, data_samples)
        else:
            losses = head.loss(self.student.extract_feat(inputs), data_samples)
        with torch.no_grad():
            teacher_logits = self.teacher(inputs, mode='tensor')

        gt_labels = self._hard_labels(data_samples).to(student_logits.device)
        temperatures, stats = self.choose_temperatures(student_logits, teacher_logits, gt_labels)
        if self._needs_labels:
            loss_kd = self.kd_loss(student_logits, teacher_logits, temperatures, gt_labels)
        else:
            loss_kd = self.kd_loss(student_logits, teacher_logits, temperatures)
        self.record_task_loss(losses)
        losses['loss_kd'] = loss_kd
        losses.update(stats)
        return losses
