"""Tests of the path samplers (uniformity, FLOPs bins, rank sync)."""
import re
import socket
from collections import Counter

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp
from scipy.stats import chisquare

from mmdetnas.registry import TASK_UTILS
from mmdetnas.search import (arch_flops, FlopsBinPathSampler, sample_synced,
                             UniformPathSampler)
from mmdetnas.spaces import PRESETS


def assert_uniform_per_layer(sampler, draws=4000, alpha=1e-3):
    """Chi-square goodness of fit of every layer's choice counts against
    the uniform distribution; raises AssertionError when a layer fails."""
    space = sampler.search_space
    counts = [Counter() for _ in range(space.num_layers)]
    for _ in range(draws):
        arch = sampler.sample()
        assert len(arch) == space.num_layers
        for i, c in enumerate(arch):
            counts[i][c] += 1
    for i, counter in enumerate(counts):
        assert set(counter) <= set(space.choices)
        observed = [counter[c] for c in space.choices]
        p = chisquare(observed).pvalue
        assert p > alpha, f'layer {i}: counts {observed}, p={p:.3g}'


class BiasedSampler(UniformPathSampler):
    """Favours the first choice: 34% / 22% / 22% / 22%."""

    def sample(self):
        choices = self.search_space.choices
        weights = [34, 22, 22, 22]
        return tuple(
            self.rng.choices(choices, weights)[0]
            for _ in range(self.search_space.num_layers))


def test_uniform_sampler_is_uniform():
    assert_uniform_per_layer(UniformPathSampler('300M', seed=0))


def test_uniformity_check_rejects_bias():
    """The helper above has the power to see a modest bias."""
    with pytest.raises(AssertionError, match='layer'):
        assert_uniform_per_layer(BiasedSampler('300M', seed=0))


def test_seeded_determinism():
    a = UniformPathSampler('300M', seed=123)
    b = UniformPathSampler('300M', seed=123)
    c = UniformPathSampler('300M', seed=124)
    paths_a = [a.sample() for _ in range(10)]
    assert paths_a == [b.sample() for _ in range(10)]
    assert paths_a != [c.sample() for _ in range(10)]
    assert len(set(paths_a)) == 10


def test_sampler_state_dict():
    a = UniformPathSampler('1.3G', seed=7)
    a.sample()
    state = a.state_dict()
    expected = [a.sample() for _ in range(3)]
    b = UniformPathSampler('1.3G', seed=99)
    b.load_state_dict(state)
    assert [b.sample() for _ in range(3)] == expected
    assert all(len(p) == 40 for p in expected)


def test_build_from_registry():
    sampler = TASK_UTILS.build(
        dict(type='mmdetnas.UniformPathSampler', seed=0),
        default_args=dict(search_space='1.3G'))
    assert isinstance(sampler, UniformPathSampler)
    assert sampler.search_space is PRESETS['1.3G']


# ------------------------------------------------------------- FLOPs bins
def test_flops_bin_sampler_in_range():
    space = PRESETS['300M']
    lo, hi, width = 270e6, 310e6, 10e6
    sampler = FlopsBinPathSampler('300M', (lo, hi), width, seed=0)
    bins = Counter()
    for _ in range(40):
        f = arch_flops(space, sampler.sample())
        assert lo <= f <= hi
        bins[int((f - lo) // width)] += 1
    assert len(bins) >= 3  # several bins covered, not only the likely one


def test_flops_bin_sampler_unreachable():
    sampler = FlopsBinPathSampler(
        '300M', (1e6, 2e6), 1e6, max_tries=30, seed=0)
    with pytest.raises(RuntimeError, match='FLOPs seen') as e:
        sampler.sample()
    m = re.search(r'FLOPs seen: \[([\d.e+]+), ([\d.e+]+)\]', str(e.value))
    assert m is not None, str(e.value)
    seen_lo, seen_hi = float(m.group(1)), float(m.group(2))
    # real 300M paths cost 0.2-0.4 GMACs under the DetNAS convention
    assert 2e8 < seen_lo <= seen_hi < 4e8


@pytest.mark.parametrize('kwargs', [
    dict(flops_range=(3e8, 2e8)),
    dict(flops_range=(3e8, 3e8)),
    dict(flops_range=(2e8, 3e8), bin_width=0),
    dict(flops_range=(2e8, 3e8), bin_width=-1e6),
])
def test_flops_bin_sampler_bad_args(kwargs):
    with pytest.raises(ValueError):
        FlopsBinPathSampler('300M', **kwargs)


# --------------------------------------------------------- rank sync (gloo)
def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _sync_worker(rank, world_size, port, queue):
    dist.init_process_group(
        'gloo',
        init_method=f'tcp://127.0.0.1:{port}',
        rank=rank,
        world_size=world_size)
    try:
        sampler = UniformPathSampler('300M', seed=1000 + rank)  # different
        own = UniformPathSampler('300M', seed=1000 + rank).sample()
        paths = [sample_synced(sampler) for _ in range(4)]
        queue.put((rank, own, paths))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_sample_synced_two_ranks():
    """Ranks with different seeds run rank 0's path."""
    ctx = mp.get_context('spawn')
    queue = ctx.SimpleQueue()
    mp.spawn(_sync_worker, args=(2, _free_port(), queue), nprocs=2, join=True)
    results = {}
    while not queue.empty():
        rank, own, paths = queue.get()
        results[rank] = (own, paths)
    assert set(results) == {0, 1}
    own0, paths0 = results[0]
    own1, paths1 = results[1]
    assert own0 != own1  # the seeds really differ
    assert paths0 == paths1
    assert paths0[0] == own0  # rank 0's draw
    assert len(set(paths0)) == 4  # several different draws


def test_sample_synced_single_process():
    a = UniformPathSampler('300M', seed=3)
    b = UniformPathSampler('300M', seed=3)
    assert [sample_synced(a)
            for _ in range(3)] == [b.sample() for _ in range(3)]


# ------------------------------------------- FLOPs bins: state and resume
# 300M paths cost 0.2-0.4 GMACs (see above): of the 8 bins of 40M in
# [280M, 600M] the upper ones are unreachable and die after a few draws
BINS = dict(flops_range=(280e6, 600e6), bin_width=40e6, max_tries=10)


def _bin_sampler(seed):
    return FlopsBinPathSampler('300M', seed=seed, **BINS)


def _round_trip(state, tmp_path):
    """Through a checkpoint file, as a resumed run reads it."""
    import torch
    path = tmp_path / 'sampler.pth'
    torch.save(dict(path_sampler=state), path)
    return torch.load(path, weights_only=True)['path_sampler']


@pytest.mark.parametrize('k', [5, 12])
def test_flops_bin_sampler_resume_equals_uninterrupted(k, tmp_path):
    n = 30
    full = _bin_sampler(seed=0)
    expected = [full.sample() for _ in range(n)]
    first = _bin_sampler(seed=0)
    got = [first.sample() for _ in range(k)]
    # the test has power only if dead bins were found before the break
    assert first._dead_bins
    state = _round_trip(first.state_dict(), tmp_path)
    resumed = _bin_sampler(seed=1)  # another seed: the state decides
    resumed.load_state_dict(state)
    got += [resumed.sample() for _ in range(n - k)]
    assert got == expected
    assert resumed._dead_bins == full._dead_bins


def test_flops_bin_sampler_resume_keeps_the_error():
    """The FLOPs range seen is state too: a resumed sampler of an
    unreachable range reports what the first one saw."""
    first = FlopsBinPathSampler('300M', (1e6, 2e6), 5e5, max_tries=5, seed=0)
    with pytest.raises(RuntimeError) as e1:
        first.sample()
    resumed = FlopsBinPathSampler('300M', (1e6, 2e6), 5e5, max_tries=5,
                                  seed=1)
    resumed.load_state_dict(first.state_dict())
    with pytest.raises(RuntimeError) as e2:
        resumed.sample()
    assert str(e2.value) == str(e1.value)


def test_flops_bin_sampler_old_and_foreign_states():
    """A state without dead bins (written before they were saved) loads
    the RNG; dead bins of other bins are not applied."""
    ref = _bin_sampler(seed=3)
    old_state = dict(rng=ref.rng.getstate())
    expected = [ref.sample() for _ in range(10)]
    old = _bin_sampler(seed=4)
    for _ in range(10):
        old.sample()
    assert old._dead_bins  # it knows dead bins the old state does not
    old.load_state_dict(old_state)
    assert [old.sample() for _ in range(10)] == expected

    other = FlopsBinPathSampler('300M', (280e6, 600e6), 80e6, max_tries=10,
                                seed=5)
    for _ in range(10):
        other.sample()
    assert other._dead_bins
    fresh = _bin_sampler(seed=6)
    with pytest.warns(UserWarning, match='other FLOPs bins'):
        fresh.load_state_dict(other.state_dict())
    assert fresh._dead_bins == set()
    assert fresh.rng.getstate() == other.rng.getstate()
