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
    """

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
