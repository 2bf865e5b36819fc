"""SM-NAS modular search: the backbone-code space, the configs it builds,
and the search driver shared with the structural stage (resume, front),
with a scoring function standing in for training."""
import copy
import json
import os
import os.path as osp
import random

import pytest
import torch
from mmengine.config import Config

from mmdetnas.spaces.code_space import ModularSearchSpace
from mmdetnas.spaces.resnet_code import code_macs, parse_code
from mmdetnas.utils.setup_env import register_all_modules
from tests.e2e_utils import ROOT, SearchRun

CONFIG = osp.join(
    ROOT, 'configs', 'smnas',
    'smnas_modular_faster-rcnn_code-gnws_fpn_quick_neon-trees.py')


@pytest.fixture(scope='module')
def cfg():
    register_all_modules()
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    return Config.fromfile(CONFIG)


@pytest.fixture(scope='module')
def space(cfg):
    return ModularSearchSpace.from_cfg(
        dict(cfg.modular_space, input_size=(400, 400)))


# ------------------------------------------------------------------ space
def test_validate_canonical_and_errors(space):
    assert space.validate('r18_64_11-21-21-21') == 'r18_64_11-21-21-21'
    code = parse_code('r18_32_1-2-2-2')
    assert space.validate(code) == 'r18_32_1-2-2-2'
    with pytest.raises(ValueError, match='position 11'):
        space.validate('r18_64_11-2x-21-21')
    with pytest.raises(ValueError, match='depth 50'):
        space.validate('r50_64_11-21-21-21')
    # 11 blocks: more than max_blocks=10
    with pytest.raises(ValueError, match='outside the modular space'):
        space.validate('r18_64_11111-21-21-21')
    # 10 blocks but 1.257x the MACs of ResNet-18 (window up to 1.25)
    with pytest.raises(ValueError, match='FLOPs'):
        space.validate('r18_64_1111-21-21-21')
    with pytest.raises(ValueError, match='outside the modular space'):
        space.validate('r18_56_11-21-21-21')  # base 56 is not allowed
    with pytest.raises(ValueError, match='unknown_option'):
        ModularSearchSpace.from_cfg(dict(depth=18, unknown_option=1))
    with pytest.raises(ValueError, match='depth: expected one of'):
        ModularSearchSpace(depth=20)


def test_draws_stay_inside_the_limits(space):
    rng = random.Random(0)
    plain = code_macs('r18_64_11-21-21-21', (400, 400))
    codes = [space.random(rng) for _ in range(100)]
    for _ in range(200):
        a, b = rng.sample(codes, 2)
        codes += [space.mutate(a, rng), space.crossover(a, b, rng)]
    for text in codes:
        c = parse_code(text)  # canonical strings that parse
        assert str(c) == text and c.depth == 18
        assert 4 <= c.num_blocks <= 10
        assert c.base_channels in (32, 48, 64)
        assert c.blocks.count('2') == 3
        assert 0.1 <= code_macs(c, (400, 400)) / plain <= 1.25
    assert len(set(codes)) > 50  # the operators explore


def test_build_config_puts_the_code_and_its_channels(cfg, space):
    from mmdet.registry import MODELS
    base = copy.deepcopy(cfg)
    for k in ('modular_space', ):
        base.pop(k)
    # by hand: base 32; stage 1 '11' keeps 32, stage 2 widens once (64),
    # stage 3 '12' widens at its 2nd block (128), stage 4 widens (256)
    built = space.build_config(base, 'r18_32_11-2-12-2')
    assert built.model.backbone.type == 'mmdetnas.SMNASResNet'
    assert built.model.backbone.arch == 'r18_32_11-2-12-2'
    assert built.model.backbone.norm_cfg.num_groups == 'half_base'
    assert built.model.backbone.conv_cfg.type == 'ConvWS'
    assert built.model.backbone.init_cfg is None
    assert list(built.model.neck.in_channels) == [32, 64, 128, 256]
    # the base is not modified
    assert base.model.backbone.arch == 'r18_64_11-21-21-21'
    model = MODELS.build(built.model).eval()
    gn = [m for m in model.backbone.modules()
          if isinstance(m, torch.nn.GroupNorm)]
    assert gn and all(m.num_groups == 16 for m in gn)  # base / 2
    with torch.no_grad():
        feats = model.backbone(torch.rand(1, 3, 64, 64))
        outs = model.neck(feats)
    assert [f.shape[1] for f in feats] == [32, 64, 128, 256]
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2]
    assert all(o.shape[1] == 64 for o in outs)
    # out_indices chosen in the space: the neck gets those stages only
    sub = ModularSearchSpace(depth=18, min_blocks=4, max_blocks=10,
                             base_channels=(32, ),
                             backbone=dict(out_indices=(1, 2, 3)))
    built = sub.build_config(base, 'r18_32_11-2-12-2')
    assert list(built.model.neck.in_channels) == [64, 128, 256]


def test_search_reads_the_input_size_from_the_test_pipeline(cfg, tmp_path):
    s = SearchRun(cfg, tmp_path)
    assert s.space.input_size == (400, 400)  # test Resize scale (w, h)
    # a candidate's config: its own work dir, the search seed, the code,
    # the fast schedule as its train_cfg
    cand = s.candidate_config('r18_48_11-21-21-21', 5)
    assert cand.work_dir == osp.join(str(tmp_path), 'candidates', '005')
    assert cand.randomness.seed == cfg.train_cfg.seed
    assert cand.model.backbone.arch == 'r18_48_11-21-21-21'
    assert list(cand.model.neck.in_channels) == [48, 96, 192, 384]
    assert 'modular_space' not in cand
    assert cand.train_cfg == cfg.train_cfg.candidate_train_cfg
    with pytest.raises(KeyError, match='modular_space'):
        bad = copy.deepcopy(cfg)
        bad.pop('modular_space')
        SearchRun(bad, tmp_path / 'a')
    bad = copy.deepcopy(cfg)
    bad.train_cfg['popsize'] = 3
    with pytest.raises(TypeError, match='popsize'):
        SearchRun(bad, tmp_path / 'b')
    bad = copy.deepcopy(cfg)
    bad.train_cfg['init'] = ['r18_64_11-21-21']
    with pytest.raises(ValueError, match='position'):
        SearchRun(bad, tmp_path / 'c')


# ----------------------------------------------------------------- resume
class _Killed(Exception):
    pass


def _score(code: str):
    """A made-up, deterministic (score, latency) of a code."""
    c = parse_code(code)
    return ((sum(map(ord, code)) % 89) / 89,
            5.0 + c.num_blocks + c.base_channels / 16)


def _scored_search(cfg, work_dir, resume=False, kill_at=None):
    from mmdetnas.engine.loops import ModularSearchLoop

    class Scored(ModularSearchLoop):

        def evaluate(self, genome):
            index = len(self.records)
            if kill_at is not None and index == kill_at:
                raise _Killed()
            c = self.candidate_config(genome, index)
            os.makedirs(c.work_dir, exist_ok=True)
            path = osp.join(c.work_dir, 'config.py')
            c.dump(path)
            score, latency = _score(genome)
            return dict(index=index, generation=self.generation,
                        code=self.space.to_json(genome), name=genome,
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
        return [(r['index'], r['generation'], r['code'], r['score'])
                for r in map(json.loads, f)]


def test_resume_equals_an_uninterrupted_run_and_front(cfg, tmp_path):
    import yaml
    full = tmp_path / 'full'
    front = _scored_search(cfg, full).run()
    rows = _lines(full)
    assert len(rows) == 12 and len({r[2] for r in rows}) == 12
    assert [r[2] for r in rows[:2]] == list(cfg.train_cfg.init)
    for kill_at in (1, 4, 10):
        wd = tmp_path / f'killed_{kill_at}'
        with pytest.raises(_Killed):
            _scored_search(cfg, wd, kill_at=kill_at).run()
        _scored_search(cfg, wd, resume=True).run()
        assert _lines(wd) == rows, kill_at
    # the front, by hand: no other candidate is as good on both objectives
    pts = {r[2]: _score(r[2]) for r in rows}
    expected = {
        k for k, (s, t) in pts.items()
        if not any(s2 >= s and t2 <= t and (s2 > s or t2 < t)
                   for s2, t2 in pts.values())
    }
    assert {r['code'] for r in front} == expected
    with open(full / 'pareto.yaml') as f:
        entries = yaml.safe_load(f)['front']
    assert {e['code'] for e in entries} == expected
    for e in entries:  # each front config builds that backbone
        assert Config.fromfile(e['config']).model.backbone.arch == e['code']
    # a state written for another space is refused
    other = copy.deepcopy(cfg)
    other.modular_space['max_blocks'] = 9
    with pytest.raises(RuntimeError, match='was written with'):
        _scored_search(other, full, resume=True).run()


def test_a_new_search_in_a_used_work_dir_starts_over(cfg, tmp_path):
    """Without --resume the earlier search's state and candidates are
    moved aside (not mixed in), and no earlier candidate training is
    resumed; with --resume a candidate's own checkpoint is."""
    clean = tmp_path / 'clean'
    _scored_search(cfg, clean).run()
    used = tmp_path / 'used'
    _scored_search(cfg, used).run()
    first = _scored_search(cfg, used)
    stale = osp.join(used, 'candidates', '000', 'last_checkpoint')
    with open(stale, 'w') as f:
        f.write('iter_1.pth')
    assert first.candidate_config('r18_64_11-21-21-21', 0).resume is False
    first.run()
    assert _lines(used) == _lines(clean)  # 12 lines, not 24
    with open(osp.join(used, 'search.log')) as f:
        assert 'was moved to' in f.read()
    with open(stale, 'w') as f:
        f.write('iter_1.pth')
    open(osp.join(used, 'candidates', '000', 'iter_1.pth'), 'w').close()
    resumed = _scored_search(cfg, used, resume=True)
    assert resumed.candidate_config('r18_64_11-21-21-21', 0).resume is True
    # nothing of the earlier search was deleted: it is whole in a dated
    # folder, and --resume there continues it (its records point at the
    # moved candidate folders)
    earlier, = used.glob('earlier_search_*')
    assert _lines(earlier) == _lines(clean)
    for name in ('search_state.pkl', 'candidates', 'front', 'pareto.yaml',
                 'search.log'):
        assert (earlier / name).exists(), name
    again = _scored_search(cfg, earlier, resume=True)
    again.run()
    assert _lines(earlier) == _lines(clean)
    assert all(r['config'].startswith(str(earlier))
               for r in again.records)


def test_unknown_space_keys_are_refused_naming_them(cfg):
    sp = dict(cfg.modular_space)
    with pytest.raises(ValueError, match=r"modular_space: unknown key\(s\) "
                       r"\['max_block'\]; expected .*'max_blocks'"):
        ModularSearchSpace.from_cfg(dict(sp, max_block=9))
    with pytest.raises(ValueError, match=r"modular_space.backbone: unknown "
                       r"key\(s\) \['norm'\] for SMNASResNet; expected .*"
                       r"'norm_cfg'"):
        ModularSearchSpace.from_cfg(dict(sp, backbone=dict(norm=None)))
    with pytest.raises(ValueError, match="'ResNet'"):
        ModularSearchSpace.from_cfg(dict(sp, backbone=dict(type='ResNet')))


def test_an_unregistered_type_is_refused_before_any_training(cfg, tmp_path):
    """A base detector whose neck is ``FPNN``, and a backbone norm that
    does not exist: both refused when the search is built, naming the key
    path (and a close registered name), with nothing trained or written;
    --resume the same."""
    bad = copy.deepcopy(cfg)
    bad.model.neck.type = 'FPNN'
    for resume in (False, True):
        wd = tmp_path / f'r{int(resume)}'
        with pytest.raises(ValueError) as e:
            _refused(bad, wd, resume)
        msg = str(e.value)
        assert "model.neck.type='FPNN'" in msg and "'FPN'" in msg, msg
        assert 'before any training' in msg
        assert not wd.exists() or not any(wd.iterdir())
    bad = copy.deepcopy(cfg)
    bad.modular_space.backbone = dict(norm_cfg=dict(type='GNN'))
    with pytest.raises(ValueError, match=r"model.backbone.norm_cfg.type="
                       r"'GNN' is not a registered type"):
        _scored_search(bad, tmp_path / 'norm')
