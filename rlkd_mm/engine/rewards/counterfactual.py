"""The counterfactual reward: every rewarded instance is scored under several actions of the
current policy by the headroom oracle's quiz evaluator, and each action is rewarded against the
others of its instance."""

from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor

from rlkd_mm.agent import AgentStep, tensors_to
from rlkd_mm.engine.quiz import QuizGradient, mean_direction
from rlkd_mm.registry import REWARDS
from rlkd_mm.temperature.oracle import candidate_scores

from .base import BaseReward


@REWARDS.register_module(name='counterfactual')
class CounterfactualReward(BaseReward):
    """``'counterfactual'`` (per instance, full information, **a contextual bandit without
    look-ahead**): for each instance of a rewarded iteration, ``num_samples`` actions of the
    current policy (the taken one among them, the others sampled from the same distribution)
    are scored by the first-order decrease of a quiz loss after a step on that instance alone,
    as the headroom oracle scores its candidates (``OracleTemperature``: the instance's
    task-plus-KD gradient at the student's last layer, taken as the optimizer would take it and
    rescaled to the norm of the reference step, ``a = 1`` on a base policy); all
    ``num_samples + 1`` candidates in one batched pass. Each action's reward is its score minus
    the mean score of the instance's other actions (leave-one-out), so rewards are centred per
    instance; the agent divides them by its one running spread and uses them as advantages
    (no bootstrap, no critic baseline: gamma plays no part). The look-ahead modes
    (``'instance'``, ``'influence'``, ``'batch'``) stay for comparison.

    The quiz split is held out of the training set (``quiz_dataset``; carve it with
    ``tools/analysis/temperature_headroom.py``'s ``--quiz-fraction`` or the run helpers'
    ``split_quiz``), and its gradient is refreshed on the first collected iteration after
    ``refresh_interval`` iterations (all-reduced under DDP). The stored step has
    ``num_samples * N`` rows (sample-major, the taken actions first).

    The distiller keeps ``'candidate_grads'`` (``ClassifierDistiller``,
    ``SingleStageDetDistiller``: an instance is then a positive prior, scored at the head's last
    class conv).

    Args:
        quiz_dataset (dict): config of the quiz dataset (deterministic pipeline).
        num_samples (int): K, actions scored per instance, >= 2. Defaults to 4.
        quiz_batch_size (int): images per quiz gradient. Defaults to 64.
        refresh_interval (int): iterations between quiz gradients. Defaults to 32.
        seed (int): seed of the quiz order. Defaults to 0.
    """

    keeps = ('candidate_grads',)
    advantages = True

    def __init__(
        self,
        quiz_dataset: Optional[dict] = None,
        num_samples: int = 4,
        quiz_batch_size: int = 64,
        refresh_interval: int = 32,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for key, value, low in (
            ('num_samples', num_samples, 2),
            ('refresh_interval', refresh_interval, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f'{key} must be an int >= {low}, got {key}={value!r}')
        self.num_samples, self.refresh_interval = num_samples, refresh_interval
        self.quiz = (
            None if quiz_dataset is None else QuizGradient(quiz_dataset, quiz_batch_size, seed)
        )
        self.direction: Optional[Tuple[Tensor, Tensor]] = None  # (G * P, P^2)
        self.refreshed_at = -1  # iteration of the last quiz gradient
        self.num_refreshes = 0

    def setup(self, runner: Any, model: Any, policy: Any) -> None:
        if self.quiz is None:
            raise ValueError(
                "RLKDHook(reward='counterfactual') needs a quiz split held out of the training "
                "set: reward=dict(type='counterfactual', quiz_dataset=dict(...)) "
                '(tools/analysis/temperature_headroom.py --quiz-fraction carves one)'
            )
        self.quiz.build()

    def before_iter(self, runner: Any, model: Any, collecting: bool) -> None:
        fresh = self.direction is not None and runner.iter - self.refreshed_at < (
            self.refresh_interval
        )
        if not collecting or fresh:
            return
        halves = self.quiz.directions(runner, model, self.num_refreshes)
        self.direction = mean_direction(halves)
        self.refreshed_at, self.num_refreshes = runner.iter, self.num_refreshes + 1

    def measure_step(
        self, model: Any, kept: Optional[Dict[str, Any]], step: Optional[AgentStep], policy: Any
    ) -> Tuple[Optional[AgentStep], Optional[Tensor]]:
        if kept is None or step is None:
            return step, None
        samples = policy.agent.counterfactual_step(step, self.num_samples)
        actions = samples.temperatures.reshape(self.num_samples, step.num)
        with torch.no_grad():
            scores = self.score(model, kept, actions, policy).float()
        others = (scores.sum(dim=0, keepdim=True) - scores) / (self.num_samples - 1)
        return samples, (scores - others).reshape(-1)

    def score(self, model: Any, kept: Dict[str, Any], actions: Tensor, policy: Any) -> Tensor:
        """Scores ``[K, N]`` of the actions ``[K, N]`` (the policy's values: multipliers on a
        base, temperatures without): the quiz-loss decrease of each candidate's step, rescaled
        to the reference action's step norm."""
        num, n = actions.shape
        z = kept['logits']
        reference = actions.new_full((1, n), float(policy.reference_action))
        values = torch.cat([reference, actions]).reshape(-1).to(z.device)

        def outputs(zs: Tensor, zt: Tensor, labels: Tensor):
            return policy.candidate_outputs(zs, zt, labels, values)

        extra = {'task_grads': kept['task_grads']} if 'task_grads' in kept else {}
        grads = model.candidate_logit_grads(
            z, kept['teacher_logits'], kept['labels'], num + 1, outputs, **extra
        )
        s = candidate_scores(
            grads, kept['features'].float(), *self.direction, groups=kept.get('groups')
        )
        norm = s['norm']
        return s['decrease'][1:] * norm[:1] / norm[1:].clamp_min(1e-30)

    def state_dict(self) -> Dict[str, Any]:
        return dict(
            direction=tensors_to(self.direction, 'cpu'),
            refreshed_at=self.refreshed_at,
            num_refreshes=self.num_refreshes,
        )

    def load_state_dict(self, state: Dict[str, Any], device: Any) -> None:
        direction = tensors_to(state.get('direction'), device)
        self.direction = None if direction is None else tuple(direction)
        self.refreshed_at = int(state.get('refreshed_at', -1))
        self.num_refreshes = int(state.get('num_refreshes', 0))
