"""The SM-NAS structural search end to end on tiny data: real training of
every candidate through the Runner, CocoMetric, latency; every output; a
front config trains and tests with the plain tools; resume after the end
does not train again."""
import json
import os.path as osp

import pytest
import yaml

from tests.e2e_utils import ROOT, coco_options, make_tiny_coco, run_tool

pytestmark = pytest.mark.slow

CONFIG = ('configs/smnas/'
          'smnas_structural_faster-rcnn_mixed_fpn_quick_neon-trees.py')


def test_structural_search_writes_every_output(tmp_path):
    coco = make_tiny_coco(str(tmp_path / 'coco'))
    wd = tmp_path / 'search'
    opts = coco_options(coco) + [
        'train_cfg.candidate_train_cfg.max_iters=3', 'param_scheduler.0.end=1',
        'param_scheduler.1.end=3', 'param_scheduler.1.milestones=[2]',
        'train_cfg.population_size=2',
        'train_cfg.max_generations=2',
        'train_cfg.top_k=2', 'train_cfg.num_mutation=1',
        'train_cfg.num_crossover=1',
        'train_cfg.latency_repeats=1',
        'train_cfg.latency_warmup=0',
        # each trained candidate's exportable part also timed on ONNX
        # Runtime, and that latency is the objective
        'train_cfg.latency_backend.type=onnxruntime',
        'train_cfg.latency_backend.warmup=0',
        'train_cfg.latency_backend.repeats=2',
        'train_cfg.latency_backend.rounds=1',
        'train_cfg.latency_objective=deployed'
    ]
    run_tool(['tools/search.py', CONFIG, '--work-dir', str(wd),
              '--cfg-options', *opts], timeout=1500)
    with open(wd / 'candidates.jsonl') as f:
        cands = [json.loads(x) for x in f]
    assert len(cands) == 4
    assert [c['index'] for c in cands] == [0, 1, 2, 3]
    # the seeded first generation: a two-stage and a one-stage detector
    families = {c['choices']['head'] for c in cands}
    assert {'two_stage', 'retinanet'} <= families
    for c in cands:
        assert 0.0 <= c['score'] <= 1.0 and c['latency_ms'] > 0
        assert c['deployed_latency_ms'] > 0
        assert c['deployed_backend'].startswith('onnxruntime ')
        assert c['deployed_device'].startswith('cpu: ')
        # one-stage detectors export their dense head, two-stage ones not
        head = c['choices']['head'] != 'two_stage'
        assert ('head' in c['deployed_parts']) == head
        assert c['flops'] > 0 and c['params'] > 0
        assert osp.isfile(c['config'])
        # each candidate really trained: its checkpoint of the last iter
        assert osp.isfile(osp.join(osp.dirname(c['config']), 'iter_3.pth'))
    for name in ('search_state.pkl', 'pareto.yaml', 'pareto.png',
                 'search_curve.png', 'search.log'):
        assert osp.getsize(wd / name) > 0
    with open(wd / 'pareto.yaml') as f:
        pareto = yaml.safe_load(f)
    front = pareto['front']
    assert front
    assert pareto['objectives'][1] == 'min deployed_latency_ms'
    # the front is non-dominated among the candidates (score up, deployed
    # latency down), checked by hand
    lat = 'deployed_latency_ms'
    for e in front:
        assert e['deployed_backend'].startswith('onnxruntime ')
        assert not any(
            c['score'] >= e['score'] and c[lat] <= e[lat]
            and (c['score'] > e['score'] or c[lat] < e[lat])
            for c in cands)
    # a front config trains and tests with the plain tools
    cfg = front[0]['config']
    assert osp.isfile(cfg) and osp.dirname(cfg) == str(wd / 'front')
    run_tool(['tools/train.py', cfg, '--work-dir', str(tmp_path / 'retrain'),
              '--cfg-options', 'train_cfg.max_iters=2'], timeout=600)
    out = run_tool(['tools/test.py', cfg,
                    str(tmp_path / 'retrain' / 'iter_2.pth'), '--work-dir',
                    str(tmp_path / 'test')], timeout=600)
    assert 'coco/bbox_mAP' in out.stdout + out.stderr
    # resuming a finished search trains nothing more
    run_tool(['tools/search.py', CONFIG, '--work-dir', str(wd),
              '--resume', '--cfg-options', *opts], timeout=600)
    with open(wd / 'candidates.jsonl') as f:
        assert [json.loads(x) for x in f] == cands
    # the search's scalars reached the outer Runner's visual backend (its
    # LocalVisBackend), one step per candidate
    steps = {}
    for path in wd.glob('2*/vis_data/scalars.json'):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if 'search/score' in row:
                steps[row['step']] = row
    assert sorted(steps) == [0, 1, 2, 3]
    for c in cands:
        assert steps[c['index']]['search/score'] == pytest.approx(c['score'])
        assert steps[c['index']]['search/latency_ms'] == pytest.approx(
            c['latency_ms'])
    # kill -9 at a random moment after the first candidate, then --resume:
    # the same candidates as the uninterrupted run, timings aside
    _kill_then_resume(tmp_path / 'killed', opts, cands)


def _kill_then_resume(wd, opts, expected):
    import os
    import random
    import signal
    import subprocess
    import sys
    import time
    delay = random.Random().uniform(0, 8)
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    proc = subprocess.Popen(
        [sys.executable, 'tools/search.py', CONFIG, '--work-dir', str(wd),
         '--cfg-options', *opts], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    jsonl = wd / 'candidates.jsonl'
    deadline = time.time() + 600
    while not (jsonl.exists() and jsonl.read_text().strip()):
        assert proc.poll() is None, 'the search ended before the kill'
        assert time.time() < deadline
        time.sleep(0.2)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(jsonl.read_text().splitlines())
    run_tool(['tools/search.py', CONFIG, '--work-dir', str(wd), '--resume',
              '--cfg-options', *opts], timeout=1500)
    with open(jsonl) as f:
        got = [json.loads(x) for x in f]
    timings = ('train_seconds', 'latency_ms', 'deployed_latency_ms',
               'config')
    assert [{k: v for k, v in c.items() if k not in timings}
            for c in got] == [
        {k: v for k, v in c.items() if k not in timings}
        for c in expected], f'killed {delay:.1f} s after candidate 0 ' \
        f'({done} candidates done)'


def test_structural_search_two_processes(tmp_path):
    """torchrun with 2 gloo processes, the process group started by the
    tool itself (as on GPUs): each candidate trains with DDP on both, rank
    0 proposes, times and writes; both ranks finish; the candidates are
    those of one process."""
    import os
    import subprocess
    coco = make_tiny_coco(str(tmp_path / 'coco'))
    wd = tmp_path / 'search'
    env = dict(os.environ, PYTHON=sys_python(), OMP_NUM_THREADS='1',
               PORT='29541', PYTHONWARNINGS='ignore')
    opts = ['train_cfg.candidate_train_cfg.max_iters=2', 'train_cfg.population_size=2',
            'train_cfg.num_mutation=1',
            'train_cfg.num_crossover=1',
            'train_cfg.max_generations=1',
            'train_cfg.latency_repeats=1']
    proc = subprocess.run(
        ['bash', 'tools/dist_search.sh', CONFIG, '2',
         '--work-dir', str(wd), '--cfg-options', *coco_options(coco),
         *opts],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(wd / 'candidates.jsonl') as f:
        cands = [json.loads(x) for x in f]
    assert [c['index'] for c in cands] == [0, 1]
    heads = {c['choices']['head'] for c in cands}
    assert heads == {'two_stage', 'retinanet'}
    assert osp.getsize(wd / 'pareto.yaml') > 0
    # the tool started the process group before the search: only rank 0
    # started it (one state, one log with one first generation; rank 1
    # wrote no log of its own)
    log = (wd / 'search.log').read_text()
    assert log.count('generation 1: 2 new candidates') == 1, log
    assert log.count('generation 1/1 done') == 1, log
    assert sorted(p.name for p in wd.glob('search*')) == [
        'search.log', 'search_curve.png', 'search_state.pkl']
    assert 'started the gloo process group (rank 0 of 2,' in \
        proc.stdout + proc.stderr
    # the same candidates as one process
    one = tmp_path / 'one'
    run_tool(['tools/search.py', CONFIG, '--work-dir', str(one),
              '--cfg-options', *coco_options(coco), *opts], timeout=900)
    with open(one / 'candidates.jsonl') as f:
        assert [(c['index'], c['choices']) for c in map(json.loads, f)] == \
            [(c['index'], c['choices']) for c in cands]


def sys_python():
    import sys
    return sys.executable
