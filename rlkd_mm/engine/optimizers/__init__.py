from .distiller_constructor import DistillerOptimWrapperConstructor

__all__ = ['DistillerOptimWrapperConstructor']
