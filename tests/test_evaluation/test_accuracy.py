"""Tests of mmdetnas.evaluation.Accuracy."""
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.registry import DefaultScope
from mmengine.structures import BaseDataElement

from mmdetnas.evaluation import Accuracy

# 4 samples, 6 classes; class order by score (high -> low) per row:
#   row 0: 0 1 2 3 4 5, label 0 -> rank 1
#   row 1: 5 4 3 2 1 0, label 3 -> rank 3
#   row 2: 2 0 1 3 4 5, label 5 -> rank 6 (missed by top-5)
#   row 3: 1 2 3 4 5 0, label 1 -> rank 1
SCORES = torch.tensor([
    [.50, .20, .10, .08, .07, .05],
    [.05, .07, .08, .10, .20, .50],
    [.30, .25, .35, .05, .03, .02],
    [.01, .40, .30, .15, .10, .04],
])
LABELS = [0, 3, 5, 1]


def _samples(as_dict=False):
    out = []
    for s, y in zip(SCORES, LABELS):
        ds = BaseDataElement(
            pred_score=s,
            gt_label=torch.tensor([y]),
            pred_label=s.argmax().reshape(1))
        out.append(ds.to_dict() if as_dict else ds)
    return out


@pytest.mark.parametrize('as_dict', [False, True])
def test_hand_computed(as_dict):
    metric = Accuracy(topk=(1, 2, 3, 5))
    metric.process(None, _samples(as_dict))
    res = metric.compute_metrics(metric.results)
    # top1: rows 0, 3; top2: same; top3: + row 1; top5: row 2 still missed
    assert res == {'top1': 50.0, 'top2': 50.0, 'top3': 75.0, 'top5': 75.0}


def test_full_precision_and_prefix_via_evaluator():
    # 'mmdetnas.X' names resolve from mmdet's scope (mmdetnas registries are
    # children of mmdet's), as in a Runner with default_scope='mmdet'
    with DefaultScope.overwrite_default_scope('mmdet'):
        evaluator = Evaluator(dict(type='mmdetnas.Accuracy', topk=(1, 6)))
    evaluator.process(data_samples=_samples()[:3])
    res = evaluator.evaluate(3)
    assert set(res) == {'accuracy/top1', 'accuracy/top6'}
    assert res['accuracy/top1'] == 100.0 / 3  # not rounded
    assert res['accuracy/top6'] == 100.0


def test_int_label_and_int_topk():
    metric = Accuracy(topk=1, prefix='acc')
    metric.process(None, [
        dict(pred_score=[0.1, 0.9], gt_label=1),
        dict(pred_score=[0.6, 0.4], gt_label=1)
    ])
    assert metric.compute_metrics(metric.results) == {'top1': 50.0}
    assert metric.prefix == 'acc'


def test_errors():
    metric = Accuracy(topk=(1, 7))  # 7 > 6 classes
    metric.process(None, _samples())
    with pytest.raises(ValueError, match='larger than the number of classes'):
        metric.compute_metrics(metric.results)
    with pytest.raises(ValueError, match='positive'):
        Accuracy(topk=(0, 1))
    with pytest.raises(KeyError, match='pred_score'):
        Accuracy().process(None, [dict(gt_label=1)])
    with pytest.raises(ValueError, match='no sample'):
        Accuracy().compute_metrics([])
    metric = Accuracy(topk=1)
    metric.process(None, [
        dict(pred_score=[0.1, 0.9], gt_label=1),
        dict(pred_score=[0.1, 0.2, 0.7], gt_label=1)
    ])
    with pytest.raises(ValueError, match='different lengths'):
        metric.compute_metrics(metric.results)
