from .imagenet import IMG_EXTENSIONS, ImageNetDataset
from .transforms import PackClsInputs, RandomResizedCrop, ResizeEdge

__all__ = [
    'IMG_EXTENSIONS', 'ImageNetDataset', 'PackClsInputs', 'RandomResizedCrop',
    'ResizeEdge'
]
