"""RandomStateHook: the random streams of training are saved and restored with checkpoints."""

import logging
import random
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop

from rlkd_mm.registry import HOOKS


def capture_random_state() -> Dict[str, Any]:
    """This process's python ``random``, numpy and torch (CPU and every CUDA device) streams,
    as tensors and plain types (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = dict(
        python=random.getstate(),
        numpy=dict(
            kind=kind,
            keys=torch.from_numpy(keys.astype(np.int64)),
            pos=int(pos),
            has_gauss=int(has_gauss),
            gauss=float(gauss),
        ),
        torch=torch.get_rng_state(),
    )
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_random_state(state: Dict[str, Any]) -> None:
    """Set the streams :func:`capture_random_state` returned."""
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    np_state = state['numpy']
    np.random.set_state(
        (
            np_state['kind'],
            np_state['keys'].numpy().astype(np.uint32),
            np_state['pos'],
            np_state['has_gauss'],
            np_state['gauss'],
        )
    )
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def iter_checkpoint_due(runner) -> bool:
    """Whether a checkpoint will be saved after this training iteration of an iteration-based
    loop (every iteration if no ``CheckpointHook`` can be found). Epoch-based loops save (and
    resume exactly) at epoch ends only: False there.

    Checkpoints are saved by rank 0 alone (``before_save_checkpoint`` runs there only), so a
    hook that saves per-rank state gathers it beforehand, where every rank passes: after each
    training epoch, and after the iterations for which this returns True.
    """
    if isinstance(getattr(runner, 'train_loop', None), EpochBasedTrainLoop):
        return False
    hooks = [h for h in getattr(runner, 'hooks', []) if isinstance(h, CheckpointHook)]
    if not hooks:
        return True
    return any(
        not h.by_epoch
        and (
            h.every_n_train_iters(runner, h.interval, h.save_begin)
            or (h.save_last and h.is_last_train_iter(runner))
        )
        for h in hooks
    )


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Makes a resumed run draw the random numbers an uninterrupted run would.

    mmengine seeds the streams once at start-up and does not save them: data augmentation in
    the main process (``num_workers=0``), dropout and the sampling of RoIs then differ after a
    resume. This hook saves python ``random``, numpy and torch (CPU and CUDA) streams with every
    checkpoint (``checkpoint['random_states']``, one entry per rank: under DDP all ranks' streams
    are gathered, rank 0 writes them) and restores each rank's own on resume, right before
    training continues. Validation during training is made neutral to the streams (they are
    captured before and restored after it), so the state saved at the end of an epoch is the one
    the next epoch starts from, whether or not the run was interrupted in between.

    Dataloader workers are seeded by mmengine when they start (from the seed, the rank and the
    worker id) and are not in the checkpoint: a resume is exact for ``num_workers=0`` or workers
    that are not persistent (``persistent_workers=False`` starts them afresh every epoch), and
    for epoch-based loops. An iteration-based loop re-reads the skipped batches on resume, which
    draws augmentations again in the main process.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._loaded: Optional[List[Dict[str, Any]]] = None
        self._before_val: Optional[Dict[str, Any]] = None
        self._gathered: Optional[List[Dict[str, Any]]] = None

    # Under DDP the ranks' streams are gathered where a checkpoint follows (see
    # ``iter_checkpoint_due``); this hook runs before ``CheckpointHook`` ('VERY_LOW').
    def _gather(self) -> None:
        if get_world_size() > 1:
            self._gathered = all_gather_object(capture_random_state())

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if get_world_size() > 1 and iter_checkpoint_due(runner):
            self._gather()

    def after_train_epoch(self, runner) -> None:
        self._gather()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if get_world_size() > 1 and self._gathered is not None:
            checkpoint['random_states'] = self._gathered
        else:
            checkpoint['random_states'] = [capture_random_state()]

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', True):
            return  # load_from without resume: a new run keeps its own seed
        states = checkpoint.get('random_states')
        if not states:
            print_log(
                'RandomStateHook: the checkpoint holds no random states; the resumed run '
                'draws different random numbers than an uninterrupted one would',
                logger='current',
                level=logging.WARNING,
            )
            return
        if len(states) != get_world_size():
            print_log(
                f'RandomStateHook: the checkpoint holds the random states of {len(states)} '
                f'ranks, this run has {get_world_size()}; each rank takes '
                'states[rank % saved ranks]',
                logger='current',
                level=logging.WARNING,
            )
        self._loaded = states

    def before_train(self, runner) -> None:
        # After load_or_resume (which may reseed), before the first batch is drawn.
        if self._loaded is not None:
            restore_random_state(self._loaded[get_rank() % len(self._loaded)])
            self._loaded = None

    def before_val_epoch(self, runner) -> None:
        self._before_val = capture_random_state()

    def after_val_epoch(self, runner, metrics=None) -> None:
        if self._before_val is not None:
            restore_random_state(self._before_val)
            self._before_val = None
