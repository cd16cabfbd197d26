"""An optimizer constructor that leaves frozen modules (the teacher) out of the optimizer."""

from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from torch import nn

from rlkd_mm.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class DistillerOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` over the trainable children of the model only.

    mmengine's default constructor hands ``model.parameters()`` to the optimizer, frozen ones
    included (they get no gradient, but sit in the param groups and in the optimizer state).
    Here every top-level child whose parameters all have ``requires_grad=False`` (the
    distiller's teacher) is left out; ``paramwise_cfg`` keys keep their full names
    (``student.backbone...``) because the kept children keep their names.

    Unless the config names another wrapper type, the wrapper skips the step of an iteration
    whose total loss is not finite (``NonFiniteSkipOptimWrapper``; ``AmpOptimWrapper`` becomes
    ``NonFiniteSkipAmpOptimWrapper``), with ``max_consecutive_nonfinite`` (default 10) skips in a
    row before training stops.
    """

    _SKIPPING = {
        'OptimWrapper': 'rlkd_mm.NonFiniteSkipOptimWrapper',
        'AmpOptimWrapper': 'rlkd_mm.NonFiniteSkipAmpOptimWrapper',
    }

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg=None) -> None:
        optim_wrapper_cfg = dict(optim_wrapper_cfg)
        wrapper_type = optim_wrapper_cfg.get('type', 'OptimWrapper')
        if isinstance(wrapper_type, str) and wrapper_type in self._SKIPPING:
            optim_wrapper_cfg['type'] = self._SKIPPING[wrapper_type]
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def __call__(self, model: nn.Module) -> OptimWrapper:
        if hasattr(model, 'module'):
            model = model.module
        trainable = nn.Module()
        for name, child in model.named_children():
            params = list(child.parameters())
            if params and not any(p.requires_grad for p in params):
                continue
            trainable.add_module(name, child)
        for name, param in model.named_parameters(recurse=False):
            if param.requires_grad:
                trainable.register_parameter(name, param)
        return super().__call__(trainable)
