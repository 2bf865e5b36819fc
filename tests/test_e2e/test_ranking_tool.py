"""tools/analysis_tools/ranking_correlation.py on tiny data: a trained
supernet, a real search, 3 architectures scored by the supernet and trained
stand-alone with tools/train.py, CocoMetric, kill -9 and resume."""
import glob
import json
import math
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric

from mmdetnas.search import arch_cost, rank_report
from mmdetnas.spaces import PRESETS
from tests.e2e_utils import ROOT, coco_options, make_tiny_coco, run_tool

QS = 'configs/quickstart'
SUPERNET = (
    f'{QS}/'
    f'detnas_supernet_faster-rcnn_shufflenetv2-300m_fpn_quick_neon-trees.py')
SEARCH = (
    f'{QS}/'
    f'detnas_search_faster-rcnn_shufflenetv2-300m_fpn_quick_neon-trees.py')
SUBNET = (
    f'{QS}/'
    f'detnas_subnet_faster-rcnn_shufflenetv2-300m_fpn_quick_neon-trees.py')
TOOL = 'tools/analysis_tools/ranking_correlation.py'
SPACE = PRESETS['300M-kernel']  # the quickstart supernets' space

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Tiny COCO, a supernet trained 6 iterations and a 3-candidate
    search on it."""
    tmp = tmp_path_factory.mktemp('ranking')
    coco = make_tiny_coco(str(tmp / 'coco'))
    wd = tmp / 'supernet'
    run_tool([
        'tools/train.py', SUPERNET, '--work-dir',
        str(wd), '--cfg-options', *coco_options(coco),
        'model.backbone.init_cfg=None', 'train_cfg.max_iters=6',
        'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=6'
    ])
    ckpt = str(wd / 'iter_6.pth')
    search = tmp / 'search'
    run_tool([
        'tools/search.py', SEARCH, ckpt, '--work-dir',
        str(search), '--cfg-options', *search_opts(coco),
        'train_cfg.max_generations=1', 'train_cfg.population_size=3',
        'train_cfg.num_mutation=0', 'train_cfg.num_crossover=0',
        'train_cfg.top_k=1'
    ])
    return coco, ckpt, str(search / 'candidates.jsonl')


def search_opts(coco):
    return coco_options(coco) + [
        'train_cfg.calib_iters=2', 'train_cfg.calib_batch_size=2'
    ]


def tool_args(trained, work_dir, *extra):
    coco, ckpt, _ = trained
    standalone = coco_options(coco) + [
        'model.backbone.init_cfg=None', 'train_cfg.max_iters=6',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1'
    ]
    return [
        TOOL, SEARCH, ckpt, '--subnet-config', SUBNET, '--work-dir',
        str(work_dir), *extra, '--standalone-opts', *standalone,
        '--cfg-options', *search_opts(coco)
    ]


def read_json(path):
    with open(path) as f:
        return json.load(f)


def state_of(work_dir):
    try:
        return read_json(osp.join(work_dir, 'ranking_state.json'))
    except (OSError, ValueError):
        return None


def checkpoint_mtimes(work_dir):
    return {
        p: os.stat(p).st_mtime_ns
        for p in glob.glob(osp.join(work_dir, 'standalone', '*', '*.pth'))
    }


def test_ranking_tool_killed_and_resumed(trained, tmp_path):
    wd = tmp_path / 'rank'
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    proc = subprocess.Popen([
        sys.executable, *tool_args(trained, wd, '--num-archs', '3', '--topk',
                                   '2')
    ],
                            cwd=ROOT,
                            env=env,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            start_new_session=True)
    # kill -9 the tool and its training once the first stand-alone result
    # is saved and the second training has written a checkpoint
    deadline = time.time() + 300
    while time.time() < deadline:
        state = state_of(wd)
        marks = glob.glob(str(wd / 'standalone' / '*' / 'last_checkpoint'))
        if state and state['standalone'] and len(marks) >= 2:
            break
        if proc.poll() is not None:
            pytest.fail('the ranking tool ended before it could be killed')
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    state = state_of(wd)
    assert len(state['supernet']) == 3
    done = list(state['standalone'])
    assert 1 <= len(done) < 3
    first = state['standalone'][done[0]]
    before = checkpoint_mtimes(wd)
    assert any(done[0] in p for p in before)

    out = run_tool(tool_args(trained, wd, '--num-archs', '3', '--topk', '2'))
    log = out.stdout + out.stderr
    assert 'stage A: every supernet score is already done' in log
    assert log.count(': training') == 3 - len(done)
    # the killed training continues from its checkpoint (unless it ended
    # between two polls)
    assert 'resuming at iter 2' in log or len(done) == 2
    if 'resuming at iter 2' in log:
        train_logs = ''.join(
            open(p).read() for p in glob.glob(str(wd / 'logs' / '*.log')))
        assert 'resumed epoch: 0, iter: 2' in train_logs  # mmengine's
    after = checkpoint_mtimes(wd)
    for p, t in before.items():  # finished trainings were not re-run
        if any(k in p for k in done):
            assert after[p] == t
    state = state_of(wd)
    assert state['standalone'][done[0]] == first
    assert len(state['standalone']) == 3

    res = read_json(wd / 'ranking.json')
    assert res['k'] == 2 and res['standalone_key'] == 'coco/bbox_mAP_50'
    assert len(res['archs']) == 3
    for row in res['archs']:
        assert (row['flops'], row['params']) == arch_cost(
            SPACE, tuple(row['arch']))
        # default band: [0.9 * max, max] of the search's FLOPs limit
        assert 0.9 * 275e6 <= row['flops'] <= 275e6
        st = state['standalone'][row['key']]
        assert row['standalone_score'] == st['score']
        assert 'coco/bbox_mAP_50' in st['metrics']  # CocoMetric's record
        assert osp.isfile(row['arch_file'])
    rep = rank_report([r['supernet_score'] for r in res['archs']],
                      [r['standalone_score'] for r in res['archs']],
                      dict(flops=[r['flops'] for r in res['archs']],
                           params=[r['params'] for r in res['archs']]), 2)
    for name, vals in rep.items():
        for stat, v in vals.items():
            got = res['report'][name][stat]
            assert got is None if math.isnan(v) else got == pytest.approx(v)
    md = (wd / 'ranking.md').read_text()
    assert '| supernet |' in md and '| flops |' in md and '| params |' in md
    assert osp.getsize(wd / 'ranking.png') > 0

    # a third run reads everything and writes the same outputs
    text = (wd / 'ranking.json').read_text()
    out = run_tool(tool_args(trained, wd, '--num-archs', '3', '--topk', '2'))
    assert ': training' not in out.stdout + out.stderr
    assert (wd / 'ranking.json').read_text() == text
    assert checkpoint_mtimes(wd) == after


def test_candidates_scored_as_the_search_did_and_commands(trained, tmp_path):
    _, _, jsonl = trained
    with open(jsonl) as f:
        searched = {
            tuple(r['arch']): r['score']
            for r in map(json.loads, filter(str.strip, f))
        }
    wd = tmp_path / 'cands'
    # the same supernet again under another path, as a "further" supernet:
    # loaded into the same runner after the first, it must score alike
    import shutil
    again = str(tmp_path / 'again.pth')
    shutil.copy(trained[1], again)
    out = run_tool(
        tool_args(trained, wd, '--from-candidates', jsonl, '--num-archs', '3',
                  '--print-commands', '--more-checkpoints', again))
    assert 'train_commands.sh' in out.stdout + out.stderr
    state = state_of(wd)
    assert {tuple(a) for a in state['archs']} == set(searched)
    (more, ) = state['more_supernets'].values()
    for arch in state['archs']:
        key = ''.join(str(SPACE.choices.index(c)) for c in arch)
        assert state['supernet'][key]['score'] == pytest.approx(
            searched[tuple(arch)], abs=1e-12)
        assert more[key]['score'] == pytest.approx(
            searched[tuple(arch)], abs=1e-12)
    agreement = read_json(wd / 'supernet_agreement.json')
    assert agreement['checkpoints'] == [osp.abspath(trained[1]), again]
    (pair, ) = agreement['agreement']
    assert (pair['a'], pair['b']) == (0, 1)
    scores = list(searched.values())
    # equal rankings: tau 1, or undefined (None) when the scores are equal
    assert pair['tau'] == (None if len(set(scores)) < 2 else
                           pytest.approx(1.0))
    assert not osp.exists(wd / 'standalone')
    assert not osp.exists(wd / 'ranking.json')
    lines = [
        x for x in (wd / 'train_commands.sh').read_text().splitlines()
        if x.startswith('python tools/train.py')
    ]
    assert len(lines) == 3
    for arch in state['archs']:
        key = ''.join(str(SPACE.choices.index(c)) for c in arch)
        assert sum(f'model.backbone.arch={wd}/archs/{key}.yaml' in x
                   for x in lines) == 1



# ------------------------------------------------------- several processes
@METRICS.register_module(force=True)
class RankingProbeMetric(BaseMetric):
    """A continuous score for the multi-process test: the mean over the
    validation images of the sum of the detection scores and of the box
    coordinates (mAP of a 6-iteration supernet is mostly 0, which would
    hide a wrong score). Order-independent: per-image sums, added sorted
    by image."""
    default_prefix = 'probe'

    def __init__(self, ann_file=None, **kwargs):  # coco_options sets it
        super().__init__(**kwargs)

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            pred = sample['pred_instances']
            self.results.append(
                (int(sample['img_id']), float(pred['scores'].double().sum()),
                 float(pred['bboxes'].double().sum())))

    def compute_metrics(self, results):
        results = sorted(results)
        n = len(results)
        return dict(score_mean=math.fsum(r[1] for r in results) / n,
                    box_mean=math.fsum(r[2] for r in results) / n,
                    images=n)


@pytest.fixture(scope='module')
def probe_one_process(trained, tmp_path_factory):
    """The search config scored by :class:`RankingProbeMetric`, and the
    supernet scores of the search's 3 candidates by the tool in one
    process."""
    tmp = tmp_path_factory.mktemp('probe')
    config = tmp / 'search_probe.py'
    config.write_text(
        f'_base_ = [{osp.join(ROOT, SEARCH)!r}]\n'
        "custom_imports = dict(imports=['tests.test_e2e.test_ranking_tool'],"
        ' allow_failed_imports=False)\n'
        "val_evaluator = dict(_delete_=True, type='RankingProbeMetric')\n"
        "train_cfg = dict(score_key='probe/score_mean')\n")
    wd = tmp / 'one'
    run_tool(probe_args(trained, config, wd))
    state = state_of(wd)
    assert len(state['supernet']) == 3
    return str(config), state


def probe_args(trained, config, wd, *extra):
    args = tool_args(trained, wd, '--from-candidates', trained[2],
                     '--num-archs', '3', '--print-commands', *extra)
    args[1] = str(config)  # the search config
    return args


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.parametrize('parallel', ['candidate', 'data'])
def test_two_processes_score_as_one_process(trained, probe_one_process,
                                            tmp_path, parallel):
    """torchrun with 2 gloo processes (--launcher pytorch, without
    --print-commands): the supernet scores and metrics of 3 architectures
    (an uneven last batch in 'candidate' mode) equal those of one process;
    the run stops after stage A, and rank 0 alone writes the state and
    train_commands.sh (tools/dist_train.sh lines with --gpus 2)."""
    config, one = probe_one_process
    scores = [r['score'] for r in one['supernet'].values()]
    assert len(set(scores)) == 3  # the probe tells the architectures apart
    wd = tmp_path / 'dist'
    args = probe_args(trained, config, wd, '--gpus', '2', '--launcher',
                      'pytorch')
    args.remove('--print-commands')  # implied by several processes
    if parallel == 'data':  # appended to the search's --cfg-options
        args.append('train_cfg.parallel=data')
    cmd = [sys.executable, '-m', 'torch.distributed.run',
           '--nproc_per_node=2', f'--master_port={_free_port()}', *args]
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    # one rank logs
    assert log.count(f"stage A: 2 process(es), the search loop's "
                     f"'{parallel}' mode") == 1
    assert log.count('[ranking] wrote') == 1
    state = state_of(wd)
    assert state['archs'] == one['archs']
    assert set(state['supernet']) == set(one['supernet'])
    for key, rec in state['supernet'].items():
        want = one['supernet'][key]
        assert rec['metrics']['probe/images'] == 3
        assert rec['score'] == want['score']
        assert rec['metrics'] == want['metrics']
        assert (rec['flops'], rec['params']) == (want['flops'],
                                                 want['params'])
    assert not osp.exists(wd / 'standalone')  # no training started
    assert not osp.exists(wd / 'ranking.json')
    lines = [
        x.split() for x in (wd / 'train_commands.sh').read_text().splitlines()
        if x.startswith('tools/dist_train.sh')
    ]
    assert len(lines) == 3
    for arch in state['archs']:
        key = ''.join(str(SPACE.choices.index(c)) for c in arch)
        (words, ) = [w for w in lines
                     if f'model.backbone.arch={wd}/archs/{key}.yaml' in w]
        assert words[2] == '2'
        assert words[words.index('--work-dir') + 1] == str(
            wd / 'standalone' / key)
