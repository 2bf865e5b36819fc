"""The tiny quickstart end to end, on the real embedded data (the README's
main job, CI-sized)."""
import json
import math
import os.path as osp

import pytest

from mmdetnas.spaces import load_arch_file
from tests.e2e_utils import ROOT, run_tool

SUBNET = ('configs/quickstart/detnas_subnet_faster-rcnn_shufflenetv2-300m_'
          'fpn_quick_neon-trees.py')

pytestmark = pytest.mark.slow


def test_tiny_quickstart_runs_the_whole_pipeline(tmp_path):
    wd = tmp_path / 'qs'
    # the two re-training branches side by side (each tool runs with one
    # torch thread in the tests); the README's command runs them in turn
    out = run_tool(['tools/quickstart.py', '--tiny', '--jobs', '2',
                    '--work-dir', str(wd)], timeout=1200)
    text = (wd / 'summary.md').read_text()
    assert text in out.stdout
    rows = [r for r in text.splitlines()
            if r.startswith(('| searched', '| baseline'))]
    assert len(rows) == 2
    # chance on the 200 balanced Fashion-MNIST validation images is 10%;
    # a classifier that learned nothing stays below 10% + 3 binomial
    # standard deviations (sqrt(0.1 * 0.9 / 200) = 2.1%)
    chance_bound = 100 * (0.1 + 3 * math.sqrt(0.1 * 0.9 / 200))
    test_map50 = {}
    for row in rows:
        cells = [c.strip() for c in row.strip('|').split('|')]
        flops, search_map, top1, retrained_map, test_map, test_map50[
            cells[0]] = cells[2:8]
        assert 0 < float(flops) <= 300.0  # MMACs, DetNAS convention
        assert chance_bound < float(top1) <= 100.0, (cells[0], top1)
        for v in (search_map, retrained_map, test_map):
            assert 0.0 <= float(v) <= 1.0
    # the re-trained detectors beat the same detector untrained (random
    # heads, random backbone), tested the same way
    untrained = _untrained_test_map50(wd, tmp_path)
    for name, v in test_map50.items():
        assert float(v) > untrained, (name, v, untrained)
    # re-training = classification from scratch, then detection fine-tuning
    # that starts from that classification checkpoint (DetNAS Sec. 4.1)
    for tag in ('searched', 'baseline'):
        ckpt = wd / f'pretrain_{tag}' / 'iter_80.pth'
        assert ckpt.is_file()
        retrain_log = (wd / 'logs' / f'retrain_{tag}.log').read_text()
        assert f'load backbone. in model from: {ckpt}' in retrain_log
    for stage in ('pretrain', 'supernet', 'search', 'retrain', 'test'):
        assert f'| {stage} |' in text
    search = wd / 'search'
    for name in ('best_arch.yaml', 'topk.yaml', 'candidates.jsonl',
                 'search_curve.png', 'pareto.png'):
        assert osp.getsize(search / name) > 0
    with open(search / 'candidates.jsonl') as f:
        cands = [json.loads(x) for x in f]
    assert len(cands) == 8
    baseline = ['shuffle_3x3'] * 20
    assert cands[0]['arch'] == baseline  # seeded into generation 1
    space, best = load_arch_file(str(search / 'best_arch.yaml'))
    assert list(best) == max(cands, key=lambda c: c['score'])['arch']
    # the real data: three disjoint splits of tree tiles
    splits = {}
    for split in ('supernet_train', 'search_val', 'test'):
        with open(osp.join(ROOT, 'data/neon_trees/annotations',
                           f'{split}.json')) as f:
            splits[split] = {im['file_name'] for im in json.load(f)['images']}
        assert splits[split]
    assert not splits['supernet_train'] & splits['search_val']
    assert not splits['test'] & (splits['supernet_train']
                                 | splits['search_val'])


def _untrained_test_map50(wd, tmp_path):
    """Test mAP@0.5 of the quickstart's baseline detector with its initial
    (untrained) weights, through the same tools/test.py run."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmdet.registry import MODELS
    arch = str(wd / 'baseline_arch.yaml')
    cfg = Config.fromfile(osp.join(ROOT, SUBNET))
    cfg.model.backbone.arch = arch
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    ckpt = str(tmp_path / 'untrained.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    out = tmp_path / 'untrained_test'
    run_tool(['tools/test.py', SUBNET, ckpt, '--work-dir', str(out),
              '--cfg-options', f'model.backbone.arch={arch}'])
    logs = sorted(out.glob('*/*.json'))
    with open(logs[-1]) as f:
        metrics = {k: v for line in f if line.strip()
                   for k, v in json.loads(line).items()}
    return metrics['coco/bbox_mAP_50']
