"""HeadroomHook: the quiz gradient of the headroom oracle (``OracleTemperature``)."""

from typing import Any, List, Optional, Tuple

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import Tensor

from rlkd_mm.agent import tensors_to
from rlkd_mm.engine.quiz import QuizGradient
from rlkd_mm.registry import HOOKS
from rlkd_mm.temperature.oracle import OracleTemperature


@HOOKS.register_module()
class HeadroomHook(Hook):
    """Gives the model's ``OracleTemperature`` the quiz loss's gradient at the last layer.

    Every ``refresh_interval`` iterations (and whenever none is set) the student's task-loss
    gradient w.r.t. its last layer is measured on the next ``quiz_batch_size`` images of the
    quiz split, separately on its two halves, preconditioned as the optimizer would follow it
    (:class:`~rlkd_mm.engine.quiz.QuizGradient`); which batch a refresh takes depends on the
    iteration alone, and the current quiz gradient is saved with checkpoints, so a resumed run
    scores as the uninterrupted one would.

    The quiz split must be held out of the training set (``tools/analysis/
    temperature_headroom.py`` carves it); never the validation or test split.

    After each iteration the oracle's pick statistics (``oracle_gain``, ``oracle_grid_end_share``,
    ``oracle_half_agreement``, ...) are logged.

    Args:
        quiz_dataset (dict): config of the quiz dataset (deterministic pipeline).
        quiz_batch_size (int): images per quiz gradient. Defaults to 256.
        refresh_interval (int): R, iterations between quiz gradients. Defaults to 10.
        seed (int): seed of the quiz order. Defaults to 0.
    """

    priority = 'NORMAL'

    def __init__(
        self,
        quiz_dataset: dict,
        quiz_batch_size: int = 256,
        refresh_interval: int = 10,
        seed: int = 0,
    ) -> None:
        value = refresh_interval
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(
                f'refresh_interval must be an int >= 1, got refresh_interval={value!r}'
            )
        # a quiz batch is split into two halves, so it needs two images (checked there)
        self.quiz = QuizGradient(quiz_dataset, quiz_batch_size, seed)
        self.refresh_interval = refresh_interval
        self._loaded: Optional[List[Tuple[Tensor, Tensor]]] = None

    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def _policy(self, runner) -> OracleTemperature:
        policy = getattr(self._model(runner), 'temperature', None)
        if not isinstance(policy, OracleTemperature):
            raise TypeError(
                'HeadroomHook needs a distiller whose temperature is an OracleTemperature, got '
                f'{type(policy).__name__}'
            )
        return policy

    def before_train(self, runner) -> None:
        self._policy(runner)
        self.quiz.build()
        if self._loaded is not None:
            device = next(self._model(runner).parameters()).device
            self._policy(runner).set_quiz(tensors_to(self._loaded, device))
            self._loaded = None

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        policy = self._policy(runner)
        if policy.quiz is not None and runner.iter % self.refresh_interval != 0:
            return
        refresh = runner.iter // self.refresh_interval
        halves = self.quiz.directions(runner, self._model(runner), refresh)
        policy.set_quiz(halves, refresh=refresh)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        for key, value in self._policy(runner).last_stats.items():
            runner.message_hub.update_scalar(f'train/{key}', value)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        quiz = self._policy(runner).quiz
        if quiz is not None:
            checkpoint['headroom_quiz'] = tensors_to(quiz, 'cpu')

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get('headroom_quiz')
