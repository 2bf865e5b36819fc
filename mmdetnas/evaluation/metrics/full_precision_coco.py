"""mmdet's CocoMetric with the search score kept at full precision.

mmdet's ``CocoMetric`` rounds every AP to 3 decimals; on a small search split
many candidates then tie. This subclass runs the very same evaluation and
replaces the rounded ``{iou_type}_mAP*`` values by the unrounded COCOeval
statistics (pycocotools' ``COCOeval.stats``), nothing else.
"""
from contextlib import contextmanager
from typing import List

import mmdet.evaluation.metrics.coco_metric as coco_metric_module
from mmdet.evaluation.metrics import CocoMetric

from mmdetnas.registry import METRICS

#: index of each mmdet metric item in ``COCOeval.stats``
_STATS_INDEX = {
    'mAP': 0, 'mAP_50': 1, 'mAP_75': 2, 'mAP_s': 3, 'mAP_m': 4, 'mAP_l': 5
}


@contextmanager
def _record_cocoeval(store: List):
    """Make mmdet's coco_metric module build recording COCOeval objects."""
    base = coco_metric_module.COCOeval

    class RecordingCOCOeval(base):

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            store.append(self)

    coco_metric_module.COCOeval = RecordingCOCOeval
    try:
        yield
    finally:
        coco_metric_module.COCOeval = base


@METRICS.register_module()
class FullPrecisionCocoMetric(CocoMetric):
    """:class:`mmdet.evaluation.CocoMetric`, unrounded mAP values.

    Same arguments and keys (``coco/bbox_mAP``, ``coco/bbox_mAP_50``...);
    values are floats in [0, 1] (or -1 when COCO has no such object size).
    Where mmdet returns no metric at all because the model detected nothing
    in the whole dataset (an untrained candidate path), every AP is 0.0, so
    a search can rank that candidate instead of failing.

    Args:
        ann_file (str, optional): COCO annotation file of the evaluated
            split (``None``: converted from the dataset's annotations).
        metric (str | list[str]): ``'bbox'``, ``'segm'``, ``'proposal'``
            and/or ``'proposal_fast'``; only the ``bbox``/``segm`` APs are
            replaced by unrounded values.
        use_mp_eval (bool): Must stay ``False`` (mmdet's multi-process
            evaluation builds no ``COCOeval`` to read unrounded values from).
        **kwargs: The other arguments of
            :class:`mmdet.evaluation.CocoMetric` (``classwise``,
            ``iou_thrs``, ``metric_items``, ``format_only``,
            ``outfile_prefix``, ``backend_args``, ``collect_device``,
            ``prefix``, ...), with the same meaning.

    Raises:
        KeyError: (mmdet, on construction) an unknown ``metric``; (from
            :meth:`compute_metrics`) an unknown item of ``metric_items``.
        RuntimeError: (mmdet, on construction) the deprecated
            ``file_client_args`` is given.
        ValueError: (from :meth:`compute_metrics`) ``use_mp_eval=True``.
    """

    def compute_metrics(self, results: list) -> dict:
        """The metrics of ``results`` with unrounded ``bbox``/``segm`` APs.

        Args:
            results (list): ``(gt, prediction)`` pairs collected by
                :meth:`process` (mmdet's format).

        Returns:
            dict: mmdet's metric names (without the ``coco/`` prefix, added
            by the evaluator) to values; every AP 0.0 when nothing was
            detected in any image.

        Raises:
            ValueError: ``use_mp_eval=True``.
            KeyError: an unknown item of ``metric_items``.
        """
        if self.use_mp_eval:
            raise ValueError('FullPrecisionCocoMetric does not support '
                             'use_mp_eval=True; use mmdet CocoMetric')
        evals: List = []
        with _record_cocoeval(evals):
            eval_results = super().compute_metrics(results)
        if not eval_results and results and not any(
                len(pred['bboxes']) for _, pred in results):
            return {
                f'{metric}_{item}': 0.0
                for metric in self.metrics if metric in ('bbox', 'segm')
                for item in _STATS_INDEX
            }
        for ev in evals:
            iou_type = ev.params.iouType
            if getattr(ev, 'stats', None) is None or not len(ev.stats):
                continue
            for item, idx in _STATS_INDEX.items():
                key = f'{iou_type}_{item}'
                if key in eval_results:
                    eval_results[key] = float(ev.stats[idx])
        return eval_results
