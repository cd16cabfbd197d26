"""Distillation of mmpretrain image classifiers with per-instance temperatures."""

from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from rlkd_mm.registry import MODELS
from rlkd_mm.temperature import TemperatureOutput

from .base import BaseDistiller, ModelCfg, detach_weights, student_untouched


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
        if getattr(self.temperature, 'needs_features', False):
            # plain attribute: the policy must not hold the distiller as a submodule
            object.__setattr__(self.temperature, 'logit_grads_fn', self.candidate_logit_grads)

    reward_items = ('task_loss', 'instance_losses', 'logit_grads', 'candidate_grads')

    @staticmethod
    def _hard_labels(data_samples: List) -> Tensor:
        """[N] labels for the policy's state; mixed targets (``gt_score``) give their argmax."""
        if 'gt_score' in data_samples[0]:
            return torch.stack([s.gt_score for s in data_samples]).argmax(dim=1)
        return torch.cat([s.gt_label for s in data_samples])

    @staticmethod
    def _targets(data_samples: List) -> Tensor:
        """The targets the head's loss takes: ``gt_score`` [N, C] if present, else labels."""
        if 'gt_score' in data_samples[0]:
            return torch.stack([s.gt_score for s in data_samples])
        return torch.cat([s.gt_label for s in data_samples])

    def _per_image_loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        """The student head's own loss per image ``[N]`` (its ``loss_module``, unreduced)."""
        head = self.student.head
        loss = head.loss_module(logits, targets.to(logits.device), reduction_override='none')
        if loss.dim() > 1:
            loss = loss.sum(dim=tuple(range(1, loss.dim())))
        if loss.shape != (logits.size(0),):
            raise RuntimeError(
                f'the student head loss {type(head.loss_module).__name__} did not return one '
                f'value per image with reduction_override="none": got {tuple(loss.shape)}'
            )
        return loss.float()

    def _logits(self, inputs: Tensor, with_features: bool) -> Tuple[Tensor, Optional[Tensor]]:
        """Student logits ``[N, C]`` and, if asked, the inputs of its last linear layer."""
        head = self.student.head
        feats = self.student.extract_feat(inputs)
        if not with_features:
            return head(feats), None
        fc = getattr(head, 'fc', None)
        if not (isinstance(fc, nn.Linear) and hasattr(head, 'pre_logits')):
            raise TypeError(
                'last-layer features need a head whose logits are fc(pre_logits(feats)) with a '
                f'linear fc (e.g. LinearClsHead), got {type(head).__name__}'
            )
        features = head.pre_logits(feats)
        return fc(features), features

    def loss(self, inputs: Tensor, data_samples: List) -> Dict[str, Tensor]:
        head = self.student.head
        keep = self.keeps()
        needs_features = self.training and getattr(self.temperature, 'needs_features', False)
        with_features = needs_features or any(k in keep for k in ('logit_grads', 'candidate_grads'))
        student_logits, features = self._logits(inputs, with_features)
        if needs_features:
            self.temperature.features = features
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
        loss_kd = self.policy_kd_loss(
            self.kd_loss, student_logits, teacher_logits, temperatures, gt_labels=gt_labels
        )
        self.keep_task_loss(losses)
        losses['loss_kd'] = loss_kd
        self.apply_kd_warmup(losses)
        if self.keeps_instances():
            self._keep_instances(keep, inputs, data_samples, student_logits, features, losses)
            if 'candidate_grads' in keep:
                self.keep_for_reward(
                    logits=student_logits,
                    teacher_logits=teacher_logits,
                    labels=gt_labels,
                    features=features,
                )
        losses.update(stats)
        return losses

    def candidate_logit_grads(
        self,
        student_logits: Tensor,
        teacher_logits: Tensor,
        gt_labels: Tensor,
        num_candidates: int,
        policy_fn: Callable[[Tensor, Tensor, Tensor], TemperatureOutput],
    ) -> Tensor:
        """Each instance's gradient of its trained objective w.r.t. its own logits under K
        candidate policies: ``[K, N, C]``.

        The instances are repeated K times (candidate-major) and ``policy_fn(z[K*N, C],
        t[K*N, C], labels[K*N])`` gives candidate ``k``'s output for the ``k``-th copy, so a
        temperature that depends on the student logits (logit standardisation, DTKD) keeps
        that gradient. The objective of an instance is its task loss (the head's loss module
        on the label) plus its KD loss (the distiller's ``kd_loss`` with its weight and the KD
        warm-up factor), at the current logits; the common ``1 / N`` of the batch mean is left
        out. One batched backward for all K candidates.
        """
        n, c = student_logits.shape
        labels = gt_labels.repeat(num_candidates)
        with torch.enable_grad():
            z = student_logits.detach().float().repeat(num_candidates, 1).requires_grad_(True)
            t = teacher_logits.detach().float().repeat(num_candidates, 1)
            task = self._per_image_loss(z, labels).sum()
            kd = self.policy_kd_loss(
                self.kd_loss,
                z,
                t,
                detach_weights(policy_fn(z, t, labels)),
                gt_labels=labels,
                reduction_override='sum',
            )
            (grads,) = torch.autograd.grad(task + self.kd_warmup_factor * kd, z)
        return grads.reshape(num_candidates, n, c)

    def last_layer(self) -> Tuple[Tensor, Tensor]:
        """The weight ``[C, D]`` and bias ``[C]`` of the layer that makes the class logits."""
        fc = getattr(self.student.head, 'fc', None)
        if not isinstance(fc, nn.Linear) or fc.bias is None:
            raise TypeError(
                'the student head needs a linear fc with a bias (e.g. LinearClsHead), got '
                f'{type(self.student.head).__name__}'
            )
        return fc.weight, fc.bias

    @torch.no_grad()
    def quiz_gradients(self, inputs: Tensor, data_samples: List) -> Tuple[Tensor, Tensor]:
        """Last-layer inputs ``[M, D]`` and task-loss gradients w.r.t. the logits ``[M, C]``
        (of the mean loss) of the student on a batch, in training mode, its buffers and the
        random streams left as they were."""
        cache = dict(inputs=inputs, targets=self._targets(data_samples))
        with student_untouched(self.student):
            features, grads, _ = self._probe_gradients(cache)
        return features, grads

    def _keep_instances(
        self,
        keep: Tuple[str, ...],
        inputs: Tensor,
        data_samples: List,
        logits: Tensor,
        features: Optional[Tensor],
        losses: Dict[str, Tensor],
    ) -> None:
        """Keep the images and targets, and what ``keep`` asks per image."""
        targets = self._targets(data_samples)
        kept: Dict[str, Any] = dict(inputs=inputs, targets=targets)
        if 'instance_losses' in keep:
            kept['losses'] = self._per_image_loss(logits.detach(), targets)
        if 'logit_grads' in keep:
            # Each image's gradient of everything it is trained with (task + KD) w.r.t. its
            # logits: a small backward through the loss terms only.
            kept.update(features=features, grads=self._logit_grads(losses, logits))
        self.keep_for_reward(**kept)

    def _instance_losses(self, cache: Dict[str, Any]) -> Tensor:
        logits, _ = self._logits(cache['inputs'], with_features=False)
        return self._per_image_loss(logits, cache['targets'])

    def _probe_gradients(self, cache: Dict[str, Any]) -> Tuple[Tensor, Tensor, None]:
        logits, features = self._logits(cache['inputs'], with_features=True)
        with torch.enable_grad():
            logits = logits.detach().float().requires_grad_(True)
            mean_loss = self._per_image_loss(logits, cache['targets']).mean()
            (grads,) = torch.autograd.grad(mean_loss, logits)
        return features, grads, None
