"""Tests of the evolution operators, Pareto sorting and constraints."""
import itertools
import math
import random

import pytest

from mmdetnas.search import arch_cost
from mmdetnas.spaces import PRESETS
from mmdetnas.search.constraints import ArchConstraints
from mmdetnas.search.evolution import (crowding_distance, dominates,
                                       non_dominated_sort, nsga2_rank,
                                       objectives, pareto_front, topk_single)
from mmdetnas.spaces.path_space import (crossover_arch as crossover,
                                        mutate_arch as mutate, random_arch)

SPACE = PRESETS['300M']


# ----------------------------------------------------------------- operators
def test_random_arch():
    rng = random.Random(0)
    archs = [random_arch(SPACE, rng) for _ in range(50)]
    assert all(len(a) == 20 and set(a) <= set(SPACE.choices) for a in archs)
    assert len(set(archs)) == 50
    assert random_arch(SPACE, random.Random(1)) == random_arch(
        SPACE, random.Random(1))


@pytest.mark.parametrize('prob', [0.1, 0.5])
def test_mutation_rate(prob):
    """A gene is re-drawn with probability ``prob`` and the new draw equals
    the old gene with probability 1/num_choices, so the fraction of changed
    genes is prob * (1 - 1/num_choices)."""
    rng = random.Random(0)
    changed = total = 0
    for _ in range(2000):
        parent = random_arch(SPACE, rng)
        child = mutate(parent, SPACE, prob, rng)
        assert len(child) == len(parent)
        assert set(child) <= set(SPACE.choices)
        changed += sum(a != b for a, b in zip(parent, child))
        total += len(parent)
    expected = prob * (1 - 1 / SPACE.num_choices)
    std = math.sqrt(expected * (1 - expected) / total)
    assert abs(changed / total - expected) < 5 * std


def test_mutation_extremes():
    rng = random.Random(0)
    arch = random_arch(SPACE, rng)
    assert mutate(arch, SPACE, 0.0, rng) == arch
    # prob 1: every gene is an independent uniform draw
    children = [mutate(arch, SPACE, 1.0, rng) for _ in range(200)]
    assert len(set(children)) == 200


def test_crossover_genes_from_parents():
    rng = random.Random(0)
    names = SPACE.choices
    # parents that differ at every layer
    a = tuple(names[i % 4] for i in range(20))
    b = tuple(names[(i + 1) % 4] for i in range(20))
    from_a = total = 0
    for _ in range(500):
        child = crossover(a, b, rng)
        assert len(child) == 20
        for i, c in enumerate(child):
            assert c in (a[i], b[i])
            from_a += c == a[i]
            total += 1
    assert abs(from_a / total - 0.5) < 0.03
    assert crossover(a, a, rng) == a


# ----------------------------------------------------------- Pareto / NSGA
# hand-made: (0,5) (1,2) (3,1) (5,0) are mutually non-dominated; (2,3) is
# dominated by (1,2) only; (6,6) by everything else
POINTS = [(0, 5), (1, 2), (3, 1), (5, 0), (6, 6), (2, 3)]


def _brute_fronts(points):
    """Peel non-dominated sets by brute force (independent reference)."""
    left, fronts = set(range(len(points))), []
    while left:
        front = {
            i
            for i in left if not any(
                all(x <= y for x, y in zip(points[j], points[i])) and any(
                    x < y for x, y in zip(points[j], points[i]))
                for j in left if j != i)
        }
        fronts.append(sorted(front))
        left -= front
    return fronts


def test_dominates():
    assert dominates((1, 2), (2, 3))
    assert dominates((1, 2), (1, 3))
    assert not dominates((1, 2), (1, 2))
    assert not dominates((1, 3), (2, 2))


def test_non_dominated_sort_known_set():
    fronts = [sorted(f) for f in non_dominated_sort(POINTS)]
    assert fronts == [[0, 1, 2, 3], [5], [4]]
    assert fronts == _brute_fronts(POINTS)
    assert sorted(pareto_front(POINTS)) == [0, 1, 2, 3]
    assert pareto_front([]) == []


def test_non_dominated_sort_duplicates_and_random():
    # equal points do not dominate each other
    assert [sorted(f)
            for f in non_dominated_sort([(1, 1), (1, 1), (2, 2)])] == [[0, 1],
                                                                       [2]]
    rng = random.Random(0)
    for _ in range(20):
        pts = [(rng.randint(0, 6), rng.randint(0, 6), rng.randint(0, 6))
               for _ in range(25)]
        fronts = non_dominated_sort(pts)
        assert [sorted(f) for f in fronts] == _brute_fronts(pts)
        assert sorted(itertools.chain(*fronts)) == list(range(25))


def test_crowding_distance():
    front = [0, 1, 2, 3]
    dist = crowding_distance(POINTS, front)
    assert dist[0] == dist[3] == math.inf
    # objective 0 (range 5): (3-0)/5 for point 1, (5-1)/5 for point 2;
    # objective 1 (range 5): (5-1)/5 for point 1, (2-0)/5 for point 2
    assert dist[1] == pytest.approx(3 / 5 + 4 / 5)
    assert dist[2] == pytest.approx(4 / 5 + 2 / 5)
    assert crowding_distance(POINTS, [4, 5]) == {4: math.inf, 5: math.inf}


def test_nsga2_rank():
    # front 0 by crowding distance (inf, inf, 1.4, 1.2), then the others
    assert nsga2_rank(POINTS) == [0, 3, 1, 2, 5, 4]


def test_topk_and_objectives():
    records = [
        dict(score=s, flops=f)
        for s, f in [(0.3, 1), (0.5, 2), (0.5, 3), (0.1, 4)]
    ]
    top = topk_single(records, 2)
    assert top == [records[1], records[2]]  # ties: earlier first
    assert objectives(records[0], 'flops') == (-0.3, 1.0)


# --------------------------------------------------------------- constraints
def _uniform(choice):
    return (choice, ) * SPACE.num_layers


def test_constraints_flops_and_params():
    small, big = _uniform('shuffle_3x3'), _uniform('shuffle_7x7')
    (f_small, p_small), (f_big, p_big) = (arch_cost(SPACE, small),
                                          arch_cost(SPACE, big))
    assert f_small < f_big and p_small < p_big
    mid = (f_small + f_big) / 2
    cons = ArchConstraints(SPACE, flops=(None, mid))
    ok, info = cons.check(small)
    assert ok and info['violated'] is None
    assert (info['flops'], info['params']) == (f_small, p_small)
    ok, info = cons.check(big)
    assert not ok and info['violated'] == 'flops'
    cons = ArchConstraints(SPACE, flops=(mid, None))
    assert cons.check(big)[0] and not cons.check(small)[0]
    cons = ArchConstraints(SPACE, params=(None, (p_small + p_big) / 2))
    assert cons.check(small)[0]
    ok, info = cons.check(big)
    assert not ok and info['violated'] == 'params'
    # no constraint: everything passes
    assert ArchConstraints(SPACE).check(big)[0]


def test_constraints_describe_seen_range():
    small, big = _uniform('shuffle_3x3'), _uniform('shuffle_7x7')
    f_small, f_big = arch_cost(SPACE, small)[0], arch_cost(SPACE, big)[0]
    cons = ArchConstraints(SPACE, flops=(1e6, 2e6))
    assert 'nothing checked' in cons.describe()
    assert not cons.check(small)[0] and not cons.check(big)[0]
    text = cons.describe()
    assert f'{f_small:.4g}' in text and f'{f_big:.4g}' in text
    assert '1e+06' in text and '2e+06' in text  # the active range


def test_constraints_latency():
    with pytest.raises(ValueError, match='latency_fn'):
        ArchConstraints(SPACE, latency=(0, 10))
    calls = []

    def latency_fn(arch):
        calls.append(arch)
        return 5.0 if arch[0] == 'shuffle_3x3' else 20.0

    cons = ArchConstraints(SPACE, latency=(None, 10), latency_fn=latency_fn)
    ok, info = cons.check(_uniform('shuffle_3x3'))
    assert ok and info['latency_ms'] == 5.0
    ok, info = cons.check(_uniform('shuffle_7x7'))
    assert not ok and info['violated'] == 'latency_ms'
    cons.check(_uniform('shuffle_3x3'))
    assert len(calls) == 2  # cached per architecture
    # latency is not measured for archs that fail the cheap checks
    cons = ArchConstraints(
        SPACE, flops=(1, 2), latency=(None, 10), latency_fn=latency_fn)
    assert cons.check(_uniform('shuffle_5x5'))[1]['violated'] == 'flops'
    assert len(calls) == 2


@pytest.mark.parametrize('kwargs', [
    dict(flops=(3e8, 2e8)),
    dict(flops=(1, 2, 3)),
    dict(params=(5, 1)),
])
def test_constraints_bad_ranges(kwargs):
    with pytest.raises(ValueError):
        ArchConstraints(SPACE, **kwargs)
