from .checkpoint import mmengine_checkpoint_globals, register_checkpoint_safe_globals
from .config import load_model_config, resolve_config_path

__all__ = [
    'load_model_config',
    'mmengine_checkpoint_globals',
    'register_checkpoint_safe_globals',
    'resolve_config_path',
]
