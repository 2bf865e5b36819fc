"""Evolution operators and Pareto sorting, free of any model.

DetNAS Sec. 3.4 (evolutionary search of SPOS): mutation re-draws each layer
with probability ``prob``; crossover takes every layer uniformly from one of
two parents. Multi-objective selection (SM-NAS Sec. 3) uses the fast
non-dominated sorting and crowding distance of NSGA-II (Deb et al., 2002).
"""
import random
from typing import Dict, List, Sequence, Tuple

from mmdetnas.spaces.arch import Arch
from mmdetnas.spaces.search_space import SearchSpace


def random_arch(space: SearchSpace, rng: random.Random) -> Arch:
    """A uniformly random architecture."""
    return tuple(rng.choice(space.choices) for _ in range(space.num_layers))


def mutate(arch: Arch, space: SearchSpace, prob: float,
           rng: random.Random) -> Arch:
    """Re-draw each layer uniformly over its choices with probability
    ``prob`` (the re-drawn choice may equal the old one, as in SPOS)."""
    return tuple(
        rng.choice(space.choices) if rng.random() < prob else c for c in arch)


def crossover(a: Arch, b: Arch, rng: random.Random) -> Arch:
    """Uniform crossover: each layer from ``a`` or ``b`` with probability
    1/2."""
    return tuple(x if rng.random() < 0.5 else y for x, y in zip(a, b))


def dominates(p: Sequence[float], q: Sequence[float]) -> bool:
    """``p`` dominates ``q`` when it is no worse in every objective and
    better in one; every objective is *minimised* (negate scores)."""
    return all(x <= y for x, y in zip(p, q)) and any(
        x < y for x, y in zip(p, q))


def non_dominated_sort(points: Sequence[Sequence[float]]) -> List[List[int]]:
    """Fast non-dominated sorting (NSGA-II).

    Args:
        points: objective vectors, all minimised, e.g.
            ``(-mAP, flops)``.

    Returns:
        list[list[int]]: fronts of indices, best (the Pareto front) first.
    """
    n = len(points)
    dominated_by: List[List[int]] = [[] for _ in range(n)]
    count = [0] * n
    fronts: List[List[int]] = [[]]
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            if dominates(points[i], points[j]):
                dominated_by[i].append(j)
            elif dominates(points[j], points[i]):
                count[i] += 1
        if count[i] == 0:
            fronts[0].append(i)
    while fronts[-1]:
        nxt = []
        for i in fronts[-1]:
            for j in dominated_by[i]:
                count[j] -= 1
                if count[j] == 0:
                    nxt.append(j)
        fronts.append(sorted(nxt))
    return [f for f in fronts if f]


def crowding_distance(points: Sequence[Sequence[float]],
                      front: Sequence[int]) -> Dict[int, float]:
    """Crowding distance of the members of one front (NSGA-II); boundary
    points get ``inf``."""
    dist = {i: 0.0 for i in front}
    if len(front) <= 2:
        return {i: float('inf') for i in front}
    for m in range(len(points[front[0]])):
        order = sorted(front, key=lambda i: points[i][m])
        lo, hi = points[order[0]][m], points[order[-1]][m]
        dist[order[0]] = dist[order[-1]] = float('inf')
        if hi == lo:
            continue
        for k in range(1, len(order) - 1):
            dist[order[k]] += (points[order[k + 1]][m] -
                               points[order[k - 1]][m]) / (hi - lo)
    return dist


def nsga2_rank(points: Sequence[Sequence[float]]) -> List[int]:
    """All indices ordered best first: by front, then by crowding distance
    (larger first), then by index (deterministic)."""
    order: List[int] = []
    for front in non_dominated_sort(points):
        dist = crowding_distance(points, front)
        order.extend(sorted(front, key=lambda i: (-dist[i], i)))
    return order


def pareto_front(points: Sequence[Sequence[float]]) -> List[int]:
    """Indices of the non-dominated points (all objectives minimised)."""
    fronts = non_dominated_sort(points)
    return fronts[0] if fronts else []


def topk_single(records: Sequence[dict], k: int,
                key: str = 'score') -> List[dict]:
    """The ``k`` best records by ``key`` (ties: earlier record first)."""
    return sorted(records, key=lambda r: -r[key])[:k]


def objectives(record: dict, cost_key: str) -> Tuple[float, float]:
    """``(-score, cost)``: the minimised objectives of a record."""
    return (-record['score'], float(record[cost_key]))
