"""A stand-in for mmengine's Runner and a driver of hooks, for tests of ``RLKDHook``."""

import uuid
from typing import Any, Callable, Dict, Iterable, Optional

from mmengine.logging import MessageHub


class FakeRunner:
    """What ``RLKDHook`` reads from mmengine's Runner: ``model``, ``iter``, ``max_iters`` and
    a ``message_hub`` of its own. Without an ``optim_wrapper`` attribute the optimizer is
    taken to step at every iteration (set one with ``should_update()`` to say otherwise).

    Args:
        model: the model (or its DDP wrapper).
        max_iters (int): the run's length (the policy's progress is ``iter / max_iters``).
        name (str, optional): the message hub's name; a fresh one by default.
    """

    def __init__(self, model: Any, max_iters: int, name: Optional[str] = None) -> None:
        self.model = model
        self.iter = 0
        self.max_iters = max_iters
        self.message_hub = MessageHub.get_instance(name or f'fake_runner_{uuid.uuid4().hex}')


def drive_hook(
    hook: Any,
    runner: FakeRunner,
    iterations: Iterable[int],
    step: Callable[[int], Any],
    before_train: bool = False,
) -> Dict[int, Any]:
    """Call ``hook`` as mmengine's train loop does over ``iterations``: ``before_train_iter``,
    ``step(i)`` (the forward, and the backward and optimizer step if any), ``after_train_iter``.

    Args:
        hook: the hook.
        runner (FakeRunner): its runner (``runner.iter`` is set to each iteration).
        iterations (Iterable[int]): the iterations, e.g. ``range(start, stop)``.
        step (Callable[[int], Any]): one training iteration.
        before_train (bool): call ``hook.before_train`` first. Defaults to False.

    Returns:
        dict: ``{iteration: what step returned}``.
    """
    if before_train:
        hook.before_train(runner)
    out = {}
    for i in iterations:
        runner.iter = i
        hook.before_train_iter(runner, i)
        out[i] = step(i)
        hook.after_train_iter(runner, i)
    return out
