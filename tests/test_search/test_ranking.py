"""Tests of the ranking statistics, the choice of architectures and the
resume logic of the ranking study (mmdetnas.search.ranking_study, run by
tools/analysis_tools/ranking_correlation.py; no training: the stand-alone
trainings are faked here; the real ones run in
tests/test_e2e/test_ranking_tool.py)."""
import argparse
import json
import math
import os
import os.path as osp
import random
import warnings

import numpy as np
import pytest
from scipy import stats

from mmdetnas.search import (arch_cost, archs_from_candidates, kendall_tau,
                             kendall_tau_test, rank_report,
                             select_archs_in_flops_band, spearman_rho,
                             supernet_agreement, topk_overlap)
from mmdetnas.search import ranking_study
from mmdetnas.spaces import PRESETS
from mmdetnas.spaces.path_space import random_arch

SPACE = PRESETS['300M']
BAND = (270e6, 300e6)


# ---------------------------------------------------------------- statistics
def _scipy_tau(x, y):
    return float(stats.kendalltau(x, y, variant='b')[0])


def _scipy_rho(x, y):
    return float(stats.spearmanr(x, y)[0])


CASES = [
    ([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]),
    ([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]),
    ([1, 2, 2, 3], [1, 3, 2, 2]),  # ties in both
    ([0.1, 0.4, 0.4, 0.4, 0.9, 0.2], [3, 1, 2, 2, 5, 0]),
    ([5, 1, 4, 2, 3], [2, 2, 1, 3, 3]),
]


@pytest.mark.parametrize('x,y', CASES)
def test_tau_rho_equal_scipy(x, y):
    assert kendall_tau(x, y) == pytest.approx(_scipy_tau(x, y), abs=1e-12)
    assert spearman_rho(x, y) == pytest.approx(_scipy_rho(x, y), abs=1e-12)
    assert isinstance(kendall_tau(x, y), float)
    assert isinstance(spearman_rho(x, y), float)


def test_tau_rho_equal_scipy_on_many_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(0, 4, 15).tolist()
        y = (np.asarray(x) + rng.integers(0, 3, 15)).tolist()
        assert kendall_tau(x, y) == pytest.approx(_scipy_tau(x, y), abs=1e-12)
        assert spearman_rho(x, y) == pytest.approx(
            _scipy_rho(x, y), abs=1e-12)


def test_tau_b_and_rho_by_hand():
    """x=[1,2,2,3], y=[1,3,2,2]: of the 6 pairs, 3 concordant, 1
    discordant, 1 tied in x only, 1 tied in y only, so tau-b =
    (3-1)/sqrt((6-1)(6-1)) = 0.4. Average ranks x=[1,2.5,2.5,4],
    y=[1,4,2.5,2.5]; deviations [-1.5,0,0,1.5] and [-1.5,1.5,0,0] give
    rho = 2.25 / 4.5 = 0.5."""
    x, y = [1, 2, 2, 3], [1, 3, 2, 2]
    assert kendall_tau(x, y) == pytest.approx(0.4)
    assert spearman_rho(x, y) == pytest.approx(0.5)
    # tau-a would be (3-1)/6: tau-b it is
    assert kendall_tau(x, y) != pytest.approx(2 / 6)


def test_constant_input_is_nan_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
        assert math.isnan(spearman_rho([1, 2, 3], [0.5, 0.5, 0.5]))
        assert math.isnan(kendall_tau([1], [2]))
        assert math.isnan(spearman_rho([], []))


def test_length_mismatch():
    with pytest.raises(ValueError, match='different lengths'):
        kendall_tau([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match='different lengths'):
        topk_overlap([1, 2], [1, 2, 3], 1)


@pytest.mark.parametrize(
    'pred,true,k,expected',
    [
        # top-2 true {0, 3}, top-2 pred {0, 1}
        ([0.9, 0.8, 0.1, 0.5], [10, 1, 5, 7], 2, 0.5),
        ([0.9, 0.8, 0.1, 0.5], [10, 1, 5, 7], 1, 1.0),
        ([0.9, 0.8, 0.1, 0.5], [10, 1, 5, 7], 3, 2 / 3),  # {0,1,3} {0,3,2}
        ([0.9, 0.8, 0.1, 0.5], [10, 1, 5, 7], 4, 1.0),
        ([1, 2, 3, 4], [4, 3, 2, 1], 2, 0.0),
        # ties broken by input order: pred top-1 is index 0, true top-1 is
        # index 1 (5 at indices 1 and 2)
        ([1, 1, 1, 0], [0, 5, 5, 1], 1, 0.0),
        # pred top-2 {0, 1}, true top-2 {1, 2}
        ([1, 1, 1, 0], [0, 5, 5, 1], 2, 0.5),
        # pred top-3 {0, 1, 2}, true top-3 {1, 2, 3}
        ([1, 1, 1, 0], [0, 5, 5, 1], 3, 2 / 3),
        # all tied in pred: the first k by input order
        ([0, 0, 0, 0], [1, 2, 3, 4], 2, 0.0),
        ([0, 0, 0, 0], [4, 3, 2, 1], 2, 1.0),
    ])
def test_topk_overlap_by_hand(pred, true, k, expected):
    assert topk_overlap(pred, true, k) == pytest.approx(expected)


def _pair_tau(x, y):
    # tau without ties, from the pairs: (concordant - discordant) / pairs
    n = len(x)
    c = sum(1 if (x[i] - x[j]) * (y[i] - y[j]) > 0 else -1
            for i in range(n) for j in range(i + 1, n))
    return c / (n * (n - 1) / 2)


@pytest.mark.parametrize('x,y', [
    ([1, 2, 3, 4], [1, 2, 3, 4]),
    ([1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 6, 5]),
    ([3, 1, 4, 1.5, 5, 9], [2, 7, 1, 8, 2.5, 8.5]),
    ([0.6, 0.1, 0.3, 0.2, 0.5], [0.2, 0.6, 0.5, 0.4, 0.1]),
])
def test_kendall_tau_p_value_exact(x, y):
    # no ties: the exact two-sided p-value is the share of the n!
    # orderings of y whose |tau| reaches the observed one
    import itertools
    obs = _pair_tau(x, y)
    perms = list(itertools.permutations(y))
    hits = sum(1 for p in perms if abs(_pair_tau(x, p)) >= abs(obs) - 1e-12)
    tau, p = kendall_tau_test(x, y)
    assert tau == pytest.approx(obs)
    assert p == pytest.approx(hits / len(perms))


def test_kendall_tau_p_value_perfect_order():
    # 4 values in the same order: 1 of the 24 orderings has tau = 1 and 1
    # has tau = -1, so p = 2 / 24
    assert kendall_tau_test([1, 2, 3, 4], [10, 20, 30, 40]) == (
        pytest.approx(1.0), pytest.approx(2 / 24))


def test_kendall_tau_p_value_ties_and_degenerate():
    x, y = [1, 2, 2, 3, 4, 4, 5], [1, 3, 2, 2, 5, 4, 4]
    tau, p = kendall_tau_test(x, y)
    ref = stats.kendalltau(x, y, variant='b')
    assert (tau, p) == (pytest.approx(ref[0]), pytest.approx(ref[1]))
    assert 0 < p < 1
    for bad in (([1, 1, 1], [1, 2, 3]), ([1], [2])):
        assert all(math.isnan(v) for v in kendall_tau_test(*bad))
    with pytest.raises(ValueError, match='different lengths'):
        kendall_tau_test([1, 2], [1, 2, 3])


def test_supernet_agreement_pairs():
    s1, s2, s3 = [1, 2, 3, 4, 5], [2, 1, 3, 4, 5], [5, 4, 3, 2, 1]
    out = supernet_agreement([s1, s2, s3])
    assert [(r['a'], r['b']) for r in out] == [(0, 1), (0, 2), (1, 2)]
    # one swapped pair of 10: (9 - 1) / 10; reversed order: -1
    assert out[0]['tau'] == pytest.approx(0.8)
    assert out[1]['tau'] == pytest.approx(-1.0)
    assert out[2]['tau'] == pytest.approx(-0.8)
    for r, (x, y) in zip(out, [(s1, s2), (s1, s3), (s2, s3)]):
        assert r['tau_p'] == pytest.approx(stats.kendalltau(x, y)[1])
    assert supernet_agreement([s1]) == []
    with pytest.raises(ValueError, match='different lengths'):
        supernet_agreement([s1, [1, 2]])


def test_topk_overlap_bad_k():
    for k in (0, 5, -1):
        with pytest.raises(ValueError, match='1 <= k <= 4'):
            topk_overlap([1, 2, 3, 4], [1, 2, 3, 4], k)


def test_rank_report():
    sup = [0.3, 0.1, 0.2, 0.5, 0.4]
    alone = [0.31, 0.12, 0.25, 0.4, 0.45]
    flops = [5, 1, 3, 4, 2]
    params = [1, 1, 1, 1, 1]  # constant: no correlation
    rep = rank_report(sup, alone, dict(flops=flops, params=params), k=2)
    assert list(rep) == ['supernet', 'flops', 'params']
    assert rep['supernet'] == dict(
        tau=pytest.approx(_scipy_tau(sup, alone)),
        tau_p=pytest.approx(stats.kendalltau(sup, alone)[1]),
        rho=pytest.approx(_scipy_rho(sup, alone)), topk=1.0)
    assert rep['flops']['tau'] == pytest.approx(_scipy_tau(flops, alone))
    assert rep['flops']['topk'] == 0.5  # top-2 flops {0, 3}, true {3, 4}
    assert rep['flops']['topk'] == topk_overlap(flops, alone, 2)
    assert math.isnan(rep['params']['tau'])
    assert rep['params']['topk'] == 0.0  # {0, 1} vs {3, 4}
    assert list(rank_report(sup, alone, k=1)) == ['supernet']
    with pytest.raises(ValueError, match='reserved'):
        rank_report(sup, alone, dict(supernet=sup))


# ------------------------------------------------------- FLOPs band choice
def _in_band_sample(seed, n=3000):
    rng = random.Random(seed)
    out = set()
    for _ in range(n):
        arch = random_arch(SPACE, rng)
        f = arch_cost(SPACE, arch)[0]
        if BAND[0] <= f <= BAND[1]:
            out.add(f)
    return np.asarray(sorted(out))


def test_band_selection_inside_band_and_spread():
    archs = select_archs_in_flops_band(SPACE, 5, BAND, seed=0, pool=200)
    flops = [arch_cost(SPACE, a)[0] for a in archs]
    assert len(archs) == 5 and len(set(archs)) == 5
    assert all(len(a) == SPACE.num_layers for a in archs)
    assert all(BAND[0] <= f <= BAND[1] for f in flops)
    assert flops == sorted(flops)
    # an independent sample of in-band architectures: the choice covers
    # the band, from its cheap end to its expensive end
    ref = _in_band_sample(seed=123)
    q05, q25, q75, q95 = np.quantile(ref, [0.05, 0.25, 0.75, 0.95])
    assert flops[0] <= q05 and flops[-1] >= q95
    assert q25 <= flops[2] <= q75


def test_band_selection_takes_pool_extremes():
    """The cheapest and the most expensive of the pool are chosen: the
    pool drawn the documented way (``random.Random(seed)``, uniform per
    layer, deduplicated, until ``pool`` in-band architectures)."""
    rng = random.Random(7)
    pool = set()
    while len(pool) < 50:
        arch = random_arch(SPACE, rng)
        if BAND[0] <= arch_cost(SPACE, arch)[0] <= BAND[1]:
            pool.add(arch)
    fl = sorted(arch_cost(SPACE, a)[0] for a in pool)
    archs = select_archs_in_flops_band(SPACE, 4, BAND, seed=7, pool=50)
    got = [arch_cost(SPACE, a)[0] for a in archs]
    assert got[0] == fl[0] and got[-1] == fl[-1]
    # evenly spaced positions 0, 16.33, 32.67, 49 of the sorted pool
    assert got == [fl[0], fl[16], fl[33], fl[49]]


def test_band_selection_is_deterministic_by_seed():
    a = select_archs_in_flops_band(SPACE, 4, BAND, seed=3)
    assert a == select_archs_in_flops_band(SPACE, 4, BAND, seed=3)
    assert a != select_archs_in_flops_band(SPACE, 4, BAND, seed=4)


def test_band_selection_errors():
    with pytest.raises(ValueError, match=r'\[1.00M, 2.00M\]') as e:
        select_archs_in_flops_band(SPACE, 3, (1e6, 2e6), max_tries=500)
    assert 'draws had FLOPs in' in str(e.value)
    with pytest.raises(ValueError, match='at least 2'):
        select_archs_in_flops_band(SPACE, 1, BAND)
    with pytest.raises(ValueError, match='lo > hi'):
        select_archs_in_flops_band(SPACE, 3, (3e8, 2e8))
    with pytest.raises(ValueError, match='flops_range'):
        select_archs_in_flops_band(SPACE, 3, (3e8, ))


# ------------------------------------------------------ candidates.jsonl
def _arch(i):
    """A distinct architecture for each i < 16."""
    return [SPACE.choices[i % 4]] * 10 + [SPACE.choices[i // 4 % 4]] * 10


def _write_jsonl(path, rows):
    with open(path, 'w') as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r)) + '\n')
    return str(path)


def test_archs_from_candidates_spread_over_scores(tmp_path):
    scores = [0.2, 0.5, 0.1, 0.4, 0.3]
    rows = [dict(arch=_arch(i), score=s, flops=1e8, index=i)
            for i, s in enumerate(scores)]
    rows.append(dict(arch=_arch(1), score=0.0, flops=1e8))  # duplicate
    path = _write_jsonl(tmp_path / 'candidates.jsonl', rows)
    got = archs_from_candidates(path, 3, SPACE)
    # by score: 0.5 (1), 0.4 (3), 0.3 (4), 0.2 (0), 0.1 (2) -> 0, 2, 4
    assert got == [tuple(_arch(1)), tuple(_arch(4)), tuple(_arch(2))]
    assert archs_from_candidates(path, 5) == [
        tuple(_arch(i)) for i in (1, 3, 4, 0, 2)
    ]


def test_archs_from_candidates_errors(tmp_path):
    missing = str(tmp_path / 'nope.jsonl')
    with pytest.raises(FileNotFoundError, match='nope.jsonl'):
        archs_from_candidates(missing, 3)
    good = json.dumps(dict(arch=_arch(0), score=0.1, flops=1))
    bad = _write_jsonl(tmp_path / 'bad.jsonl', [good, '{"arch": [1, 2'])
    with pytest.raises(ValueError, match=r'bad.jsonl:2: not a JSON'):
        archs_from_candidates(bad, 2)
    nokey = _write_jsonl(tmp_path / 'nokey.jsonl',
                         [good, dict(arch=_arch(1), flops=1)])
    with pytest.raises(ValueError, match=r"nokey.jsonl:2: .*'score'"):
        archs_from_candidates(nokey, 2)
    few = _write_jsonl(tmp_path / 'few.jsonl', [good, good])
    with pytest.raises(ValueError, match='1 distinct architecture'):
        archs_from_candidates(few, 2)
    other = _write_jsonl(tmp_path / 'other.jsonl', [
        good, dict(arch=['shuffle_3x3'] * 19, score=0.2, flops=1)
    ])
    with pytest.raises(ValueError, match='other.jsonl:2: .*19 layers'):
        archs_from_candidates(other, 2, SPACE)
    with pytest.raises(ValueError, match='at least 2'):
        archs_from_candidates(few, 1)


# ------------------------------------------- the study's resume logic
@pytest.fixture(scope='module')
def study():
    return ranking_study


class FakeTrainer:
    """Stands for ``subprocess.run(tools/train.py ...)``: writes what a
    finished (or a killed) IterBasedTrainLoop run leaves in its work dir:
    a checkpoint + last_checkpoint, then the final validation record in
    ``<ts>/vis_data/scalars.json`` at step 0 (log_metric_by_epoch)."""

    def __init__(self, max_iters=4, kill_at_call=None):
        self.calls = []
        self.max_iters = max_iters
        self.kill_at_call = kill_at_call

    def __call__(self, cmd, **kw):
        self.calls.append(cmd)
        wd = cmd[cmd.index('--work-dir') + 1]
        arch_file = [c for c in cmd if c.startswith('model.backbone.arch=')]
        assert len(arch_file) == 1 and osp.isfile(arch_file[0].split('=')[1])
        os.makedirs(wd, exist_ok=True)
        killed = len(self.calls) == self.kill_at_call
        it = self.max_iters // 2 if killed else self.max_iters
        ckpt = osp.join(wd, f'iter_{it}.pth')
        open(ckpt, 'wb').close()
        with open(osp.join(wd, 'last_checkpoint'), 'w') as f:
            f.write(ckpt)
        if killed:
            raise KeyboardInterrupt  # the tool is killed mid-training
        ts = osp.join(wd, f'2024010{len(self.calls)}_000000', 'vis_data')
        os.makedirs(ts, exist_ok=True)
        score = 0.1 * len(osp.basename(wd).replace('0', ''))
        with open(osp.join(ts, 'scalars.json'), 'w') as f:
            f.write(json.dumps(dict(loss=1.0, iter=it, step=it)) + '\n')
            f.write(json.dumps({'coco/bbox_mAP': score, 'step': 0}) + '\n')
        return argparse.Namespace(returncode=0)


def _setup(study, tmp_path, archs):
    sub = tmp_path / 'subnet.py'
    sub.write_text("train_cfg = dict(type='IterBasedTrainLoop', "
                   'max_iters=100)\n')
    ckpt = tmp_path / 'supernet.pth'
    ckpt.write_bytes(b'weights')
    search = tmp_path / 'search.py'
    search.write_text('x = 1\n')
    args = argparse.Namespace(
        config=str(search), checkpoint=str(ckpt), subnet_config=str(sub),
        work_dir=str(tmp_path / 'work'),
        standalone_opts=['train_cfg.max_iters=4'], more_checkpoints=[],
        more_sha256=[])
    os.makedirs(args.work_dir, exist_ok=True)
    keys = [study.arch_key(a, SPACE) for a in archs]
    files = {}
    from mmdetnas.spaces import save_arch_file
    for a, k in zip(archs, keys):
        files[k] = save_arch_file(
            osp.join(args.work_dir, 'archs', f'{k}.yaml'), a, SPACE)
    return args, keys, files


def _state(study, args, archs, key='coco/bbox_mAP'):
    path = osp.join(args.work_dir, study.STATE_FILE)
    state = study.load_state(
         path, study.state_identity(args, SPACE, 'coco/bbox_mAP', archs), key)

    def save():
        study.atomic_json(path, state)

    return state, save


def test_tool_resumes_after_kill_and_reuses_finished_trainings(
        study, tmp_path, monkeypatch):
    archs = select_archs_in_flops_band(SPACE, 4, BAND, seed=0)
    args, keys, files = _setup(study, tmp_path, archs)
    # a training the user ran elsewhere (epoch-style record at max step)
    user_wd = osp.join(args.work_dir, 'standalone', keys[3])
    os.makedirs(osp.join(user_wd, 'x', 'vis_data'))
    with open(osp.join(user_wd, 'x', 'vis_data', 'scalars.json'), 'w') as f:
        f.write(json.dumps({'coco/bbox_mAP': 0.42, 'step': 4}) + '\n')

    state, save = _state(study, args, archs)
    for i, k in enumerate(keys):  # stage A done
        state['supernet'][k] = dict(score=0.1 * i, flops=arch_cost(
            SPACE, archs[i])[0], params=arch_cost(SPACE, archs[i])[1])
    save()
    fake = FakeTrainer(kill_at_call=2)
    monkeypatch.setattr(study.subprocess, 'run', fake)
    with pytest.raises(KeyboardInterrupt):
        study.train_standalone(args, archs, keys, files, state, save,
                               'coco/bbox_mAP')
    with open(osp.join(args.work_dir, study.STATE_FILE)) as f:
        saved = json.load(f)
    assert list(saved['standalone']) == [keys[0]]
    assert len(saved['supernet']) == 4
    first_ckpt = osp.join(args.work_dir, 'standalone', keys[0], 'iter_4.pth')
    mtime = os.stat(first_ckpt).st_mtime_ns

    # restart: a new process reads the state
    state, save = _state(study, args, archs)
    fake = FakeTrainer()
    monkeypatch.setattr(study.subprocess, 'run', fake)
    study.train_standalone(args, archs, keys, files, state, save,
                           'coco/bbox_mAP')
    trained = [c[c.index('--work-dir') + 1] for c in fake.calls]
    assert [osp.basename(w) for w in trained] == [keys[1], keys[2]]
    assert '--resume' in fake.calls[0]  # killed mid-way: continue it
    assert '--resume' not in fake.calls[1]
    assert fake.calls[0][-1] == 'train_cfg.max_iters=4'
    assert os.stat(first_ckpt).st_mtime_ns == mtime
    assert state['standalone'][keys[3]]['score'] == 0.42
    assert list(state['standalone']) == keys

    # outputs; a third run trains nothing and writes the same outputs
    result = study.write_outputs(args, SPACE, archs, keys, files, state,
                                 'coco/bbox_mAP', 'coco/bbox_mAP', 2)
    with open(osp.join(args.work_dir, 'ranking.json')) as f:
        first = f.read()
    state, save = _state(study, args, archs)
    fake = FakeTrainer()
    monkeypatch.setattr(study.subprocess, 'run', fake)
    study.train_standalone(args, archs, keys, files, state, save,
                           'coco/bbox_mAP')
    assert fake.calls == []
    study.write_outputs(args, SPACE, archs, keys, files, state,
                        'coco/bbox_mAP', 'coco/bbox_mAP', 2)
    with open(osp.join(args.work_dir, 'ranking.json')) as f:
        assert f.read() == first
    sup = [state['supernet'][k]['score'] for k in keys]
    alone = [state['standalone'][k]['score'] for k in keys]
    assert result['report']['supernet']['tau'] == pytest.approx(
        _scipy_tau(sup, alone))
    assert [r['standalone_score'] for r in result['archs']] == alone
    for name in ('ranking.md', 'ranking.png'):
        assert osp.getsize(osp.join(args.work_dir, name)) > 0
    md = open(osp.join(args.work_dir, 'ranking.md')).read()
    assert '| supernet |' in md and 'top-2 overlap' in md


def test_tool_reports_further_supernets(study, tmp_path):
    archs = select_archs_in_flops_band(SPACE, 4, BAND, seed=0)
    args, keys, files = _setup(study, tmp_path, archs)
    args.more_checkpoints = [str(tmp_path / 'b.pth'), str(tmp_path / 'c.pth')]
    args.more_sha256 = ['sha-b', 'sha-c']
    state, save = _state(study, args, archs)
    sup = [0.1, 0.2, 0.3, 0.4]
    more = [[0.2, 0.1, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]]
    alone = [0.5, 0.6, 0.8, 0.7]
    for i, k in enumerate(keys):
        flops, params = arch_cost(SPACE, archs[i])
        state['supernet'][k] = dict(score=sup[i], flops=flops, params=params)
        for sha, v in zip(args.more_sha256, more):
            state['more_supernets'].setdefault(sha, {})[k] = dict(
                score=v[i])
        state['standalone'][k] = dict(score=alone[i], work_dir='w')
    save()
    # kept across a restart
    state, save = _state(study, args, archs)
    assert state['more_supernets']['sha-c'][keys[0]]['score'] == 0.4
    result = study.write_outputs(args, SPACE, archs, keys, files, state,
                                 'coco/bbox_mAP', 'coco/bbox_mAP', 2)
    rep = result['report']
    assert list(rep) == ['supernet', 'supernet 2', 'supernet 3',
                         'supernets, mean', 'flops', 'params']
    assert rep['supernet 2']['tau'] == pytest.approx(
        _scipy_tau(more[0], alone))
    mean = [(a + b + c) / 3 for a, b, c in zip(sup, *more)]
    assert rep['supernets, mean']['tau'] == pytest.approx(
        _scipy_tau(mean, alone))
    agree = {(r['a'], r['b']): r['tau'] for r in result['supernet_agreement']}
    # 1 vs 2: one swapped pair of 6 -> 4/6; 1 vs 3 reversed -> -1
    assert agree == {(0, 1): pytest.approx(4 / 6), (0, 2): pytest.approx(-1),
                     (1, 2): pytest.approx(_scipy_tau(more[0], more[1]))}
    assert [r['more_supernet_scores'] for r in result['archs']] == [
        list(v) for v in zip(*more)]
    md = open(osp.join(args.work_dir, 'ranking.md')).read()
    assert '| 1 and 3 | -1.0000 |' in md and 'supernet 3: `' in md


def test_tool_validates_a_checkpoint_without_final_val(
        study, tmp_path, monkeypatch):
    archs = select_archs_in_flops_band(SPACE, 2, BAND, seed=1)
    args, keys, files = _setup(study, tmp_path, archs)
    for k in keys:  # killed after the final checkpoint, before its val
        wd = osp.join(args.work_dir, 'standalone', k)
        os.makedirs(wd)
        open(osp.join(wd, 'iter_4.pth'), 'wb').close()
        with open(osp.join(wd, 'last_checkpoint'), 'w') as f:
            f.write('/elsewhere/iter_4.pth')  # moved from another machine
    state, save = _state(study, args, archs)
    seen = []

    def fake_val(args_, opts, arch_file, ckpt, key):
        seen.append((opts, arch_file, ckpt))
        return dict(score=0.5, source=ckpt, metrics={key: 0.5})

    monkeypatch.setattr(study, 'validate_checkpoint', fake_val)
    monkeypatch.setattr(study.subprocess, 'run', None)  # must not train
    study.train_standalone(args, archs, keys, files, state, save,
                           'coco/bbox_mAP')
    assert [osp.basename(osp.dirname(c)) for _, _, c in seen] == keys
    assert seen[0][0] == {'train_cfg.max_iters': 4}
    assert all(r['score'] == 0.5 for r in state['standalone'].values())


def test_tool_state_of_another_experiment_is_refused(study, tmp_path):
    archs = select_archs_in_flops_band(SPACE, 3, BAND, seed=0)
    args, _, _ = _setup(study, tmp_path, archs)
    state, save = _state(study, args, archs)
    state['supernet']['x'] = dict(score=1.0)
    save()
    assert _state(study, args, archs)[0]['supernet'] == {'x': dict(score=1.0)}
    other = select_archs_in_flops_band(SPACE, 3, BAND, seed=1)
    with pytest.raises(RuntimeError, match='architectures.*another --work-d'):
        _state(study, args, other)
    with open(args.checkpoint, 'wb') as f:
        f.write(b'other weights')
    with pytest.raises(RuntimeError, match='supernet checkpoint'):
        _state(study, args, archs)


def test_tool_select_archs(study, tmp_path):
    from mmengine.config import ConfigDict

    from mmdetnas.spaces import official_arch, save_arch_file

    def args(**kw):
        base = dict(arch_file=None, from_candidates=None, flops_band=None,
                    num_archs=3, seed=0, pool=None, config='search.py')
        return argparse.Namespace(**{**base, **kw})

    cfg = ConfigDict(train_cfg=dict(flops=(None, 300e6)))
    archs = study.select_archs(args(), cfg, SPACE)
    assert archs == select_archs_in_flops_band(SPACE, 3, BAND, seed=0)
    band = study.select_archs(args(flops_band=[2.6e8, 2.8e8]), cfg, SPACE)
    assert all(2.6e8 <= arch_cost(SPACE, a)[0] <= 2.8e8 for a in band)
    with pytest.raises(ValueError, match='no train_cfg.flops upper bound'):
        study.select_archs(args(), ConfigDict(train_cfg=dict()), SPACE)
    files = [
        save_arch_file(str(tmp_path / f'{n}.yaml'),
                       official_arch(n)[1], SPACE)
        for n in ('COCO-FPN-300M', 'COCO-RetinaNet-300M')
    ]
    assert study.select_archs(args(arch_file=files), cfg, SPACE) == [
        official_arch('COCO-FPN-300M')[1],
        official_arch('COCO-RetinaNet-300M')[1]
    ]
    with pytest.raises(ValueError, match='twice'):
        study.select_archs(args(arch_file=files * 2), cfg, SPACE)
    with pytest.raises(ValueError, match='at least 2'):
        study.select_archs(args(arch_file=files[:1]), cfg, SPACE)
    with pytest.raises(ValueError, match='search space'):
        study.select_archs(args(arch_file=['COCO-FPN-1.3G', files[0]]), cfg,
                           SPACE)
    assert study.arch_key(official_arch('COCO-FPN-300M')[1], SPACE) == \
        '21202112331300313132'
