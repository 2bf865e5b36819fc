"""SM-NAS structural search: the space, its compatibility rules, the shared
engine's Pareto front, and resume of the search (a scoring function stands
in for training)."""
import copy
import itertools
import json
import os.path as osp
import random

import pytest
import torch
from mmengine.config import Config

from mmdetnas.search.population import Population
from mmdetnas.spaces import PathSpace
from mmdetnas.spaces.structural_space import StructuralSearchSpace
from mmdetnas.utils.setup_env import register_all_modules
from tests.e2e_utils import ROOT, SearchRun

CONFIG = osp.join(ROOT, 'configs', 'smnas',
                  'smnas_structural_faster-rcnn_mixed_fpn_quick_neon-trees.py')


@pytest.fixture(scope='module')
def cfg():
    register_all_modules()
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    return Config.fromfile(CONFIG)


@pytest.fixture(scope='module')
def space(cfg):
    return StructuralSearchSpace.from_cfg(cfg.structural_space)


def _all_genomes(space):
    """Every valid genome, enumerated by hand from the components and
    their ``when`` rules (independent of random/repair)."""
    names = space.names
    out = []
    for combo in itertools.product(*[list(space.components[n]) + [None]
                                     for n in names]):
        g = dict(zip(names, combo))
        ok = True
        for n in names:
            applies = all(g[o] in allowed
                          for o, allowed in space.when[n].items())
            if applies != (g[n] is not None):
                ok = False
        if ok:
            out.append(g)
    return out


# ------------------------------------------------------------ definition
@pytest.mark.parametrize('components, match', [
    ({}, 'at least one component'),
    (dict(a=dict(choices={})), "'a' has no choices"),
    (dict(a=dict(choices=dict(x=3))), 'a.x: a choice is a dict'),
    (dict(a=dict(choices=dict(x=dict(cfgg={})))), r"unknown field\(s\)"),
    (dict(a=dict(choices=dict(x={}), when=dict(b=['y']))),
     'must name an earlier component'),
    (dict(b=dict(choices=dict(y={})),
          a=dict(choices=dict(x={}), when=dict(b=['z']))),
     r"unknown choice\(s\) \['z'\]"),
])
def test_bad_space_definitions(components, match):
    with pytest.raises(ValueError, match=match):
        StructuralSearchSpace(components)


def test_validate_names_the_bad_gene(space):
    good = dict(backbone='r18', neck='fpn64', head='two_stage',
                roi_head='conv4fc1', input_size='s256')
    assert space.validate(good) == good
    with pytest.raises(ValueError, match="backbone='r99'"):
        space.validate(dict(good, backbone='r99'))
    with pytest.raises(ValueError, match='roi_head=None'):
        space.validate(dict(good, roi_head=None))
    with pytest.raises(ValueError, match='does not apply'):
        space.validate(dict(good, head='fcos'))  # roi_head must be None
    with pytest.raises(ValueError, match='unknown component'):
        space.validate(dict(good, rpn='ga'))


def test_sampling_covers_exactly_the_valid_structures(space):
    valid = {space.key(g) for g in _all_genomes(space)}
    # 3 backbones x 3 necks x (2 RoI heads + 3 one-stage heads) x 2 sizes
    assert len(valid) == 3 * 3 * 5 * 2
    rng = random.Random(0)
    drawn = {space.key(space.random(rng)) for _ in range(2000)}
    assert drawn == valid


def test_mutation_and_crossover_stay_inside(space):
    rng = random.Random(1)
    valid = {space.key(g) for g in _all_genomes(space)}
    for _ in range(500):
        a, b = space.random(rng), space.random(rng)
        child = space.mutate(a, rng)
        assert space.key(child) in valid and child != a
        # exactly one gene that both apply to was re-drawn
        both = [n for n in space.names
                if a[n] is not None and child[n] is not None]
        assert sum(a[n] != child[n] for n in both) == 1
        mix = space.crossover(a, b, rng)
        assert space.key(mix) in valid
        # a gene both parents share and the child applies is inherited
        for n in space.names:
            if a[n] == b[n] and mix[n] is not None and a[n] is not None:
                assert mix[n] == a[n]


def test_every_structure_builds_and_runs(cfg, space):
    """Rules 2-4 checked by running what they wire: the backbone's real
    output channels are the neck's inputs, the neck's width feeds the heads
    (a mismatch fails the forward), every head has the dataset's classes,
    one-stage detectors have no RPN/RoI head, and the chosen scale is in
    every pipeline."""
    from mmdet.registry import MODELS
    from mmdetnas.search.model_cost import _dummy_samples
    rng = random.Random(2)
    genomes = _all_genomes(space)
    rng.shuffle(genomes)
    for g in genomes[:18]:
        c = space.build_config(cfg, g)
        model = MODELS.build(c.model).eval()
        x = torch.zeros(1, 3, 64, 64)
        with torch.no_grad():
            feats = model.backbone(x)
            assert [f.shape[1] for f in feats] == list(
                c.model.neck.in_channels)
            outs = model.neck(feats)
            assert {o.shape[1] for o in outs} == {c.model.neck.out_channels}
            model(x, _dummy_samples((64, 64), 1), mode='tensor')
        one_stage = g['head'] in ('retinanet', 'fcos', 'atss')
        assert ('rpn_head' in c.model) != one_stage
        assert ('roi_head' in c.model) != one_stage
        heads = [c.model.bbox_head] if one_stage else (
            c.model.roi_head.bbox_head
            if isinstance(c.model.roi_head.bbox_head, list)
            else [c.model.roi_head.bbox_head])
        assert {h.num_classes for h in heads} == {1}
        scale = dict(s256=(256, 256), s320=(320, 320))[g['input_size']]
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader'):
            resizes = [t for t in c[loader].dataset.pipeline
                       if 'Resize' in t.type]
            assert resizes and all(tuple(t.scale) == scale
                                   for t in resizes)
    # the base config is never modified
    assert cfg.model.backbone.type == 'ResNet'
    assert 'rpn_head' in cfg.model


# ------------------------------------------------------------ the engine
def _dominated(p, q):
    """q dominates p: q no worse in both (score up, cost down), better in
    one."""
    return (q[0] >= p[0] and q[1] <= p[1]) and (q[0] > p[0] or q[1] < p[1])


def test_pareto_front_on_a_known_set(tmp_path):
    rng = random.Random(3)
    pts = [(round(rng.random(), 2), rng.randint(1, 20)) for _ in range(40)]
    pts += [(0.5, 5), (0.5, 5)]  # duplicates are both on or both off
    # the front reads only scores and costs; the space is any one
    eng = Population(str(tmp_path), PathSpace('300M'), 'g',
                       score_key='s', cost_key='c', multi_objective=True)
    for i, (s, c) in enumerate(pts):
        eng.records.append(dict(g=[i], score=s, c=c, generation=0))
    eng.records.append(dict(g=[99], score=2.0, c=0, generation=0,
                            feasible=False))  # outside the constraints
    expected = sorted(
        i for i, p in enumerate(pts)
        if not any(_dominated(p, q) for q in pts))
    got = sorted(r['g'][0] for r in eng.front())
    assert got == expected
    costs = [r['c'] for r in eng.front()]
    assert costs == sorted(costs)
    assert eng.best()['score'] == max(s for s, _ in pts)


# --------------------------------------------------------------- resume
class _Killed(Exception):
    pass


def _scored_search(cfg, work_dir, resume=False, kill_at=None):
    """A StructuralSearch whose candidates are scored by a fixed function
    of the structure instead of training."""
    from mmdetnas.engine.loops import StructuralSearchLoop

    class Scored(StructuralSearchLoop):

        def evaluate(self, genome):
            index = len(self.records)
            if kill_at is not None and index == kill_at:
                raise _Killed()
            c = self.candidate_config(genome, index)
            path = osp.join(c.work_dir, 'config.py')
            import os
            os.makedirs(c.work_dir, exist_ok=True)
            c.dump(path)
            key = self.space.key(genome)
            score = (sum(map(ord, str(key))) % 97) / 97
            latency = 10.0 + (sum(map(ord, str(key[::-1]))) % 53)
            return dict(index=index, generation=self.generation,
                        choices=dict(genome), name=self.space.label(genome),
                        config=path, score=score, metrics={'s': score},
                        latency_ms=latency, flops=1, params=1,
                        train_seconds=0.0, feasible=True)

    c = copy.deepcopy(cfg)
    c.train_cfg.update(population_size=4, max_generations=3,
                       num_mutation=2, num_crossover=1, top_k=2)
    return SearchRun(c, work_dir, Scored, resume=resume)


def _refused(cfg, work_dir, resume):
    """Run ``cfg`` as tools/search.py does (it must be refused)."""
    from mmdetnas.apis.search import run_search
    c = copy.deepcopy(cfg)
    c.work_dir = str(work_dir)
    run_search(c, resume=resume)


def _lines(work_dir):
    with open(osp.join(work_dir, 'candidates.jsonl')) as f:
        rows = [json.loads(x) for x in f]
    return [(r['index'], r['generation'], r['choices'], r['score'])
            for r in rows]


def test_resume_equals_an_uninterrupted_run(cfg, tmp_path):
    full = tmp_path / 'full'
    _scored_search(cfg, full).run()
    assert len(_lines(full)) == 12
    for kill_at in (2, 4, 9):  # inside generation 1, at its border, later
        wd = tmp_path / f'killed_{kill_at}'
        with pytest.raises(_Killed):
            _scored_search(cfg, wd, kill_at=kill_at).run()
        assert len(_lines(wd)) == kill_at
        _scored_search(cfg, wd, resume=True).run()
        assert _lines(wd) == _lines(full), kill_at
        for name in ('pareto.yaml', 'pareto.png', 'search_curve.png'):
            assert osp.getsize(wd / name) > 0
        fronts = sorted(p.name for p in (wd / 'front').iterdir())
        assert fronts == sorted(p.name for p in (full / 'front').iterdir())
    # a state written for another space is refused
    other = copy.deepcopy(cfg)
    other.structural_space.components.input_size.choices.pop('s256')
    with pytest.raises(RuntimeError, match='was written with'):
        _scored_search(other, tmp_path / 'full', resume=True).run()


# ------------------------------------------------- checked before training
def test_an_unregistered_type_is_refused_before_any_training(cfg, tmp_path):
    """A neck choice naming ``FPNN``: refused when the search is built,
    naming the component, the choice and the close registered name; no
    candidate trained, nothing written; --resume is refused the same
    way (it used to propose the same candidate and die again)."""
    bad = copy.deepcopy(cfg)
    bad.structural_space.components.neck.choices['fpnn'] = dict(
        cfg=dict(model=dict(neck=dict(type='FPNN'))))
    for resume in (False, True):
        wd = tmp_path / f'r{int(resume)}'
        with pytest.raises(ValueError) as e:
            _refused(bad, wd, resume)
        msg = str(e.value)
        assert 'neck.fpnn' in msg and "'FPNN'" in msg and "'FPN'" in msg
        assert not wd.exists() or not any(wd.iterdir())


def test_a_misplaced_space_key_is_refused(cfg):
    """``neck=dict(...)`` beside ``components=`` used to be ignored: the
    search ran the unchanged space."""
    sp = cfg.structural_space.to_dict()
    sp['neck'] = dict(choices=dict(fpn8=dict()))
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['neck'\].*"
                       r"inside components="):
        StructuralSearchSpace.from_cfg(sp)
    comps = cfg.structural_space.to_dict()['components']
    comps['neck']['choise'] = {}
    with pytest.raises(ValueError, match=r"'neck': unknown key\(s\) "
                       r"\['choise'\]"):
        StructuralSearchSpace(comps)


def test_the_space_size_is_counted_by_hand(space):
    assert space.size() == len(_all_genomes(space))
    assert sorted(map(space.key, space.structures())) == sorted(
        map(space.key, _all_genomes(space)))


def test_a_population_larger_than_the_space_says_why_it_stopped(
        cfg, tmp_path):
    """Two structures, population 5: a warning at the start, and the stop
    names the exhausted space (not the constraints: none are set)."""
    small = copy.deepcopy(cfg)
    comps = small.structural_space.components
    small.structural_space.components = dict(
        backbone=dict(choices=dict(r18=comps.backbone.choices.r18)),
        neck=dict(choices={k: comps.neck.choices[k]
                           for k in list(comps.neck.choices)[:2]}))
    small.train_cfg.init = []
    search = _scored_search(small, tmp_path)
    assert search.space_size == 2
    search.population.population_size = 5
    search.population.num_mutation = search.population.num_crossover = 1
    search.run()
    log = (tmp_path / 'search.log').read_text()
    assert 'population_size=5 is larger than the search space (2 ' \
        'structures)' in log
    assert 'all 2 structures of the search space have been trained; ' \
        'stopping' in log
    assert 'fits the constraints' not in log


def test_settings_and_score_key_are_checked_before_training(cfg, tmp_path):
    """``population_size=0`` is blamed on itself; a misspelt score key is
    refused against the evaluator's metric names, with the close one;
    nothing is written (the search run as tools/search.py runs it)."""
    from mmdetnas.apis.search import run_search
    from tests.e2e_utils import make_tiny_coco
    bad = copy.deepcopy(cfg)
    bad.work_dir = str(tmp_path / 'a')
    bad.train_cfg.update(population_size=0, num_mutation=1, num_crossover=1)
    with pytest.raises(ValueError, match=r'train_cfg\.'
                       r'population_size must be an int >= 1.*got 0'):
        run_search(bad)
    assert not (tmp_path / 'a').exists()
    coco = make_tiny_coco(str(tmp_path / 'coco'))
    bad = copy.deepcopy(cfg)
    bad.work_dir = str(tmp_path / 'b')
    bad.val_evaluator.ann_file = coco['val']
    bad.train_cfg.score_key = 'coco/bbox_mAP50'
    with pytest.raises(ValueError) as e:
        run_search(bad)
    assert "'coco/bbox_mAP50'" in str(e.value)
    assert "'coco/bbox_mAP_50'" in str(e.value)
    assert not (tmp_path / 'b').exists()
    # a checkpoint is refused: this search trains its candidates
    with pytest.raises(ValueError, match='takes no checkpoint'):
        run_search(copy.deepcopy(cfg), checkpoint='supernet.pth')
