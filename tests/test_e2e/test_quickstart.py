"""The tiny quickstart end to end, on the real embedded data (the README's
main job, CI-sized)."""
import json
import os.path as osp

import pytest

from mmdetnas.search import load_arch_file
from tests.e2e_utils import ROOT, run_tool

pytestmark = pytest.mark.slow


def test_tiny_quickstart_runs_the_whole_pipeline(tmp_path):
    wd = tmp_path / 'qs'
    out = run_tool(['tools/quickstart.py', '--tiny', '--work-dir', str(wd)],
                   timeout=1200)
    text = (wd / 'summary.md').read_text()
    assert text in out.stdout
    rows = [r for r in text.splitlines()
            if r.startswith(('| searched', '| baseline'))]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip('|').split('|')]
        flops, search_map, top1, retrained_map, test_map, test_map50 = \
            cells[2:8]
        assert 0 < float(flops) <= 300.0  # MMACs, DetNAS convention
        assert 0.0 <= float(top1) <= 100.0
        for v in (search_map, retrained_map, test_map, test_map50):
            assert 0.0 <= float(v) <= 1.0
    # re-training = classification from scratch, then detection fine-tuning
    # that starts from that classification checkpoint (DetNAS Sec. 4.1)
    retrain_log = (wd / 'logs' / 'retrain.log').read_text()
    for tag in ('searched', 'baseline'):
        ckpt = wd / f'pretrain_{tag}' / 'iter_20.pth'
        assert ckpt.is_file()
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
