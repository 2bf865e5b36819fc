"""The metric names an evaluator will return, known before it runs.

A search maximises one metric of its ``val_evaluator`` (``score_key``). A
misspelt key (``coco/bbox_mAP50`` for ``coco/bbox_mAP_50``) used to be found
only after the first candidate was scored (on COCO, a whole evaluation), with
a state file left behind. :func:`check_score_key` compares the key with the
names the evaluator's metrics are known to return before any candidate is
scored:

* mmdet's ``CocoMetric`` and :class:`~mmdetnas.evaluation.
  FullPrecisionCocoMetric`: ``{prefix}/{metric}_{item}`` for each ``bbox`` /
  ``segm`` entry of ``metric`` and each item of ``metric_items`` (default
  ``mAP``, ``mAP_50``, ``mAP_75``, ``mAP_s``, ``mAP_m``, ``mAP_l``), with
  ``classwise`` also ``{prefix}/{class}_precision``; ``proposal``: the
  ``AR`` items bare (``{prefix}/AR@100``, ...); ``proposal_fast``:
  ``{prefix}/AR@{n}`` for each of ``proposal_nums``; nothing with
  ``format_only``;
* mmdet's ``VOCMetric``: ``{prefix}/mAP`` and ``{prefix}/AP{50...}`` (one per
  IoU threshold), or ``recall@{n}@{iou}`` (and ``AR@{n}`` with several IoU
  thresholds) for ``metric='recall'``;
* :class:`~mmdetnas.evaluation.Accuracy`: ``{prefix}/top{k}``.

Any other metric type (a subclass with names of its own included) is
unknown: the key is then checked after the first evaluation, as before.
"""
import difflib
from typing import List, Optional

__all__ = ['metric_names', 'evaluator_metric_names', 'check_score_key']

#: CocoMetric's default items of ``bbox`` / ``segm`` and of ``proposal``
COCO_AP_ITEMS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')
COCO_AR_ITEMS = ('AR@100', 'AR@300', 'AR@1000', 'AR_s@1000', 'AR_m@1000',
                 'AR_l@1000')


def _coco_names(metric) -> Optional[List[str]]:
    if getattr(metric, 'format_only', False):
        return []
    items = getattr(metric, 'metric_items', None)
    names: List[str] = []
    for m in metric.metrics:
        if m == 'proposal_fast':
            names += [f'AR@{n}' for n in metric.proposal_nums]
        elif m == 'proposal':
            names += list(items if items is not None else COCO_AR_ITEMS)
        else:  # bbox, segm
            names += [f'{m}_{item}'
                      for item in (items if items is not None
                                   else COCO_AP_ITEMS)]
    if getattr(metric, 'classwise', False):
        meta = getattr(metric, 'dataset_meta', None) or {}
        classes = meta.get('classes')
        if not classes:
            return None  # the class names are not known yet
        names += [f'{c}_precision' for c in classes]
    return names


def _voc_names(metric) -> List[str]:
    thrs = list(metric.iou_thrs)
    if metric.metric == 'mAP':
        return ['mAP'] + [f'AP{int(t * 100):02d}' for t in thrs]
    names = [f'recall@{n}@{t}' for n in metric.proposal_nums for t in thrs]
    if len(thrs) > 1:
        names += [f'AR@{n}' for n in metric.proposal_nums]
    return names


def metric_names(metric) -> Optional[List[str]]:
    """The names (``prefix/`` included) ``metric`` returns, or ``None``
    when its type is not one whose names are known (see the module
    docstring). Exact types only: a subclass may name its results
    otherwise (:class:`~mmdetnas.evaluation.FullPrecisionCocoMetric`
    excepted: it keeps CocoMetric's names)."""
    from mmdet.evaluation.metrics import CocoMetric, VOCMetric

    from mmdetnas.evaluation.metrics import Accuracy, FullPrecisionCocoMetric
    kind = type(metric)
    if kind in (CocoMetric, FullPrecisionCocoMetric):
        names = _coco_names(metric)
    elif kind is VOCMetric:
        names = _voc_names(metric)
    elif kind is Accuracy:
        names = [f'top{k}' for k in metric.topk]
    else:
        return None
    if names is None:
        return None
    prefix = getattr(metric, 'prefix', None)
    return [f'{prefix}/{n}' if prefix else n for n in names]


def evaluator_metric_names(evaluator) -> Optional[List[str]]:
    """The names every metric of ``evaluator`` (an mmengine ``Evaluator``,
    or anything with a ``metrics`` list) returns, or ``None`` when one of
    them is of an unknown type."""
    metrics = getattr(evaluator, 'metrics', None)
    if not metrics:
        return None
    names: List[str] = []
    for metric in metrics:
        got = metric_names(metric)
        if got is None:
            return None
        names += got
    return names


def check_score_key(score_key: str, evaluator,
                    setting: str = 'train_cfg.score_key') -> bool:
    """Refuse a ``score_key`` the evaluator will not return, before it runs.

    Args:
        score_key (str): The metric a search maximises.
        evaluator: The evaluator that scores the candidates (its
            ``metrics`` are read; ``None`` or an object without metrics is
            unknown).
        setting (str): The name of the setting, for the message.

    Returns:
        bool: ``True`` when the key was checked, ``False`` when a metric
        of the evaluator is of an unknown type (or there is no evaluator):
        the caller checks the key after the first evaluation.

    Raises:
        ValueError: the evaluator's names are all known and ``score_key``
            is not one of them; the message names the key, the metric
            types and the expected names (the closest first when the key
            looks misspelt).
    """
    names = evaluator_metric_names(evaluator)
    if names is None:
        return False
    if score_key in names:
        return True
    kinds = [type(m).__name__ for m in evaluator.metrics]
    if not names:
        raise ValueError(
            f'{setting} {score_key!r}: the val_evaluator ({", ".join(kinds)})'
            ' returns no metric (format_only=True?); a search needs one to '
            'maximise')
    close = difflib.get_close_matches(score_key, names, n=1)
    hint = f'; did you mean {close[0]!r}?' if close else ''
    raise ValueError(
        f'{setting} {score_key!r} is not a metric of the val_evaluator '
        f'({", ".join(kinds)}); expected one of {names}{hint}')
