from .checkpoint import mmengine_checkpoint_globals, register_checkpoint_safe_globals
from .config import load_model_config, resolve_config_path
from .fileio import (
    ATOMIC_BACKEND,
    AtomicLocalBackend,
    UnreadableCheckpointError,
    check_checkpoint_readable,
    latest_readable_checkpoint,
)

__all__ = [
    'ATOMIC_BACKEND',
    'AtomicLocalBackend',
    'UnreadableCheckpointError',
    'check_checkpoint_readable',
    'latest_readable_checkpoint',
    'load_model_config',
    'mmengine_checkpoint_globals',
    'register_checkpoint_safe_globals',
    'resolve_config_path',
]
