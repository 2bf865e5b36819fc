"""Selection of an evolutionary search, free of any model and any space.

Multi-objective selection (SM-NAS Sec. 3) uses the fast non-dominated
sorting and crowding distance of NSGA-II (Deb et al., 2002); single-objective
selection takes the top-k by score. The genome operators (random draw,
mutation, crossover) belong to each search space (:mod:`mmdetnas.spaces`).
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np



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


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(
        value, bool)


def check_population_settings(population_size, max_generations, top_k,
                              num_mutation, num_crossover, mutate_prob=0.1,
                              max_tries_factor=10,
                              setting: str = 'train_cfg') -> None:
    """Check the population settings of a search, each on its own before
    the ones that combine them, so the message names the value that is
    wrong (``population_size=0`` is not blamed on the children):
    ``population_size``, ``max_generations`` and ``top_k`` (ints >= 1),
    ``num_mutation`` and ``num_crossover`` (ints >= 0), then
    ``num_mutation + num_crossover <= population_size``, then
    ``mutate_prob`` in [0, 1] and ``max_tries_factor`` (int >= 1).

    Args:
        setting (str): where the settings are written in the config
            (``'train_cfg'`` for the DetNAS search loop, e.g.
            ``'structural_search'`` for SM-NAS), for the messages.

    Raises:
        ValueError: the first bad setting, named ``<setting>.<name>`` with
            its value and what was expected.
    """
    for name, value, low, what in (
            ('population_size', population_size, 1,
             'candidates per generation'),
            ('max_generations', max_generations, 1, 'generations'),
            ('top_k', top_k, 1, 'parents kept per generation'),
            ('num_mutation', num_mutation, 0,
             'mutated children per generation'),
            ('num_crossover', num_crossover, 0,
             'crossover children per generation')):
        if not _is_int(value) or value < low:
            raise ValueError(
                f'{setting}.{name} must be an int >= {low} ({what}), got '
                f'{value!r}')
    if num_mutation + num_crossover > population_size:
        raise ValueError(
            f'{setting}: num_mutation ({num_mutation}) + num_crossover '
            f'({num_crossover}) = {num_mutation + num_crossover} exceeds '
            f'population_size ({population_size}); expected at most '
            'population_size children per generation (the rest of the '
            'population is random)')
    if isinstance(mutate_prob, bool) or not isinstance(
            mutate_prob, (int, float, np.floating)) or \
            not 0 <= mutate_prob <= 1:
        raise ValueError(f'{setting}.mutate_prob must be a probability in '
                         f'[0, 1], got {mutate_prob!r}')
    if not _is_int(max_tries_factor) or max_tries_factor < 1:
        raise ValueError(f'{setting}.max_tries_factor must be an int >= 1, '
                         f'got {max_tries_factor!r}')
