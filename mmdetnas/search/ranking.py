"""Ranking correlation between supernet scores and stand-alone training.

A one-shot search is only as good as the supernet's *ranking* of
architectures: the search keeps the candidates the supernet scores best, so
what matters is whether the architectures it prefers are the ones that are
best once trained alone. Yu et al., "Evaluating the search phase of neural
architecture search", ICLR 2020, measure this with Kendall's tau between the
supernet ranking and the stand-alone ranking of a few architectures, and
compare the supernet with trivial predictors. This module holds the
statistics and the choice of architectures to compare;
:mod:`mmdetnas.search.ranking_study` runs the experiment
(``tools/analysis_tools/ranking_correlation.py`` is its command line).

Conventions: for every predictor (supernet score, backbone FLOPs, params) and
for the stand-alone score, **higher means better**; a free proxy such as
FLOPs predicts "the bigger model is the more accurate one".
"""
import json
import math
import os.path as osp
import random
from typing import Dict, List, Optional, Sequence, Tuple

from mmdetnas.spaces.arch import Arch, resolve_arch
from mmdetnas.spaces.path_space import random_arch
from .flops import arch_cost
from mmdetnas.spaces.search_space import SearchSpace

#: Reference of the evaluation protocol, quoted in logs and reports.
REFERENCE = ('Yu et al., "Evaluating the search phase of neural '
             'architecture search", ICLR 2020')


def _pair(x: Sequence[float], y: Sequence[float]) -> Tuple[list, list]:
    x = [float(v) for v in x]
    y = [float(v) for v in y]
    if len(x) != len(y):
        raise ValueError(f'the two rankings have different lengths: '
                         f'{len(x)} and {len(y)}')
    return x, y


def _degenerate(x: list, y: list) -> bool:
    """Fewer than two values or a constant input: no correlation exists."""
    return len(x) < 2 or len(set(x)) < 2 or len(set(y)) < 2


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b between two score lists (ties handled as in
    :func:`scipy.stats.kendalltau`, ``variant='b'``).

    Args:
        x (Sequence[float]): Scores of the architectures by one predictor.
        y (Sequence[float]): Scores of the same architectures by another.

    Returns:
        float: tau-b in ``[-1, 1]``; ``nan`` when fewer than two values are
        given or either input is constant (tau-b is undefined then; scipy is
        not called, so no warning is raised).

    Raises:
        ValueError: ``x`` and ``y`` have different lengths.
    """
    return kendall_tau_test(x, y)[0]


def kendall_tau_test(x: Sequence[float],
                     y: Sequence[float]) -> Tuple[float, float]:
    """Kendall's tau-b and the two-sided p-value of the test of no
    association, as :func:`scipy.stats.kendalltau` (``variant='b'``; the
    exact null distribution for small inputs without ties, the normal
    approximation otherwise).

    The p-value tells whether a measured ranking correlation is
    distinguishable from chance: with 10 architectures, ``|tau|`` must exceed
    about 0.5 for ``p < 0.05``.

    Args:
        x (Sequence[float]): Scores of the architectures by one predictor.
        y (Sequence[float]): Scores of the same architectures by another.

    Returns:
        tuple[float, float]: ``(tau, p)``; both ``nan`` when fewer than two
        values are given or either input is constant.

    Raises:
        ValueError: ``x`` and ``y`` have different lengths.
    """
    x, y = _pair(x, y)
    if _degenerate(x, y):
        return math.nan, math.nan
    from scipy.stats import kendalltau
    res = kendalltau(x, y, variant='b')
    return float(res[0]), float(res[1])


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties), as
    :func:`scipy.stats.spearmanr`.

    Args:
        x (Sequence[float]): Scores of the architectures by one predictor.
        y (Sequence[float]): Scores of the same architectures by another.

    Returns:
        float: rho in ``[-1, 1]``; ``nan`` when fewer than two values are
        given or either input is constant (rho is undefined then; scipy is
        not called, so no warning is raised).

    Raises:
        ValueError: ``x`` and ``y`` have different lengths.
    """
    x, y = _pair(x, y)
    if _degenerate(x, y):
        return math.nan
    from scipy.stats import spearmanr
    return float(spearmanr(x, y)[0])


def _top_indices(values: list, k: int) -> set:
    # sorted() is stable: among equal values the earlier index comes first
    order = sorted(range(len(values)), key=lambda i: -values[i])
    return set(order[:k])


def topk_overlap(pred: Sequence[float], true: Sequence[float],
                 k: int) -> float:
    """Fraction of the ``k`` best architectures by ``true`` that are also
    among the ``k`` best by ``pred`` (higher is better for both).

    Ties at the boundary of the top ``k`` are broken by input order, the
    earlier architecture first (a stable sort), in both lists; so the result
    is deterministic but does depend on the order of tied inputs.

    Args:
        pred (Sequence[float]): Predicted scores (e.g. the supernet's).
        true (Sequence[float]): Ground-truth scores (stand-alone training).
        k (int): Size of the top set, ``1 <= k <= len(true)``.

    Returns:
        float: ``|top_k(pred) & top_k(true)| / k`` in ``[0, 1]``.

    Raises:
        ValueError: different lengths, or ``k`` out of range.
    """
    pred, true = _pair(pred, true)
    if not 1 <= int(k) <= len(true):
        raise ValueError(f'top-k overlap needs 1 <= k <= {len(true)} (the '
                         f'number of architectures), got k={k}')
    k = int(k)
    return len(_top_indices(pred, k) & _top_indices(true, k)) / k


def rank_report(supernet_scores: Sequence[float],
                standalone_scores: Sequence[float],
                proxies: Optional[Dict[str, Sequence[float]]] = None,
                k: int = 3) -> Dict[str, Dict[str, float]]:
    """Kendall tau, Spearman rho and top-k overlap of each predictor against
    the stand-alone ranking (the evaluation of Yu et al., ICLR 2020).

    Args:
        supernet_scores (Sequence[float]): Supernet score per architecture.
        standalone_scores (Sequence[float]): Stand-alone score per
            architecture (the ground truth).
        proxies (dict[str, Sequence[float]], optional): Other predictors
            (e.g. ``{'flops': [...], 'params': [...]}``), ranked the same way:
            a higher value predicts a better architecture.
        k (int): Size of the top set of :func:`topk_overlap`.

    Returns:
        dict: ``{'supernet': {'tau', 'tau_p', 'rho', 'topk'}, <proxy>:
        {...}}``, in that order; ``tau_p`` is the two-sided p-value of
        ``tau`` (:func:`kendall_tau_test`); ``tau``/``tau_p``/``rho`` may be
        ``nan`` (constant input).

    Raises:
        ValueError: a list of another length, ``k`` out of range, or a proxy
            named ``'supernet'``.
    """
    predictors = {'supernet': supernet_scores}
    for name, values in (proxies or {}).items():
        if name in predictors:
            raise ValueError(f'proxy name {name!r} is reserved')
        predictors[name] = values
    report = {}
    for name, values in predictors.items():
        tau, tau_p = kendall_tau_test(values, standalone_scores)
        report[name] = dict(
            tau=tau,
            tau_p=tau_p,
            rho=spearman_rho(values, standalone_scores),
            topk=topk_overlap(values, standalone_scores, k))
    return report


def supernet_agreement(
        score_lists: Sequence[Sequence[float]]) -> List[Dict[str, float]]:
    """How far several supernets of the same recipe (e.g. trained with
    different seeds) rank the same architectures alike: Kendall tau and its
    p-value (:func:`kendall_tau_test`) for every pair.

    A supernet whose ranking changes with its training seed cannot rank
    architectures reliably, whatever stand-alone training says; this check
    needs no stand-alone training.

    Args:
        score_lists (Sequence[Sequence[float]]): One score list per
            supernet, the same architectures in the same order.

    Returns:
        list[dict]: ``{'a', 'b', 'tau', 'tau_p'}`` for each pair ``a < b``
        (indices into ``score_lists``); empty for fewer than 2 supernets.

    Raises:
        ValueError: score lists of different lengths.
    """
    out = []
    for a in range(len(score_lists)):
        for b in range(a + 1, len(score_lists)):
            tau, p = kendall_tau_test(score_lists[a], score_lists[b])
            out.append(dict(a=a, b=b, tau=tau, tau_p=p))
    return out


def _spread_positions(n: int, num: int) -> List[int]:
    """``num`` distinct, evenly spaced positions in ``range(n)`` including
    both ends (``n >= num >= 2``)."""
    step = (n - 1) / (num - 1)
    return [int(math.floor(i * step + 0.5)) for i in range(num)]


def select_archs_in_flops_band(space: SearchSpace,
                               num: int,
                               flops_range: Sequence[float],
                               seed: int = 0,
                               pool: Optional[int] = None,
                               max_tries: int = 200000) -> List[Arch]:
    """Architectures spread evenly over a band of backbone FLOPs.

    Random architectures (each layer's choice uniform, drawn from
    ``random.Random(seed)``) are drawn until ``pool`` distinct ones with
    backbone MACs in ``[lo, hi]`` (DetNAS convention, see
    :func:`mmdetnas.search.flops.arch_cost`) are found; sorted by FLOPs,
    ``num`` of them at evenly spaced positions are returned (the pool's
    cheapest and most expensive included), as in the sampling of
    architectures of Yu et al., ICLR 2020.

    Args:
        space (SearchSpace): The search space.
        num (int): Architectures to return, ``>= 2``.
        flops_range (Sequence[float]): ``(lo, hi)`` backbone MACs.
        seed (int): Seed of the draws (same seed, same architectures).
        pool (int, optional): Distinct in-band architectures to collect
            before choosing (default ``max(20 * num, 100)``); a larger pool
            spreads the choice closer to the band's ends.
        max_tries (int): Random draws before giving up.

    Returns:
        list[tuple[str]]: ``num`` distinct architectures, ascending FLOPs.

    Raises:
        ValueError: ``num < 2``, a malformed band, or fewer than ``num``
            in-band architectures after ``max_tries`` draws (the message
            names the band and the FLOPs range seen).
    """
    if num < 2:
        raise ValueError(f'a ranking needs at least 2 architectures, got '
                         f'num={num}')
    if len(flops_range) != 2:
        raise ValueError(f'flops_range must be (lo, hi), got {flops_range!r}')
    lo, hi = (float(v) for v in flops_range)
    if lo > hi:
        raise ValueError(f'FLOPs band [{lo:g}, {hi:g}]: lo > hi')
    pool = max(20 * num, 100) if pool is None else int(pool)
    pool = max(pool, num)
    rng = random.Random(seed)
    found: Dict[Arch, int] = {}
    seen_lo, seen_hi = math.inf, -math.inf
    tries = 0
    while len(found) < pool and tries < max_tries:
        tries += 1
        arch = random_arch(space, rng)
        flops = arch_cost(space, arch)[0]
        seen_lo, seen_hi = min(seen_lo, flops), max(seen_hi, flops)
        if lo <= flops <= hi:
            found.setdefault(arch, flops)
    if len(found) < num:
        raise ValueError(
            f'only {len(found)} distinct architecture(s) of search space '
            f'{space.name!r} found with backbone FLOPs in the band '
            f'[{lo / 1e6:.2f}M, {hi / 1e6:.2f}M] MACs after {tries} random '
            f'draws (need {num}); the draws had FLOPs in '
            f'[{seen_lo / 1e6:.2f}M, {seen_hi / 1e6:.2f}M]: widen or move '
            'the band')
    ranked = sorted(found, key=lambda a: (found[a], a))
    return [ranked[i] for i in _spread_positions(len(ranked), num)]


def archs_from_candidates(jsonl_path: str,
                          num: int,
                          space: Optional[SearchSpace] = None) -> List[Arch]:
    """Architectures of a finished search, spread over its score ranking.

    Reads ``candidates.jsonl`` (one JSON record per line with ``arch``, a
    list of choice names, ``score`` and ``flops``), keeps the first record of
    each distinct architecture, sorts them by score (best first, stable) and
    returns ``num`` at evenly spaced positions, so that the best, the worst
    and the ones in between are all represented (Yu et al., ICLR 2020, rank
    architectures of the whole range, not only the top).

    Args:
        jsonl_path (str): Path of the search's ``candidates.jsonl``.
        num (int): Architectures to return, ``>= 2``.
        space (SearchSpace, optional): Validate every architecture against
            this search space.

    Returns:
        list[tuple[str]]: ``num`` distinct architectures, best score first.

    Raises:
        FileNotFoundError: no file at ``jsonl_path``.
        ValueError: ``num < 2``, a line that is not a JSON record with
            ``arch``, ``score`` and ``flops`` (path and line number in the
            message), an architecture outside ``space``, or fewer than
            ``num`` distinct architectures.
    """
    if num < 2:
        raise ValueError(f'a ranking needs at least 2 architectures, got '
                         f'num={num}')
    if not osp.isfile(jsonl_path):
        raise FileNotFoundError(
            f'candidates file not found: {jsonl_path!r} (the '
            'candidates.jsonl in the work dir of tools/search.py)')
    records: Dict[Arch, float] = {}
    with open(jsonl_path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f'{jsonl_path}:{lineno}: not a JSON record: '
                                 f'{e}') from e
            if not isinstance(rec, dict) or not {'arch', 'score', 'flops'
                                                 } <= set(rec):
                raise ValueError(
                    f'{jsonl_path}:{lineno}: expected a record with keys '
                    f"'arch', 'score' and 'flops', got {line.strip():.200}")
            try:
                score = float(rec['score'])
                if space is not None:
                    arch = resolve_arch(list(rec['arch']), space)[1]
                else:
                    arch = tuple(str(c) for c in rec['arch'])
            except (TypeError, ValueError) as e:
                raise ValueError(f'{jsonl_path}:{lineno}: {e}') from e
            records.setdefault(arch, score)
    if len(records) < num:
        raise ValueError(
            f'{jsonl_path}: {len(records)} distinct architecture(s), '
            f'{num} requested')
    # best first; a NaN score (no metric) ranks last
    ranked = sorted(
        records,
        key=lambda a: math.inf if math.isnan(records[a]) else -records[a])
    return [ranked[i] for i in _spread_positions(len(ranked), num)]
