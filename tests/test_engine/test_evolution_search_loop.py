"""EvolutionSearchLoop driven by a scoring function instead of a detector.

The loop is the real one; only the runner is a stand-in whose
``val_loop.run()`` scores the active path with a known function, so the
evolution logic (dedupe, constraints, selection, resume) is checked exactly.
"""
import json
import os.path as osp
import pickle

import pytest
import torch.nn as nn
import yaml
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.logging import MessageHub
from torch.utils.data import DataLoader

from mmdetnas.engine.loops import EvolutionSearchLoop
from mmdetnas.models.backbones import DetNASShuffleNetV2
from mmdetnas.search import arch_flops
from mmdetnas.spaces import load_arch_file, PRESETS

SPACE = PRESETS['300M']


def score_of(arch):
    """A known landscape: xception and 7x7 are good, 3x3 is bad."""
    w = {'shuffle_3x3': 0.0, 'shuffle_5x5': 0.5, 'shuffle_7x7': 1.0,
         'shuffle_xception': 0.8}
    return sum(w[c] * (i + 1) for i, c in enumerate(arch)) / 210.0


class FakeValLoop:

    def __init__(self, backbone, log):
        self.backbone = backbone
        self.log = log

    def run(self):
        arch = self.backbone.arch
        self.log.append(arch)
        return {'coco/bbox_mAP': score_of(arch), 'coco/bbox_mAP_50': 0.5}


class FakeRunner:

    def __init__(self, work_dir):
        self.model = nn.Sequential(DetNASShuffleNetV2(search_space='300M'))
        self.work_dir = str(work_dir)
        self.hooks = []
        self.hook_calls = []
        self.evaluated = []
        self.val_loop = FakeValLoop(self.model[0], self.evaluated)
        self.cfg = dict(load_from='supernet.pth')
        self.message_hub = MessageHub(f'fake_{id(self)}')
        self.train_loop = None

    def register_hook(self, hook):
        self.hooks.append(hook)

    def call_hook(self, name, **kwargs):
        # as mmengine's Runner: every registered hook's method
        self.hook_calls.append(name)
        for hook in self.hooks:
            getattr(hook, name)(self, **kwargs)


def make_loop(work_dir, **kwargs):
    runner = FakeRunner(work_dir)
    cfg = dict(max_generations=4, population_size=10, top_k=3,
               num_mutation=4, num_crossover=3, calibrate_bn=False, seed=1)
    cfg.update(kwargs)
    return new_loop(runner, dataloader=[], **cfg), runner


def new_loop(runner, *args, **kwargs):
    """The loop, as ``runner.train_loop`` (as mmengine's Runner sets
    it)."""
    runner.train_loop = EvolutionSearchLoop(runner, *args, **kwargs)
    return runner.train_loop


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(x) for x in f if x.strip()]


def test_search_never_evaluates_twice_and_writes_outputs(tmp_path):
    loop, runner = make_loop(tmp_path)
    loop.run()
    evaluated = runner.evaluated
    assert len(evaluated) == len(set(evaluated)) == 40
    assert runner.hook_calls[0] == 'before_train'
    assert runner.hook_calls[-1] == 'after_train'
    lines = read_jsonl(osp.join(tmp_path, 'candidates.jsonl'))
    assert [tuple(r['arch']) for r in lines] == evaluated
    for r in lines:  # full precision, FLOPs from the table
        assert r['score'] == score_of(tuple(r['arch']))
        assert r['flops'] == arch_flops(SPACE, tuple(r['arch']))
    space, best = load_arch_file(osp.join(tmp_path, 'best_arch.yaml'))
    assert best == max(evaluated, key=score_of)
    with open(osp.join(tmp_path, 'topk.yaml')) as f:
        topk = yaml.safe_load(f)['topk']
    assert [t['score'] for t in topk] == sorted(
        (score_of(a) for a in evaluated), reverse=True)[:3]
    for name in ('search_curve.png', 'pareto.png', 'search_state.pkl'):
        assert osp.getsize(osp.join(tmp_path, name)) > 0


def test_topk_is_monotone_and_evolution_beats_random(tmp_path):
    loop, runner = make_loop(tmp_path, max_generations=6)
    loop.run()
    hist = loop.history
    best = [h['best'] for h in hist]
    mean_topk = [h['mean_topk'] for h in hist]
    assert best == sorted(best) and mean_topk == sorted(mean_topk)
    assert mean_topk[-1] > mean_topk[0]
    # later generations are bred from the top-k: better on average
    gen = {}
    for r in loop.records:
        gen.setdefault(r['generation'], []).append(r['score'])
    avg = [sum(v) / len(v) for _, v in sorted(gen.items())]
    assert avg[-1] > avg[0]


def test_children_come_from_parents(tmp_path):
    loop, runner = make_loop(tmp_path, max_generations=2, mutate_prob=0.0,
                             num_mutation=0, num_crossover=6)
    loop.run()
    first = [r for r in loop.records if r['generation'] == 0]
    parents = sorted(first, key=lambda r: -r['score'])[:3]
    children = [r for r in loop.records if r['generation'] == 1][:6]
    assert children
    for child in children:
        for i, gene in enumerate(child['arch']):
            assert gene in {p['arch'][i] for p in parents}


def test_constraints_are_applied_before_evaluation(tmp_path):
    lo, hi = 270e6, 290e6
    loop, runner = make_loop(tmp_path, flops=(lo, hi), max_generations=2)
    loop.run()
    assert runner.evaluated
    for arch in runner.evaluated:
        assert lo <= arch_flops(SPACE, arch) <= hi


def test_impossible_constraint_names_it_and_the_range_seen(tmp_path):
    # beyond every path of the 300M space (its largest is ~0.36 GMACs):
    # refused when the loop is built, naming the span of the space
    with pytest.raises(ValueError, match=r"train_cfg.flops=\(1e\+09, inf\)"
                       r" MACs: no path of the search space '300M' fits; "
                       r"its paths span \["):
        make_loop(tmp_path, flops=(1e9, None))
    # inside the span but met only by the one all-largest path, which
    # random proposals never draw: the search gives up naming the range
    # and the values it saw
    from mmdetnas.search.flops import space_cost_span
    from mmdetnas.spaces.search_space import PRESETS
    top = space_cost_span(PRESETS['300M'])['flops'][1]
    loop, runner = make_loop(tmp_path, flops=(top, None))
    with pytest.raises(RuntimeError) as e:
        loop.run()
    msg = str(e.value)
    assert 'no candidate satisfies' in msg
    assert f'flops in [{top:.4g}' in msg and 'flops seen [' in msg
    assert runner.evaluated == []


def test_init_archs_and_bad_settings(tmp_path):
    base = ('shuffle_3x3', ) * 20
    loop, runner = make_loop(tmp_path, init_archs=[list(base)],
                             max_generations=1)
    loop.run()
    assert runner.evaluated[0] == base
    with pytest.raises(ValueError, match='exceeds population_size'):
        make_loop(tmp_path, num_mutation=8, num_crossover=8)
    with pytest.raises(ValueError, match='unknown choice'):
        make_loop(tmp_path, init_archs=[['shuffle_9x9'] * 20])


def test_multi_objective_front(tmp_path):
    loop, runner = make_loop(tmp_path, multi_objective=True,
                             max_generations=2)
    loop.run()
    with open(osp.join(tmp_path, 'pareto.yaml')) as f:
        front = yaml.safe_load(f)['front']
    pts = [(r['score'], r['flops']) for r in loop.records]
    for f in front:  # nobody dominates a front member
        assert not any(s >= f['score'] and c <= f['flops'] and
                       (s > f['score'] or c < f['flops']) for s, c in pts)
    on_front = {(f['score'], f['flops']) for f in front}
    for s, c in pts:  # everything off the front is dominated
        if (s, c) not in on_front:
            assert any(fs >= s and fc <= c for fs, fc in on_front)


def test_resume_after_kill_equals_uninterrupted(tmp_path):
    full, full_runner = make_loop(tmp_path / 'full', max_generations=3)
    (tmp_path / 'full').mkdir()
    full.run()

    work = tmp_path / 'killed'
    work.mkdir()
    killed, killed_runner = make_loop(work, max_generations=3)

    class Kill(Exception):
        pass

    real_run = killed_runner.val_loop.run
    calls = []

    def dying_run():
        calls.append(1)
        if len(calls) == 14:  # killed while scoring the 14th candidate
            raise Kill
        return real_run()

    killed_runner.val_loop.run = dying_run
    with pytest.raises(Kill):
        killed.run()
    with open(work / 'search_state.pkl', 'rb') as f:
        assert len(pickle.load(f)['records']) == 13

    resumed, resumed_runner = make_loop(work, max_generations=3, resume=True)
    resumed.run()
    # only the candidate in flight was lost and re-done
    assert len(resumed_runner.evaluated) == 30 - 13

    def strip(rows):
        return [(r['index'], r['generation'], r['arch'], r['score'])
                for r in rows]

    assert strip(read_jsonl(work / 'candidates.jsonl')) == strip(
        read_jsonl(tmp_path / 'full' / 'candidates.jsonl'))
    assert load_arch_file(str(work / 'best_arch.yaml')) == load_arch_file(
        str(tmp_path / 'full' / 'best_arch.yaml'))


def test_resume_refuses_a_different_search(tmp_path):
    loop, _ = make_loop(tmp_path, max_generations=1)
    loop.run()
    other, _ = make_loop(tmp_path, seed=2, resume=True)
    with pytest.raises(RuntimeError, match='seed'):
        other.run()


# ------------------------------------------------- candidate-parallel mode
class ScoreMetric(BaseMetric):
    """The largest per-image value seen, and how many images were seen."""
    default_prefix = 'coco'

    def process(self, data_batch, data_samples):
        self.results.extend(s['value'] for s in data_samples)

    def compute_metrics(self, results):
        return {'bbox_mAP': max(results), 'n_images': float(len(results))}


class ScoredModel(nn.Module):
    """``val_step`` gives every image the score of the active path."""

    def __init__(self):
        super().__init__()
        self.backbone = DetNASShuffleNetV2(search_space='300M')

    def val_step(self, batch):
        return [dict(value=score_of(self.backbone.arch))
                for _ in batch['inputs']]


class CandidateValLoop(FakeValLoop):
    """``run()`` for 'data' mode; dataloader and evaluator for the local
    evaluation of 'candidate' mode."""

    def __init__(self, backbone, log, num_images=3):
        super().__init__(backbone, log)
        self.dataloader = DataLoader(
            [dict(inputs=i) for i in range(num_images)], batch_size=2,
            collate_fn=pseudo_collate)
        self.evaluator = Evaluator(ScoreMetric())


class CandidateRunner(FakeRunner):

    def __init__(self, work_dir, visualizer=None):
        super().__init__(work_dir)
        self.model = ScoredModel()
        self.val_loop = CandidateValLoop(self.model.backbone, self.evaluated)
        self.visualizer = visualizer
        self.scored = []  # paths scored by this rank in 'candidate' mode
        step = self.model.val_step

        def logged_val_step(batch):
            if not self.scored or self.scored[-1] != self.model.backbone.arch:
                self.scored.append(self.model.backbone.arch)
            return step(batch)

        self.model.val_step = logged_val_step


def strip_timing(rows):
    return [{k: v for k, v in r.items()
             if k not in ('calib_seconds', 'eval_seconds')} for r in rows]


def test_candidate_mode_scores_the_whole_split_locally(tmp_path):
    loop = new_loop(CandidateRunner(tmp_path), [],
                    max_generations=2, population_size=6,
                    top_k=2, num_mutation=2, num_crossover=2,
                    calibrate_bn=False, seed=1,
                    parallel='candidate')
    loop.run()
    assert loop.runner.evaluated == []  # the val loop never ran
    assert len(loop.runner.scored) == 12
    for r in loop.records:
        assert r['score'] == score_of(tuple(r['arch']))
        assert r['metrics']['coco/n_images'] == 3.0
    with pytest.raises(ValueError, match='parallel'):
        make_loop(tmp_path, parallel='model')


def _dist_worker(rank, world, port, work_dir, cfg, out):
    import torch.distributed as tdist
    tdist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                             rank=rank, world_size=world)
    try:
        runner = CandidateRunner(work_dir)
        kill_at = cfg.pop('kill_at', None)
        if kill_at is not None and rank == world - 1:
            score = runner.model.val_step

            def dying(batch):  # on the first batch of a new candidate
                if len(runner.scored) == kill_at and \
                        runner.scored[-1] != runner.model.backbone.arch:
                    raise RuntimeError('killed')
                return score(batch)

            runner.model.val_step = dying
        loop = new_loop(runner, [], **cfg)
        try:
            loop.run()
            status = 'ok'
        except RuntimeError as e:
            status = str(e)
        with open(f'{out}.{rank}', 'w') as f:
            json.dump(dict(status=status, parallel=loop.parallel,
                           scored=runner.scored,
                           val_loop=runner.evaluated), f)
    finally:
        # as the tools end: a barrier on the search's object group, then
        # every group torn down
        from mmdetnas.utils.dist import finalize_dist
        finalize_dist()


def run_dist(work_dir, world, **kw):
    """Run the loop in ``world`` gloo processes; returns each rank's
    status, mode, paths scored locally and paths seen by the val loop."""
    import socket

    import torch.multiprocessing as mp
    cfg = dict(max_generations=3, population_size=5, top_k=2,
               num_mutation=2, num_crossover=1, calibrate_bn=False, seed=3)
    cfg.update(kw)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    out = str(work_dir / 'rank')
    mp.spawn(_dist_worker, args=(world, port, str(work_dir), cfg, out),
             nprocs=world)
    res = []
    for r in range(world):
        with open(f'{out}.{r}') as f:
            res.append(json.load(f))
    return res


@pytest.mark.parametrize('parallel', ['candidate', 'data'])
def test_two_processes_equal_one(tmp_path, parallel):
    one, two = tmp_path / 'one', tmp_path / 'two'
    one.mkdir()
    two.mkdir()
    r1 = run_dist(one, 1, parallel=parallel)
    default = None if parallel == 'candidate' else parallel
    r2 = run_dist(two, 2, parallel=default)
    assert [r['status'] for r in r1 + r2] == ['ok'] * 3
    assert r2[0]['parallel'] == r2[1]['parallel'] == parallel
    rows1 = read_jsonl(one / 'candidates.jsonl')
    rows2 = read_jsonl(two / 'candidates.jsonl')
    assert len(rows1) == 15
    assert strip_timing(rows1) == strip_timing(rows2)
    assert (one / 'best_arch.yaml').read_text() == \
        (two / 'best_arch.yaml').read_text()
    archs = [r['arch'] for r in rows1]
    if parallel == 'candidate':
        # every candidate scored once, by one rank: j-th of a batch of 2
        # on rank j
        for rank in (0, 1):
            assert r2[rank]['val_loop'] == []
            assert r2[rank]['scored'] == [
                a for i, a in enumerate(archs) if
                (i - _gen_start(rows1, i)) % 2 == rank]
    else:  # both ranks evaluate every candidate together
        for rank in (0, 1):
            assert r2[rank]['val_loop'] == archs
            assert r2[rank]['scored'] == []


def _gen_start(rows, i):
    """Index of the first candidate of candidate ``i``'s generation."""
    return min(j for j, r in enumerate(rows)
               if r['generation'] == rows[i]['generation'])


def test_two_processes_resume_after_a_failure(tmp_path):
    full, work = tmp_path / 'full', tmp_path / 'work'
    full.mkdir()
    work.mkdir()
    run_dist(full, 2)
    # batches of 2 in generations of 5: rank 1 scores candidates 1, 3, 6,
    # 8, ...; it dies on its 4th (candidate 8, batch [7, 8]): candidates
    # 0-6 are recorded
    res = run_dist(work, 2, kill_at=3)
    assert all('killed' in r['status'] for r in res)
    with open(work / 'search_state.pkl', 'rb') as f:
        assert len(pickle.load(f)['records']) == 7
    res = run_dist(work, 2, resume=True)
    assert [r['status'] for r in res] == ['ok', 'ok']
    # only the batch in flight was lost and re-done
    assert sum(len(r['scored']) for r in res) == 15 - 7
    assert strip_timing(read_jsonl(work / 'candidates.jsonl')) == \
        strip_timing(read_jsonl(full / 'candidates.jsonl'))
    assert (work / 'best_arch.yaml').read_text() == \
        (full / 'best_arch.yaml').read_text()


# --------------------------------------------------------- visual backends
def test_candidate_scalars_reach_the_visual_backends(tmp_path):
    from mmengine.registry import VISUALIZERS
    vis = VISUALIZERS.build(dict(
        type='Visualizer', name='search_vis_test',
        vis_backends=[dict(type='LocalVisBackend')],
        save_dir=str(tmp_path / 'vis')))
    runner = CandidateRunner(tmp_path, visualizer=vis)
    loop = new_loop(runner, [], max_generations=2,
                    population_size=5, top_k=2, num_mutation=2,
                    num_crossover=1, calibrate_bn=False, seed=2,
                    parallel='candidate')
    loop.run()
    with open(tmp_path / 'vis' / 'vis_data' / 'scalars.json') as f:
        logged = [json.loads(x) for x in f if x.strip()]
    rows = read_jsonl(tmp_path / 'candidates.jsonl')
    assert [e['step'] for e in logged] == list(range(10))
    best = -1.0
    for e, r in zip(logged, rows):
        best = max(best, score_of(tuple(r['arch'])))
        assert e['search/score'] == pytest.approx(r['score'])
        assert e['search/flops'] == arch_flops(SPACE, tuple(r['arch']))
        assert e['search/generation'] == r['generation']
        assert e['search/best'] == pytest.approx(best)
        assert 'search/latency_ms' not in e  # not measured


def test_a_new_search_in_a_used_work_dir_starts_over(tmp_path):
    first, _ = make_loop(tmp_path, max_generations=1)
    first.run()
    second, runner = make_loop(tmp_path, max_generations=1, seed=2)
    second.run()
    rows = read_jsonl(tmp_path / 'candidates.jsonl')
    # only the second search's candidates, each once
    assert [tuple(r['arch']) for r in rows] == runner.evaluated
    assert [r['index'] for r in rows] == list(range(10))
    with open(tmp_path / 'search_state.pkl', 'rb') as f:
        assert len(pickle.load(f)['records']) == 10
    # the first search is kept whole, and --resume there continues it
    earlier, = tmp_path.glob('earlier_search_*')
    first_rows = read_jsonl(earlier / 'candidates.jsonl')
    assert len(first_rows) == 10
    assert {p.name for p in earlier.iterdir()} >= {
        'search_state.pkl', 'candidates.jsonl', 'best_arch.yaml'}
    third, runner3 = make_loop(earlier, max_generations=1, resume=True)
    third.run()
    assert runner3.evaluated == []  # nothing scored again
    assert read_jsonl(earlier / 'candidates.jsonl') == first_rows


class TinySpaceRunner(FakeRunner):
    """A space of 2 ** 4 = 16 architectures: a search of 4 generations of
    10 runs out of new candidates and stops early."""

    def __init__(self, work_dir):
        super().__init__(work_dir)
        self.model = nn.Sequential(DetNASShuffleNetV2(search_space=dict(
            name='tiny', stem_channels=8, stage_channels=[16, 32, 64, 128],
            stage_blocks=[1, 1, 1, 1], last_channels=256,
            choices=['shuffle_3x3', 'shuffle_7x7'])))
        self.val_loop = FakeValLoop(self.model[0], self.evaluated)


def test_resume_after_an_early_stop_changes_nothing(tmp_path):
    cfg = dict(max_generations=4, population_size=10, top_k=3,
               num_mutation=4, num_crossover=3, calibrate_bn=False, seed=1,
               dataloader=[])
    runner = TinySpaceRunner(tmp_path)
    new_loop(runner, **cfg).run()
    assert len(set(runner.evaluated)) == len(runner.evaluated) <= 16
    with open(tmp_path / 'search_state.pkl', 'rb') as f:
        before = pickle.load(f)
    assert before['pending'] == [] and before['generation'] < 4
    lines = read_jsonl(tmp_path / 'candidates.jsonl')
    for _ in range(2):
        again = TinySpaceRunner(tmp_path)
        new_loop(again, resume=True, **cfg).run()
        assert again.evaluated == []
        with open(tmp_path / 'search_state.pkl', 'rb') as f:
            after = pickle.load(f)
        # no generation closed or proposed again
        assert (after['generation'], after['history'],
                after['pending']) == (before['generation'],
                                      before['history'], [])
        assert read_jsonl(tmp_path / 'candidates.jsonl') == lines


class PrefixMetric(ScoreMetric):
    """Records the ``outfile_prefix`` it computes with."""
    seen = []

    def __init__(self, outfile_prefix):
        super().__init__()
        self.outfile_prefix = outfile_prefix

    def compute_metrics(self, results):
        PrefixMetric.seen.append(self.outfile_prefix)
        return super().compute_metrics(results)


@pytest.mark.parametrize('world,expected', [(1, 'out/res'),
                                            (2, 'out/res.rank1')])
def test_candidate_mode_ranks_never_share_a_result_file(
        tmp_path, monkeypatch, world, expected):
    """Each rank scores its own candidate at the same time: a metric that
    writes and reads back ``{outfile_prefix}.bbox.json`` (CocoMetric) must
    not read another rank's file."""
    from mmdetnas.engine.loops import evolution_search_loop as esl
    runner = CandidateRunner(tmp_path)
    runner.val_loop.evaluator = Evaluator(PrefixMetric('out/res'))
    loop = new_loop(runner, [], max_generations=1, population_size=2,
                    top_k=1, num_mutation=0, num_crossover=0,
                    calibrate_bn=False, seed=1, parallel='candidate')
    monkeypatch.setattr(esl, 'get_world_size', lambda: world)
    monkeypatch.setattr(esl, 'get_rank', lambda: 1)
    PrefixMetric.seen.clear()
    runner.model.backbone.set_arch(('shuffle_3x3', ) * 20)
    metrics = loop.evaluate_locally()
    assert PrefixMetric.seen == [expected]
    assert metrics['coco/n_images'] == 3.0
    # the configured prefix is restored for the next candidate
    assert runner.val_loop.evaluator.metrics[0].outfile_prefix == 'out/res'


def test_resume_refuses_another_supernet(tmp_path):
    """A resumed search must not mix scores of two supernets: the state
    records the checkpoint's content; a copy under another path is the
    same supernet."""
    ckpt = tmp_path / 'supernet.pth'
    ckpt.write_bytes(b'weights A')
    work = tmp_path / 'search'
    loop, runner = make_loop(work, max_generations=1)
    runner.cfg = dict(load_from=str(ckpt))
    loop.run()
    copy = tmp_path / 'copy.pth'
    copy.write_bytes(b'weights A')
    same, runner = make_loop(work, max_generations=2, resume=True)
    runner.cfg = dict(load_from=str(copy))
    same.run()
    assert len(runner.evaluated) == 10  # generation 2 only
    ckpt.write_bytes(b'weights B')  # re-trained in place
    other, runner = make_loop(work, max_generations=3, resume=True)
    runner.cfg = dict(load_from=str(ckpt))
    with pytest.raises(RuntimeError, match='supernet_sha256'):
        other.run()
    assert runner.evaluated == []


# ------------------------------------------------------ latency table
def hand_table(path, shape=(800, 1333), weights=None):
    """A complete latency table of the 300M space written by hand: layer
    ``i`` choice ``c`` costs ``weights[c] * (i + 1)`` ms, stem 1 ms, no
    call overhead, no calibration paths (scale 1)."""
    from mmdetnas.deploy import LatencyTable
    weights = weights or {'shuffle_3x3': 0.1, 'shuffle_5x5': 0.2,
                          'shuffle_7x7': 0.4, 'shuffle_xception': 0.3}
    entries = {'stem': dict(ms=1.0)}
    layer_keys = []
    for i in range(SPACE.num_layers):
        keys = {c: f'{c} L{i}' for c in SPACE.choices}
        for c, k in keys.items():
            entries[k] = dict(ms=weights[c] * (i + 1))
        layer_keys.append(keys)
    t = LatencyTable(dict(search_space=SPACE.to_dict(), shape=list(shape),
                          batch=1, backend='onnxruntime',
                          backend_version='1.0', device='cpu: hand',
                          threads=1, parts=['stem'], layer_keys=layer_keys),
                     entries, complete=True)
    t.save(str(path))

    def latency(arch):
        return 1.0 + sum(weights[c] * (i + 1) for i, c in enumerate(arch))
    return latency


def test_latency_table_constraint_and_objective(tmp_path):
    table = tmp_path / 'table.json'
    latency = hand_table(table)
    # half of the range between all-3x3 and all-7x7
    bound = latency(['shuffle_3x3'] * 20) + 0.5 * (
        latency(['shuffle_7x7'] * 20) - latency(['shuffle_3x3'] * 20))
    loop, runner = make_loop(tmp_path / 'w', latency_table=str(table),
                             latency=(None, bound), multi_objective=True,
                             cost_key='latency_ms', max_generations=2)
    loop.run()
    rows = read_jsonl(tmp_path / 'w' / 'candidates.jsonl')
    assert len(rows) == 20
    for r in rows:
        assert r['latency_ms'] == pytest.approx(latency(r['arch']))
        assert r['latency_ms'] <= bound
        assert r['latency_backend'] == 'onnxruntime 1.0 (table)'
        assert r['latency_device'] == 'cpu: hand'
    with open(tmp_path / 'w' / 'pareto.yaml') as f:
        pareto = yaml.safe_load(f)
    assert pareto['objectives'][1] == 'min latency_ms'
    pts = [(r['score'], r['latency_ms']) for r in rows]
    for e in pareto['front']:  # non-dominated, by hand
        assert e['latency_backend'] == 'onnxruntime 1.0 (table)'
        assert not any(s >= e['score'] and c <= e['latency_ms'] and
                       (s > e['score'] or c < e['latency_ms'])
                       for s, c in pts)
    with open(tmp_path / 'w' / 'best_arch.yaml') as f:
        assert 'cpu: hand' in f.read()
    # a resumed search with another table is refused
    other = tmp_path / 'other.json'
    hand_table(other, weights={'shuffle_3x3': 1.0, 'shuffle_5x5': 2.0,
                               'shuffle_7x7': 4.0, 'shuffle_xception': 3.0})
    with open(other) as f:
        t2 = json.load(f)
    t2['built_for']['device'] = 'cpu: another'
    with open(other, 'w') as f:
        json.dump(t2, f)
    again, _ = make_loop(tmp_path / 'w', latency_table=str(other),
                         latency=(None, bound), multi_objective=True,
                         cost_key='latency_ms', max_generations=3,
                         resume=True)
    with pytest.raises(RuntimeError, match='latency_table'):
        again.run()


@pytest.mark.parametrize('spec,message', [
    (dict(backend='openvino'), "backend: the table is for 'onnxruntime'"),
    (dict(device='cpu: other'), "device: the table is for 'cpu: hand'"),
    (dict(shape=(64, 64)), 'input shape'),
])
def test_latency_table_for_another_setting_is_refused(tmp_path, spec,
                                                      message):
    from mmdetnas.deploy import LatencyTableError
    table = tmp_path / 'table.json'
    hand_table(table, shape=spec.pop('shape', (800, 1333)))
    with pytest.raises(LatencyTableError, match=message):
        make_loop(tmp_path / 'w', latency_table=dict(file=str(table), **spec),
                  latency=(None, 100.0))
    assert not osp.exists(tmp_path / 'w' / 'candidates.jsonl')
