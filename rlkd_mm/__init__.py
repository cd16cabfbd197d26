"""rlkd_mm: instance-temperature knowledge distillation (RLKD) for mmdet and mmpretrain.

Importing the package registers its modules in the ``rlkd_mm`` registry scope and allows the
globals of mmengine checkpoints for ``torch.load``'s ``weights_only`` default. mmdet and
mmpretrain are optional: only the distillers that need them import them.
"""

from .utils import register_checkpoint_safe_globals
from .version import __version__

register_checkpoint_safe_globals()

from . import agent, datasets, engine, models, temperature  # noqa: E402,F401

__all__ = ['__version__']
