"""Latency lookup tables: prediction from a known table worked out by hand,
tables built for something else refused, damaged files refused, and a
build that is interrupted (an exception, or kill -9 of the tool) resumes
with its finished rounds kept."""
import json
import os
import os.path as osp
import random
import signal
import subprocess
import sys
import time

import pytest

from mmdetnas.deploy import (LatencyTable, LatencyTableError, TorchBackend,
                             build_latency_table)
from mmdetnas.spaces.search_space import build_search_space
from mmdetnas.utils.setup_env import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

TINY = dict(name='tiny', stem_channels=8, stage_channels=[16, 32, 64, 128],
            stage_blocks=[1, 2, 1, 1], last_channels=256,
            choices=['shuffle_3x3', 'shuffle_xception'])
MODEL = dict(type='mmdetnas.DetNASShuffleNetV2', search_space=TINY)
SHAPE = (64, 64)


@pytest.fixture(autouse=True, scope='module')
def _registered():
    register_all_modules()


# ------------------------------------------------------------- prediction
def known_table(calibrated=True):
    """Two layers, choices ``a`` / ``b``, stem and neck, numbers chosen so
    every sum below is exact in binary floating point."""
    entries = {
        'stem': 1.0, 'A0': 2.0, 'B0': 3.0, 'A1': 0.5, 'B1': 4.0,
        'neck': 1.5, 'call_overhead': 0.25,
    }
    if calibrated:
        # summed: a,a 4.25; b,b 8.75; a,b 7.75 (see test) -> ratios 1.2,
        # 1.1, 1.3, median 1.2
        entries.update({'path a,a': 4.25 * 1.2, 'path b,b': 8.75 * 1.1,
                        'path a,b': 7.75 * 1.3})
    built_for = dict(
        search_space=dict(name='toy'), shape=[64, 64], batch=1,
        backend='onnxruntime', device='cpu: toy', threads=1,
        parts=['stem', 'neck'],
        layer_keys=[{'a': 'A0', 'b': 'B0'}, {'a': 'A1', 'b': 'B1'}])
    return LatencyTable(built_for, {k: dict(ms=v) for k, v in
                                    entries.items()}, complete=True)


def test_prediction_is_the_sum_of_entries_by_hand():
    t = known_table(calibrated=False)
    # stem + A0 + A1 + neck, less 3 of the 4 calls' overhead
    assert t.summed(('a', 'a')) == pytest.approx(1 + 2 + 0.5 + 1.5 - 0.75)
    assert t.summed(('b', 'a')) == pytest.approx(1 + 3 + 0.5 + 1.5 - 0.75)
    assert t.keys(('b', 'a')) == ['stem', 'B0', 'A1', 'neck']
    # no calibration path: the sum is the prediction
    assert t.scale == 1.0
    assert t.predict(('b', 'b')) == pytest.approx(1 + 3 + 4 + 1.5 - 0.75)


def test_prediction_is_scaled_by_the_median_calibration_ratio():
    t = known_table()
    assert t.scale == pytest.approx(1.2)
    # b,a: summed 5.25, times the median ratio 1.2
    assert t.predict(('b', 'a')) == pytest.approx(5.25 * 1.2)
    assert t.predict(('b', 'b')) == pytest.approx(8.75 * 1.2)


def test_an_architecture_the_table_has_no_block_for_is_refused():
    t = known_table()
    with pytest.raises(LatencyTableError, match="layer 1 choice 'c'"):
        t.predict(('a', 'c'))
    with pytest.raises(LatencyTableError, match='3 layers, the table has 2'):
        t.predict(('a', 'a', 'a'))
    del t.entries['B1']
    with pytest.raises(LatencyTableError, match='B1'):
        t.predict(('b', 'b'))


# ----------------------------------------------------------------- builds
class Killed(Exception):
    pass


class FakeBackend(TorchBackend):
    """The PyTorch backend with invented timings: call ``k`` of
    :meth:`sample` returns ``repeats`` times ``start + k`` ms, and raises
    :class:`Killed` after ``fail_after`` calls."""

    def __init__(self, start=0.0, fail_after=None, **kw):
        kw.setdefault('warmup', 0)
        super().__init__(device='cpu', **kw)
        self.start, self.fail_after, self.calls = start, fail_after, 0

    def sample(self, run):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise Killed
        return [self.start + self.calls] * self.repeats


def _quiet(*a):
    pass


def test_built_table_records_its_setting_and_predicts(tmp_path):
    out = str(tmp_path / 't.json')
    b = FakeBackend(repeats=2, rounds=1)
    t = build_latency_table(MODEL, b, SHAPE, out, progress=False,
                            logger=_quiet)
    data = json.load(open(out))
    assert data['complete']
    bf = data['built_for']
    assert bf['shape'] == list(SHAPE) and bf['backend'] == 'torch'
    assert bf['search_space']['name'] == 'tiny'
    space = build_search_space(TINY)
    assert len(bf['layer_keys']) == space.num_layers == 5
    # stage 1 (2 blocks): its second block sees another input (stride 1,
    # 32 channels in) than its first, the stem is 8 -> 16 at 32x32
    assert bf['layer_keys'][0]['shuffle_3x3'] == \
        'shuffle_3x3 8>16 s2 @32x32'
    assert bf['layer_keys'][2]['shuffle_xception'] == \
        'shuffle_xception 32>32 s1 @8x8'
    # a bare backbone: no last conv, neck or head
    assert bf['parts'] == ['stem']
    # the 2 all-c paths and 2 random ones timed end to end
    paths = [k for k in data['entries'] if k.startswith('path ')]
    assert len(paths) == 4
    assert 'path ' + ','.join(['shuffle_3x3'] * 5) in paths
    # every entry was timed once (one round): its ms is its own call's
    # value, distinct per entry
    values = sorted(e['ms'] for e in data['entries'].values())
    assert values == [float(k) for k in range(1, len(values) + 1)]
    # the prediction of a path by hand from the JSON
    arch = ('shuffle_xception', 'shuffle_3x3', 'shuffle_3x3',
            'shuffle_xception', 'shuffle_3x3')
    e = {k: v['ms'] for k, v in data['entries'].items()}

    def summed(a):
        keys = ['stem'] + [bf['layer_keys'][i][c] for i, c in enumerate(a)]
        return sum(e[k] for k in keys) - (len(keys) - 1) * e['call_overhead']

    ratios = sorted(e[p] / summed(p[5:].split(',')) for p in paths)
    scale = (ratios[1] + ratios[2]) / 2
    assert t.predict(arch) == pytest.approx(scale * summed(arch))
    assert LatencyTable.load(out).predict(list(arch)) == pytest.approx(
        scale * summed(arch))


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('table') / 't.json')
    build_latency_table(MODEL, FakeBackend(repeats=1, rounds=1), SHAPE, out,
                        progress=False, logger=_quiet)
    return out


@pytest.mark.parametrize('expected,message', [
    (dict(space=build_search_space('300M')),
     "search space: the table is for 'tiny', the model's is '300M'"),
    (dict(shape=(800, 1333)),
     'input shape: the table is for [64, 64] (H, W), the search times '
     '[800, 1333]'),
    (dict(backend='openvino'),
     "backend: the table is for 'torch', 'openvino' was asked for"),
    (dict(device='cuda: NVIDIA H100'), "device: the table is for 'cpu: "),
    (dict(parts_sha='0' * 16), 'model: the table timed another'),
])
def test_a_table_for_another_setting_is_refused(built, expected, message):
    t = LatencyTable.load(built)
    t.check(space=build_search_space(TINY), shape=SHAPE, backend='torch',
            device=t.built_for['device'])  # the right one passes
    with pytest.raises(LatencyTableError) as e:
        t.check(**expected)
    assert message in str(e.value) and built in str(e.value)


def test_damaged_tables_are_refused(built, tmp_path):
    text = open(built).read()
    cut = tmp_path / 'cut.json'
    cut.write_text(text[:len(text) // 2])
    with pytest.raises(LatencyTableError, match='not readable JSON'):
        LatencyTable.load(str(cut))
    other = tmp_path / 'other.json'
    other.write_text(json.dumps({'entries': {}}))
    with pytest.raises(LatencyTableError, match='is not a latency table'):
        LatencyTable.load(str(other))
    data = json.loads(text)
    data['version'] = 99
    other.write_text(json.dumps(data))
    with pytest.raises(LatencyTableError, match='layout version 99'):
        LatencyTable.load(str(other))
    data = json.loads(text)
    del data['built_for']['layer_keys']
    other.write_text(json.dumps(data))
    with pytest.raises(LatencyTableError, match='layer_keys'):
        LatencyTable.load(str(other))
    with pytest.raises(FileNotFoundError, match='nope.json'):
        LatencyTable.load(str(tmp_path / 'nope.json'))
    data = json.loads(text)
    data['complete'] = False
    other.write_text(json.dumps(data))
    with pytest.raises(LatencyTableError, match='incomplete'):
        LatencyTable.load(str(other)).check()


def test_an_interrupted_build_resumes_with_finished_rounds_kept(tmp_path):
    out = str(tmp_path / 't.json')
    # the number of entries of the plan, from a one-round build
    build_latency_table(MODEL, FakeBackend(repeats=2, rounds=1), SHAPE,
                        str(tmp_path / 'probe.json'), progress=False,
                        logger=_quiet)
    n = len(json.load(open(tmp_path / 'probe.json'))['entries'])
    assert n > 5
    # dies in the middle of round 2
    first = FakeBackend(repeats=2, rounds=3)
    first.fail_after = n + 5
    with pytest.raises(Killed):
        build_latency_table(MODEL, first, SHAPE, out, progress=False,
                            logger=_quiet)
    data = json.load(open(out))
    assert not data['complete'] and data['built_for']['rounds_done'] == 1
    kept = {k: e['samples'] for k, e in data['entries'].items()}
    assert len(kept) == n and all(len(s) == 2 for s in kept.values())
    # the same settings again: only rounds 2 and 3 are timed
    second = FakeBackend(start=1000.0, repeats=2, rounds=3)
    logs = []
    t = build_latency_table(MODEL, second, SHAPE, out, progress=False,
                            logger=logs.append)
    assert second.calls == 2 * n
    assert any('resuming after 1 of 3 rounds' in x for x in logs)
    data = json.load(open(out))
    assert data['complete'] and data['built_for']['rounds_done'] == 3
    for k, e in data['entries'].items():
        assert e['samples'][:2] == kept[k]  # round 1, from the first run
        assert len(e['samples']) == 6
        # median of 2 samples of round 1 and 4 > 1000 of rounds 2-3
        s = sorted(e['samples'])
        assert e['ms'] == pytest.approx((s[2] + s[3]) / 2)
        assert t.entries[k]['ms'] == e['ms']
    # complete: a third run times nothing
    third = FakeBackend(repeats=2, rounds=3)
    build_latency_table(MODEL, third, SHAPE, out, progress=False,
                        logger=_quiet)
    assert third.calls == 0


def test_a_build_into_a_table_of_other_settings_is_refused(built):
    before = open(built).read()
    with pytest.raises(LatencyTableError) as e:
        build_latency_table(MODEL, FakeBackend(repeats=3, rounds=1), SHAPE,
                            built, progress=False, logger=_quiet)
    assert 'repeats: the table has 1, this build 3' in str(e.value)
    with pytest.raises(LatencyTableError, match='input shape'):
        build_latency_table(MODEL, FakeBackend(repeats=1, rounds=1),
                            (96, 96), built, progress=False, logger=_quiet)
    assert open(built).read() == before


def test_a_model_without_a_detnas_backbone_is_refused(tmp_path):
    with pytest.raises(LatencyTableError, match="'ResNet'"):
        build_latency_table(dict(type='ResNet', depth=18),
                            FakeBackend(), SHAPE, str(tmp_path / 'x.json'),
                            progress=False, logger=_quiet)
    assert not osp.exists(tmp_path / 'x.json')


@pytest.mark.slow
def test_kill_9_of_the_tool_keeps_the_finished_rounds(tmp_path):
    """The real tool on the PyTorch backend, killed with SIGKILL at a
    random moment after its first round is written, then run again."""
    cfg = tmp_path / 'tiny.py'
    cfg.write_text(f'model = {MODEL!r}\n')
    out = str(tmp_path / 't.json')
    cmd = [sys.executable, 'tools/analysis_tools/latency_table.py',
           str(cfg), '--backend', 'torch', '--device', 'cpu', '--shape',
           '64', '64', '--out', out, '--warmup', '0', '--repeats', '20',
           '--rounds', '20']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not osp.exists(out) and proc.poll() is None \
            and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(random.Random().uniform(0, 1.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    data = json.load(open(out))  # whole: written atomically
    done = data['built_for']['rounds_done']
    assert 1 <= done and not data['complete'], 'killed too late to test'
    kept = {k: e['samples'] for k, e in data['entries'].items()}
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f'resuming after {done} of 20 rounds' in res.stdout
    data = json.load(open(out))
    assert data['complete']
    for k, e in data['entries'].items():
        assert len(e['samples']) == 20 * 20
        assert e['samples'][:len(kept[k])] == kept[k]
