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

from mmdetnas.engine.loops import EvolutionSearchLoop
from mmdetnas.models.backbones import DetNASShuffleNetV2
from mmdetnas.search import PRESETS, arch_flops, load_arch_file

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
        self._load_from = 'supernet.pth'

    def call_hook(self, name, **kwargs):
        self.hook_calls.append(name)


def make_loop(work_dir, **kwargs):
    runner = FakeRunner(work_dir)
    cfg = dict(max_generations=4, population_size=10, top_k=3,
               num_mutation=4, num_crossover=3, calibrate_bn=False, seed=1)
    cfg.update(kwargs)
    return EvolutionSearchLoop(runner, dataloader=[], **cfg), runner


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
    loop, runner = make_loop(tmp_path, flops=(1e9, None))
    with pytest.raises(RuntimeError) as e:
        loop.run()
    msg = str(e.value)
    assert 'no candidate satisfies' in msg
    assert 'flops in [1e+09' in msg and 'flops seen [' in msg
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
