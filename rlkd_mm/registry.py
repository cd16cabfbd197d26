"""Registries of rlkd_mm, children of mmengine's root registries.

Configs keep their downstream ``default_scope`` ('mmdet' or 'mmpretrain') and reach modules of this
package as ``rlkd_mm.Name`` or with ``_scope_='rlkd_mm'``. ``locations`` lets the registry import
the modules lazily the first time a name is looked up.
"""

from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

MODELS = Registry(
    'model',
    parent=MMENGINE_MODELS,
    scope='rlkd_mm',
    locations=['rlkd_mm.models', 'rlkd_mm.temperature'],
)
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='rlkd_mm', locations=['rlkd_mm.engine'])
DATASETS = Registry(
    'dataset', parent=MMENGINE_DATASETS, scope='rlkd_mm', locations=['rlkd_mm.datasets']
)
TRANSFORMS = Registry(
    'transform', parent=MMENGINE_TRANSFORMS, scope='rlkd_mm', locations=['rlkd_mm.datasets']
)
# No metric of our own: the downstream packages' metrics (top-1, COCO mAP) are used as they are.
METRICS = Registry('metric', parent=MMENGINE_METRICS, scope='rlkd_mm', locations=[])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    scope='rlkd_mm',
    locations=['rlkd_mm.engine'],
)
OPTIM_WRAPPERS = Registry(
    'optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, scope='rlkd_mm', locations=['rlkd_mm.engine']
)
# Reward modes of RLKDHook (``RLKDHook(reward=name)``): one unit per mode, see
# ``rlkd_mm.engine.rewards``. Not a model or hook, so no mmengine parent.
REWARDS = Registry('reward', scope='rlkd_mm', locations=['rlkd_mm.engine.rewards'])
