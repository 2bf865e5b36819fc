"""FullPrecisionCocoMetric's two promises: the very COCOeval statistics,
unrounded, and 0.0 for every AP when nothing is detected anywhere."""
import json

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmdetnas.evaluation import FullPrecisionCocoMetric

GT = {  # image id -> ground-truth boxes (x1, y1, x2, y2)
    1: [(10, 10, 50, 50), (60, 60, 120, 110), (5, 70, 40, 120)],
    2: [(20, 20, 90, 80), (100, 10, 150, 60)],
}
# detections: hits, near misses and false positives at interleaved scores,
# so that the AP is not a round number
DETS = {
    1: [((11, 9, 50, 52), 0.95), ((200, 200, 240, 240), 0.9),
        ((58, 62, 118, 112), 0.7), ((5, 80, 30, 120), 0.4)],
    2: [((22, 18, 88, 82), 0.85), ((0, 0, 20, 20), 0.6),
        ((102, 12, 149, 58), 0.3), ((90, 0, 160, 70), 0.2)],
}


def _write_coco(path):
    images = [dict(id=i, file_name=f'{i}.jpg', width=200, height=200)
              for i in GT]
    anns = []
    for img, boxes in GT.items():
        for x1, y1, x2, y2 in boxes:
            anns.append(dict(id=len(anns) + 1, image_id=img, category_id=1,
                             bbox=[x1, y1, x2 - x1, y2 - y1],
                             area=(x2 - x1) * (y2 - y1), iscrowd=0))
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=anns,
                       categories=[dict(id=1, name='tree')]), f)


def _metric(ann):
    metric = FullPrecisionCocoMetric(ann_file=ann, metric='bbox')
    metric.dataset_meta = dict(classes=('tree', ))
    return metric


def _samples(dets):
    out = []
    for img, found in dets.items():
        boxes = [b for b, _ in found]
        out.append(dict(
            img_id=img, ori_shape=(200, 200),
            pred_instances=dict(
                bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                scores=torch.tensor([s for _, s in found]),
                labels=torch.zeros(len(found), dtype=torch.long))))
    return out


def test_values_are_the_unrounded_cocoeval_stats(tmp_path):
    ann = str(tmp_path / 'ann.json')
    _write_coco(ann)
    metric = _metric(ann)
    metric.process({}, _samples(DETS))
    got = metric.compute_metrics(metric.results)

    # pycocotools directly, on the same detections
    gt = COCO(ann)
    rows = [[img, x1, y1, x2 - x1, y2 - y1, s, 1]
            for img, found in DETS.items()
            for (x1, y1, x2, y2), s in found]
    ev = COCOeval(gt, gt.loadRes(np.array(rows, dtype=np.float64)), 'bbox')
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    for item, idx in (('mAP', 0), ('mAP_50', 1), ('mAP_75', 2)):
        assert abs(got[f'bbox_{item}'] - ev.stats[idx]) < 1e-12, item
    # mmdet's own CocoMetric rounds to 3 decimals; these are not rounded
    assert got['bbox_mAP'] != round(got['bbox_mAP'], 3)
    assert 0.0 < got['bbox_mAP'] < got['bbox_mAP_50'] <= 1.0


def test_nothing_detected_scores_zero(tmp_path):
    ann = str(tmp_path / 'ann.json')
    _write_coco(ann)
    metric = _metric(ann)
    metric.process({}, _samples({img: [] for img in GT}))
    got = metric.compute_metrics(metric.results)
    for item in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l'):
        assert got[f'bbox_{item}'] == 0.0, item
