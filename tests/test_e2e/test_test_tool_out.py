"""``tools/test.py CONFIG CKPT --out results.pkl`` on tiny data: the pickle
holds the detector's predictions for every test image, the very ones the
model gives when run here, and the metrics are still computed."""
import os.path as osp
import pickle

import pytest
import torch
from mmengine.config import Config

from mmdetnas.apis.tool_setup import parse_cfg_options
from mmdetnas.utils.setup_env import register_all_modules
from tests.e2e_utils import (ROOT, coco_options, make_tiny_coco,
                             run_tool)

SUBNET = (
    'configs/quickstart/'
    'detnas_subnet_faster-rcnn_shufflenetv2-300m_fpn_quick_neon-trees.py')

pytestmark = pytest.mark.slow


def _cfg(coco):
    """The config tools/test.py builds with the same --cfg-options."""
    cfg = Config.fromfile(osp.join(ROOT, SUBNET))
    cfg.merge_from_dict(parse_cfg_options(coco_options(coco)))
    cfg.model.backbone.init_cfg = None
    return cfg


def _predictions(cfg, state_dict):
    """img_id -> (bboxes, scores, labels), running the model here."""
    from mmdet.registry import MODELS
    from mmengine.runner import Runner
    model = MODELS.build(cfg.model)
    model.load_state_dict(state_dict)
    model.eval()
    out = {}
    with torch.no_grad():
        for batch in Runner.build_dataloader(cfg.test_dataloader):
            for s in model.test_step(batch):
                p = s.pred_instances
                out[s.img_id] = (p.bboxes, p.scores, p.labels)
    return out


def test_out_dumps_the_predictions(tmp_path):
    register_all_modules()
    coco = make_tiny_coco(str(tmp_path / 'coco'))
    cfg = _cfg(coco)
    from mmdet.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    ckpt = tmp_path / 'subnet.pth'
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)

    pkl = tmp_path / 'out' / 'results.pkl'
    proc = run_tool([
        'tools/test.py', SUBNET, str(ckpt), '--out', str(pkl), '--work-dir',
        str(tmp_path / 'test'), '--cfg-options', *coco_options(coco),
        'model.backbone.init_cfg=None'
    ])
    log = proc.stdout + proc.stderr
    assert 'coco/bbox_mAP' in log  # the metrics are still computed
    with open(pkl, 'rb') as f:
        results = pickle.load(f)

    # one record per image of the test split (the first 3 of 6: val.json)
    assert isinstance(results, list)
    assert sorted(r['img_id'] for r in results) == [1, 2, 3]
    expected = _predictions(cfg, model.state_dict())
    assert any(len(v[0]) for v in expected.values())  # something to compare
    for r in results:
        assert 'gt_instances' not in r  # predictions only
        pred = r['pred_instances']
        bboxes, scores, labels = expected[r['img_id']]
        assert torch.allclose(torch.as_tensor(pred['bboxes']), bboxes,
                              atol=1e-4)
        assert torch.allclose(torch.as_tensor(pred['scores']), scores,
                              atol=1e-5)
        assert torch.equal(torch.as_tensor(pred['labels']), labels)
        # boxes in the original image's pixels (96x96 tiles)
        assert r['ori_shape'] == (96, 96)


def test_out_must_be_a_pickle(tmp_path):
    ckpt = tmp_path / 'c.pth'
    torch.save({}, ckpt)
    proc = run_tool(['tools/test.py', SUBNET, str(ckpt), '--out',
                     str(tmp_path / 'r.json'), '--work-dir',
                     str(tmp_path / 'w')], check=False)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "--out must be a .pkl file, got '" in proc.stderr
