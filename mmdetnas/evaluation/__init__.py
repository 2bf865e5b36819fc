from .metrics import Accuracy, FullPrecisionCocoMetric

__all__ = ['Accuracy', 'FullPrecisionCocoMetric']
