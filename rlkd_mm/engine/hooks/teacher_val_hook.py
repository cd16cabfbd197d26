"""TeacherValHook: the teacher's validation metric, once, beside the student's."""

import logging

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from rlkd_mm.registry import HOOKS

from .random_state_hook import capture_random_state, restore_random_state


@HOOKS.register_module()
class TeacherValHook(Hook):
    """Evaluate the distiller's teacher once on the validation set before training starts.

    The teacher runs through the run's own validation dataloader, data preprocessor and evaluator
    (top-1, COCO mAP, ...); its metrics are logged as ``teacher/<metric>`` (message hub scalars,
    so every visualisation backend records them) and printed, so a wrong or mismatched teacher
    checkpoint shows up before hours of distillation. Skipped (with a log line) when the run has
    no validation loop, and after a resume (the metric was logged by the first start). Under DDP
    every rank takes part, as in validation. The random streams are restored afterwards, so
    adding the hook leaves the training run unchanged.

    Usage: ``custom_hooks = [..., dict(type='rlkd_mm.TeacherValHook')]``.
    """

    priority = 'LOW'

    def __init__(self) -> None:
        self.metrics = None

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'predicting_with_teacher'):
            raise TypeError(
                f'TeacherValHook needs a distiller (with a teacher), got {type(model).__name__}'
            )
        if runner.val_loop is None:
            print_log(
                'TeacherValHook: no validation loop; the teacher is not evaluated',
                logger='current',
                level=logging.WARNING,
            )
            return
        if runner.iter > 0:
            return
        loop = runner.val_loop
        was_training = runner.model.training
        # neutral to the random streams: adding this hook does not change the training run
        streams = capture_random_state()
        runner.model.eval()
        with model.predicting_with_teacher(), torch.no_grad():
            for data_batch in loop.dataloader:
                outputs = runner.model.val_step(data_batch)
                loop.evaluator.process(data_samples=outputs, data_batch=data_batch)
            metrics = loop.evaluator.evaluate(len(loop.dataloader.dataset))
        runner.model.train(was_training)
        restore_random_state(streams)
        self.metrics = {f'teacher/{k}': v for k, v in metrics.items()}
        for key, value in self.metrics.items():
            if isinstance(value, (int, float)):
                runner.message_hub.update_scalar(f'val/{key}', value)
        shown = ', '.join(
            f'{k}: {v:.4f}' if isinstance(v, float) else f'{k}: {v}'
            for k, v in self.metrics.items()
        )
        print_log(f'TeacherValHook: {shown}', logger='current')
