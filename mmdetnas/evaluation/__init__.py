from .metric_names import (check_score_key, evaluator_metric_names,
                           metric_names)
from .metrics import Accuracy, FullPrecisionCocoMetric

__all__ = [
    'Accuracy', 'FullPrecisionCocoMetric', 'check_score_key',
    'evaluator_metric_names', 'metric_names'
]
