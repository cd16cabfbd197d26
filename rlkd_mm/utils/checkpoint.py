"""Let ``torch.load``'s ``weights_only=True`` default read the checkpoints mmengine writes.

torch >= 2.6 refuses to unpickle anything but tensors and plain containers unless allowed, and
mmengine 0.10.7 calls ``torch.load`` without ``weights_only``: the message hub in every checkpoint
of ``CheckpointHook`` then breaks ``--resume`` and ``tools/test.py``. We allow exactly what those
checkpoints contain instead of turning ``weights_only`` off:

- ``HistoryBuffer`` (the message hub's scalar logs) and the numpy pieces of its arrays/scalars;
- ``builtins.getattr``, which pickle uses to refer to ``HistoryBuffer.min`` / ``max`` /
  ``current`` / ``mean`` (kept in the buffers' ``_statistics_methods``). It is *not* allowed as
  the real ``getattr``: the name is mapped to :func:`history_buffer_getattr`, which resolves only
  those four methods and rejects everything else.
"""

import pickle

import torch

HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def history_buffer_getattr(obj, name: str):
    """``getattr`` restricted to the statistics methods of mmengine's ``HistoryBuffer``."""
    from mmengine.logging.history_buffer import HistoryBuffer

    if obj is HistoryBuffer and name in HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({obj!r}, {name!r}) while loading a checkpoint: only '
        f'HistoryBuffer.{{{",".join(HISTORY_BUFFER_METHODS)}}} are allowed'
    )


def _numpy_globals() -> list:
    import numpy as np

    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    dtype_classes = [
        type(np.dtype(name))
        for name in (
            'bool',
            'int8',
            'int16',
            'int32',
            'int64',
            'uint8',
            'uint16',
            'uint32',
            'uint64',
            'float16',
            'float32',
            'float64',
        )
    ]
    globals_ = [_reconstruct, scalar, np.ndarray, np.dtype, *dtype_classes]
    # checkpoints written under numpy 1.x name the module numpy.core
    globals_ += [
        (_reconstruct, 'numpy.core.multiarray._reconstruct'),
        (scalar, 'numpy.core.multiarray.scalar'),
    ]
    return globals_


def mmengine_checkpoint_globals() -> list:
    """The non-tensor globals found in checkpoints of mmengine's ``CheckpointHook``."""
    import codecs

    from mmengine.logging.history_buffer import HistoryBuffer

    return [
        HistoryBuffer,
        codecs.encode,  # numpy arrays pickle their bytes through it
        (history_buffer_getattr, 'builtins.getattr'),
        (history_buffer_getattr, '__builtin__.getattr'),
        *_numpy_globals(),
    ]


def register_checkpoint_safe_globals() -> None:
    """Allowlist the globals of mmengine checkpoints for ``torch.load(weights_only=True)``."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:  # torch < 2.4 has no weights_only default to satisfy
        add(mmengine_checkpoint_globals())
