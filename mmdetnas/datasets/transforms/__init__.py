from .formatting import PackClsInputs
from .processing import RandomResizedCrop, ResizeEdge

__all__ = ['PackClsInputs', 'RandomResizedCrop', 'ResizeEdge']
