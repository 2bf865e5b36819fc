"""A real search on a trained supernet with mmdet's CocoMetric, through
tools/search.py, on tiny data; resume after kill -9; 2 gloo processes."""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest

from mmdetnas.spaces import load_arch_file
from tests.e2e_utils import ROOT, coco_options, make_tiny_coco, run_tool

QS = 'configs/quickstart'
SUPERNET = (
    f'{QS}/'
    f'detnas_supernet_faster-rcnn_shufflenetv2-300m_fpn_quick_neon-trees.py')
SEARCH = (
    f'{QS}/'
    f'detnas_search_faster-rcnn_shufflenetv2-300m_fpn_quick_neon-trees.py')
SMALL = [
    'train_cfg.max_generations=2', 'train_cfg.population_size=4',
    'train_cfg.num_mutation=1', 'train_cfg.num_crossover=1',
    'train_cfg.top_k=2', 'train_cfg.calib_iters=2',
    'train_cfg.calib_batch_size=2'
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A tiny COCO set and a supernet trained a few iterations on it."""
    tmp = tmp_path_factory.mktemp('search')
    coco = make_tiny_coco(str(tmp / 'coco'))
    wd = tmp / 'supernet'
    run_tool([
        'tools/train.py', SUPERNET, '--work-dir',
        str(wd), '--cfg-options', *coco_options(coco),
        'model.backbone.init_cfg=None', 'train_cfg.max_iters=10',
        'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=10'
    ])
    return coco, str(wd / 'iter_10.pth')


def records(work_dir):
    with open(osp.join(work_dir, 'candidates.jsonl')) as f:
        return [json.loads(x) for x in f if x.strip()]


def key(rows):
    return [(r['index'], r['generation'], r['arch'], r['score'], r['metrics'])
            for r in rows]


def search(trained, work_dir, *extra, options=(), **kw):
    coco, ckpt = trained
    return run_tool([
        'tools/search.py', SEARCH, ckpt, '--work-dir',
        str(work_dir), *extra, '--cfg-options', *coco_options(coco), *SMALL,
        *options
    ], **kw)


def test_real_search_writes_every_output(trained, tmp_path):
    out = search(trained, tmp_path)
    rows = records(tmp_path)
    assert len(rows) == 8
    assert len({tuple(r['arch']) for r in rows}) == 8
    for r in rows:
        assert 'coco/bbox_mAP' in r['metrics'] and r['flops'] <= 300e6
        assert r['eval_seconds'] > 0 and r['calib_seconds'] > 0
    space, best = load_arch_file(str(tmp_path / 'best_arch.yaml'))
    assert list(best) == max(rows, key=lambda r: r['score'])['arch']
    for name in ('topk.yaml', 'search_curve.png', 'pareto.png',
                 'search_state.pkl'):
        assert osp.getsize(tmp_path / name) > 0
    # per-candidate scalars at distinct steps in the visual backend
    scalars = [
        json.loads(x) for f in tmp_path.glob('*/vis_data/scalars.json')
        for x in f.read_text().splitlines() if 'search/score' in x
    ]
    assert [e['step'] for e in scalars] == list(range(8))
    for e, r in zip(scalars, rows):
        assert e['search/score'] == pytest.approx(r['score'])
        assert e['search/flops'] == r['flops'] and 'search/best' in e
    log = out.stdout + out.stderr
    assert 'export_subnet.py' in log and 'model.backbone.arch=' in log
    assert '[search] generation 2/2 done' in log


def test_search_killed_then_resumed_equals_uninterrupted(trained, tmp_path):
    full = tmp_path / 'full'
    search(trained, full)
    killed = tmp_path / 'killed'
    coco, ckpt = trained
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    proc = subprocess.Popen([
        sys.executable, 'tools/search.py', SEARCH, ckpt, '--work-dir',
        str(killed), '--cfg-options', *coco_options(coco), *SMALL
    ],
                            cwd=ROOT,
                            env=env,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    jsonl = killed / 'candidates.jsonl'
    deadline = time.time() + 300
    while time.time() < deadline:
        if jsonl.exists() and len(records(killed)) >= 3:
            break
        if proc.poll() is not None:
            pytest.fail('search ended before it could be killed')
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(records(killed))
    assert 3 <= done < 8
    search(trained, killed, '--resume')
    assert key(records(killed)) == key(records(full))
    assert load_arch_file(str(killed / 'best_arch.yaml')) == load_arch_file(
        str(full / 'best_arch.yaml'))


def strip_timing(rows):
    return [{k: v for k, v in r.items()
             if k not in ('calib_seconds', 'eval_seconds')} for r in rows]


@pytest.mark.parametrize('parallel', ['candidate', 'data'])
def test_two_gloo_processes_equal_one(trained, tmp_path, parallel):
    one = tmp_path / 'one'
    mode = [f'train_cfg.parallel={parallel}']
    search(trained, one, options=mode if parallel == 'candidate' else ())
    coco, ckpt = trained
    two = tmp_path / 'two'
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        OMP_NUM_THREADS='1',
        PYTHONWARNINGS='ignore',
        PORT='29611')
    proc = subprocess.run([
        'bash', 'tools/dist_search.sh', SEARCH, ckpt, '2', '--work-dir',
        str(two), '--cfg-options', *coco_options(coco), *SMALL,
        *(mode if parallel == 'data' else [])
    ],
                          cwd=ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    log = proc.stdout + proc.stderr
    assert 'gloo process group (rank 1 of 2,' in log
    # the tool started the process group before the Runner: rank 0 alone
    # proposed and closed each generation and owns the state
    # (4 per generation: 2 lines from rank 0, 4 if rank 1 proposed too)
    assert log.count(': 4 new candidates') == 2, log[-3000:]
    assert log.count('[search] generation 1/2 done') == 1, log[-3000:]
    assert sorted(p.name for p in two.glob('search_state*')) == [
        'search_state.pkl']
    # 1 process: 'data' by default; 2 processes: 'candidate' by default
    a, b = records(one), records(two)
    assert len(a) == 8
    assert strip_timing(a) == strip_timing(b)
    assert (one / 'best_arch.yaml').read_text() == \
        (two / 'best_arch.yaml').read_text()


def test_impossible_constraint_fails_clearly(trained, tmp_path):
    coco, ckpt = trained
    out = run_tool([
        'tools/search.py', SEARCH, ckpt, '--work-dir',
        str(tmp_path / 'x'), '--cfg-options', *coco_options(coco), *SMALL,
        'train_cfg.flops=[1000000000.0,None]'
    ],
                   check=False)
    assert out.returncode != 0
    # 1 GMACs is beyond every path of the space: refused before any
    # candidate, naming the span of the space's paths (a range inside the
    # span that random proposals never meet is tested in
    # test_evolution_search_loop.py)
    last = out.stderr.strip().splitlines()[-1]
    assert 'train_cfg.flops=(1e+09, inf) MACs: no path of the search ' \
        'space' in last and 'its paths span [' in last, last
    assert 'Traceback' not in out.stderr
