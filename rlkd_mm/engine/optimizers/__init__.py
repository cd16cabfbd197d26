from .distiller_constructor import DistillerOptimWrapperConstructor
from .nonfinite_skip import (
    NonFiniteSkipAmpOptimWrapper,
    NonFiniteSkipMixin,
    NonFiniteSkipOptimWrapper,
)

__all__ = [
    'DistillerOptimWrapperConstructor',
    'NonFiniteSkipAmpOptimWrapper',
    'NonFiniteSkipMixin',
    'NonFiniteSkipOptimWrapper',
]
