from .accuracy import Accuracy
from .full_precision_coco import FullPrecisionCocoMetric

__all__ = ['Accuracy', 'FullPrecisionCocoMetric']
