"""The metric names known before an evaluation (the search's early
score_key check) are the names the evaluation then returns: each case runs
the real metric through mmengine's Evaluator on a tiny data set and compares
the keys with :func:`metric_names`."""
import json

import pytest
import torch
from mmdet.evaluation.metrics import CocoMetric, VOCMetric
from mmengine.evaluator import BaseMetric, Evaluator

from mmdetnas.evaluation import (Accuracy, FullPrecisionCocoMetric,
                                 check_score_key, evaluator_metric_names,
                                 metric_names)
from tests.e2e_utils import make_tiny_coco

CLASSES = ('square', )


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    paths = make_tiny_coco(str(tmp_path_factory.mktemp('names') / 'coco'))
    with open(paths['val']) as f:
        data = json.load(f)
    # one box an image (mmdet's recall needs as many in each image)
    first = {}
    for a in data['annotations']:
        first.setdefault(a['image_id'], a)
    data['annotations'] = list(first.values())
    ann = paths['val'][:-len('.json')] + '_one.json'
    with open(ann, 'w') as f:
        json.dump(data, f)
    samples = []
    for im in data['images']:
        boxes = [first[im['id']]['bbox']]
        xyxy = torch.tensor([[x + 1, y, x + w, y + h - 2]
                             for x, y, w, h in boxes], dtype=torch.float32)
        n = len(boxes)
        samples.append(dict(
            img_id=im['id'], ori_shape=(im['height'], im['width']),
            pred_instances=dict(bboxes=xyxy, scores=torch.full((n, ), 0.9),
                                labels=torch.zeros(n, dtype=torch.long)),
            gt_instances=dict(bboxes=xyxy.clone(),
                              labels=torch.zeros(n, dtype=torch.long)),
            ignored_instances=dict(bboxes=torch.zeros(0, 4),
                                   labels=torch.zeros(0,
                                                      dtype=torch.long))))
    return ann, samples


def evaluate(metric, samples):
    evaluator = Evaluator([metric])
    evaluator.dataset_meta = dict(classes=CLASSES)
    evaluator.process(samples)
    return evaluator.evaluate(len(samples)), evaluator


@pytest.mark.parametrize('make', [
    lambda ann: CocoMetric(ann_file=ann),
    lambda ann: FullPrecisionCocoMetric(ann_file=ann, prefix='det'),
    lambda ann: CocoMetric(ann_file=ann, metric=['bbox', 'proposal_fast'],
                           proposal_nums=(5, 10, 100)),
    lambda ann: CocoMetric(ann_file=ann, metric='proposal'),
    lambda ann: CocoMetric(ann_file=ann, metric_items=['mAP', 'mAP_50'],
                           classwise=True),
    lambda ann: VOCMetric(iou_thrs=[0.5, 0.75]),
    lambda ann: VOCMetric(metric='recall', iou_thrs=[0.5, 0.7],
                          proposal_nums=(5, 10)),
    lambda ann: VOCMetric(metric='recall', proposal_nums=(5, )),
])
def test_known_names_are_the_evaluated_names(coco, make, tmp_path):
    ann, samples = coco
    metric = make(ann)
    if isinstance(metric, CocoMetric):
        metric.outfile_prefix = None
    got, evaluator = evaluate(metric, samples)
    assert sorted(metric_names(metric)) == sorted(got)
    assert sorted(evaluator_metric_names(evaluator)) == sorted(got)
    for key in got:
        assert check_score_key(key, evaluator) is True


def test_accuracy_names():
    metric = Accuracy(topk=(1, 2))
    evaluator = Evaluator([metric])
    evaluator.process([dict(pred_score=torch.tensor([0.1, 0.7, 0.2]),
                            gt_label=1)] * 2)
    got = evaluator.evaluate(2)
    assert sorted(metric_names(metric)) == sorted(got) == [
        'accuracy/top1', 'accuracy/top2']


def test_a_misspelt_key_is_refused_naming_it_and_the_expected_ones(coco):
    ann, _ = coco
    evaluator = Evaluator([CocoMetric(ann_file=ann)])
    with pytest.raises(ValueError) as e:
        check_score_key('coco/bbox_mAP50', evaluator)
    msg = str(e.value)
    assert "train_cfg.score_key 'coco/bbox_mAP50'" in msg
    assert 'CocoMetric' in msg and "'coco/bbox_mAP_75'" in msg
    assert "did you mean 'coco/bbox_mAP_50'" in msg
    # a VOC key given to a COCO evaluator
    with pytest.raises(ValueError, match="'pascal_voc/mAP' is not a metric"):
        check_score_key('pascal_voc/mAP', evaluator)
    # format_only: no metric at all to maximise
    fmt = Evaluator([CocoMetric(ann_file=ann, format_only=True,
                                outfile_prefix='x')])
    with pytest.raises(ValueError, match='returns no metric'):
        check_score_key('coco/bbox_mAP', fmt)


class OwnMetric(BaseMetric):

    def process(self, data_batch, data_samples):
        pass

    def compute_metrics(self, results):
        return {'whatever': 1.0}


class CocoLike(CocoMetric):
    """A subclass may name its results otherwise (LVISMetric does)."""


def test_unknown_metric_types_are_left_to_the_first_evaluation(coco):
    ann, _ = coco
    for metric in (OwnMetric(), CocoLike(ann_file=ann)):
        assert metric_names(metric) is None
        evaluator = Evaluator([CocoMetric(ann_file=ann), metric])
        assert evaluator_metric_names(evaluator) is None
        assert check_score_key('anything', evaluator) is False
    assert check_score_key('coco/bbox_mAP', None) is False
    # classwise names need the classes: unknown before the dataset is set
    assert metric_names(CocoMetric(ann_file=ann, classwise=True)) is None
