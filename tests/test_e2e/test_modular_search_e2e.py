"""The SM-NAS modular search end to end on tiny data: 4 backbone codes, each
trained from scratch (GN + WS) through the Runner, scored by CocoMetric and
timed; every output; a search continued with ``--resume`` keeps what was
trained; the best candidate's config trains and tests with the plain
tools."""
import json
import os.path as osp

import pytest
import torch
import yaml

from tests.e2e_utils import coco_options, make_tiny_coco, run_tool

pytestmark = pytest.mark.slow

CONFIG = ('configs/smnas/'
          'smnas_modular_faster-rcnn_code-gnws_fpn_quick_neon-trees.py')


def _rows(wd):
    with open(wd / 'candidates.jsonl') as f:
        return [json.loads(x) for x in f]


def test_modular_search_writes_every_output(tmp_path):
    coco = make_tiny_coco(str(tmp_path / 'coco'))
    wd = tmp_path / 'search'
    opts = coco_options(coco) + [
        'train_cfg.candidate_train_cfg.max_iters=3', 'param_scheduler.0.end=1',
        'param_scheduler.1.end=3', 'param_scheduler.1.milestones=[2]',
        'default_hooks.checkpoint.interval=3',
        'train_cfg.population_size=2', 'train_cfg.top_k=2',
        'train_cfg.num_mutation=1', 'train_cfg.num_crossover=1',
        'train_cfg.latency_repeats=1',
        'train_cfg.latency_warmup=0'
    ]
    # generation 1 only, then --resume with a second generation: the first
    # two candidates are kept, not trained again
    run_tool(['tools/search.py', CONFIG, '--work-dir', str(wd),
              '--cfg-options', *opts, 'train_cfg.max_generations=1'],
             timeout=1200)
    first = _rows(wd)
    assert [c['code'] for c in first] == [
        'r18_64_11-21-21-21', 'r18_32_11-21-21-21'
    ]
    ckpt0 = osp.join(osp.dirname(first[0]['config']), 'iter_3.pth')
    mtime = osp.getmtime(ckpt0)
    run_tool(['tools/search.py', CONFIG, '--work-dir', str(wd),
              '--resume', '--cfg-options', *opts,
              'train_cfg.max_generations=2'], timeout=1200)
    cands = _rows(wd)
    assert cands[:2] == first and osp.getmtime(ckpt0) == mtime
    assert len(cands) == 4 and [c['index'] for c in cands] == [0, 1, 2, 3]
    assert len({c['code'] for c in cands}) == 4
    for c in cands:
        assert 0.0 <= c['score'] <= 1.0 and c['latency_ms'] > 0
        assert c['flops'] > 0 and c['params'] > 0
        assert c['backbone_flops'] > 0
        ckpt = osp.join(osp.dirname(c['config']), 'iter_3.pth')
        assert osp.isfile(ckpt)
        # trained from scratch with GN + WS: no BN statistics, and the
        # backbone in the checkpoint is the candidate's code
        state = torch.load(ckpt, map_location='cpu',
                           weights_only=False)['state_dict']
        assert not any(k.endswith('running_mean') for k in state)
        base = int(c['code'].split('_')[1])
        assert state['backbone.stem.3.weight'].shape[0] == base
    for name in ('search_state.pkl', 'pareto.yaml', 'pareto.png',
                 'search_curve.png', 'search.log'):
        assert osp.getsize(wd / name) > 0
    with open(wd / 'pareto.yaml') as f:
        front = yaml.safe_load(f)['front']
    assert front
    for e in front:  # non-dominated, checked by hand
        assert not any(
            c['score'] >= e['score'] and c['latency_ms'] <= e['latency_ms']
            and (c['score'] > e['score'] or c['latency_ms'] < e['latency_ms'])
            for c in cands)
    # the best candidate's config trains and tests with the plain tools
    best = max(front, key=lambda e: e['score'])
    cfg = best['config']
    from mmengine.config import Config
    plain = Config.fromfile(cfg)  # an ordinary detector config
    assert plain.model.backbone.arch == best['code']
    assert 'modular_space' not in plain and 'modular_search' not in plain
    run_tool(['tools/train.py', cfg, '--work-dir', str(tmp_path / 'retrain'),
              '--cfg-options', 'train_cfg.max_iters=2',
              'default_hooks.checkpoint.interval=2'], timeout=600)
    out = run_tool(['tools/test.py', cfg,
                    str(tmp_path / 'retrain' / 'iter_2.pth'), '--work-dir',
                    str(tmp_path / 'test')], timeout=600)
    assert 'coco/bbox_mAP' in out.stdout + out.stderr
