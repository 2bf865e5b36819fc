"""Constraints checked before a candidate is evaluated (DetNAS Sec. 5).

Backbone FLOPs (MACs, DetNAS convention, 1x3x224x224) and parameters are
looked up in the cached table of :mod:`mmdetnas.search.flops`; the whole
detector's latency (ms) is measured only when a ``latency`` range is given,
and only for architectures that passed the cheap checks.
"""
import math
from typing import Callable, Dict, Optional, Sequence, Tuple

from mmdetnas.spaces.arch import Arch
from .flops import arch_cost, space_cost_span
from mmdetnas.spaces.search_space import SearchSpace

Range = Optional[Sequence[Optional[float]]]


def as_range(name: str, value: Range) -> Optional[Tuple[float, float]]:
    """A ``(min, max)`` constraint with open bounds made infinite.

    Args:
        name (str): The constraint's name, for the error message.
        value (Sequence | None): ``(min, max)``; either bound may be
            ``None`` (no bound); ``None`` means no constraint.

    Returns:
        tuple[float, float] | None: ``(lo, hi)`` with ``-inf``/``inf`` for
        open bounds, or ``None``.

    Raises:
        ValueError: not two values, or ``min > max``.
    """
    if value is None:
        return None
    if len(value) != 2:
        raise ValueError(f'constraint {name!r} must be (min, max), '
                         f'got {value!r}')
    lo = -math.inf if value[0] is None else float(value[0])
    hi = math.inf if value[1] is None else float(value[1])
    if lo > hi:
        raise ValueError(f'constraint {name!r}: min {lo} > max {hi}')
    return lo, hi


class ArchConstraints:
    """``(min, max)`` ranges on backbone FLOPs, params and latency.

    Args:
        space (SearchSpace): The search space.
        flops (tuple, optional): backbone MACs range (DetNAS convention);
            either bound may be ``None``.
        params (tuple, optional): backbone parameter count range.
        latency (tuple, optional): whole-model latency range in ms.
        latency_fn (callable, optional): ``arch -> ms``; required when
            ``latency`` is set or latency is recorded.

    Raises:
        ValueError: a malformed range, or ``latency`` without
            ``latency_fn``.
    """

    def __init__(self,
                 space: SearchSpace,
                 flops: Range = None,
                 params: Range = None,
                 latency: Range = None,
                 latency_fn: Optional[Callable[[Arch], float]] = None):
        self.space = space
        self.ranges = {
            'flops': as_range('flops', flops),
            'params': as_range('params', params),
            'latency_ms': as_range('latency', latency),
        }
        if self.ranges['latency_ms'] is not None and latency_fn is None:
            raise ValueError('a latency constraint needs a latency_fn')
        self.latency_fn = latency_fn
        self._latency_cache: Dict[Arch, float] = {}
        # (min, max) of each quantity over every checked architecture
        self.seen: Dict[str, Tuple[float, float]] = {}

    def _note(self, key: str, value: float):
        lo, hi = self.seen.get(key, (math.inf, -math.inf))
        self.seen[key] = (min(lo, value), max(hi, value))

    def latency(self, arch: Arch) -> float:
        """Measured latency in ms (cached per architecture)."""
        if arch not in self._latency_cache:
            self._latency_cache[arch] = float(self.latency_fn(arch))
        return self._latency_cache[arch]

    def check(self, arch: Arch,
              want_latency: bool = False) -> Tuple[bool, dict]:
        """Check ``arch``.

        Returns:
            (bool, dict): whether every range holds, and the measured
            ``flops`` / ``params`` (and ``latency_ms`` when constrained or
            ``want_latency``), plus ``violated`` (the first failing name).
        """
        flops, params = arch_cost(self.space, arch)
        info = dict(flops=flops, params=params, violated=None)
        self._note('flops', flops)
        self._note('params', params)
        for key in ('flops', 'params'):
            rng = self.ranges[key]
            if rng is not None and not rng[0] <= info[key] <= rng[1]:
                info['violated'] = key
                return False, info
        if self.ranges['latency_ms'] is not None or want_latency:
            info['latency_ms'] = self.latency(arch)
            self._note('latency_ms', info['latency_ms'])
            rng = self.ranges['latency_ms']
            if rng is not None and not rng[0] <= info['latency_ms'] <= rng[1]:
                info['violated'] = 'latency_ms'
                return False, info
        return True, info

    def check_reachable(self, setting: str = 'train_cfg') -> None:
        """Refuse a ``flops`` or ``params`` range that no path of the space
        can meet, before any candidate is proposed: every path's cost lies
        in :func:`~mmdetnas.search.flops.space_cost_span`.

        Args:
            setting (str): Where the ranges were set, for the message.

        Raises:
            ValueError: naming the range, the space and the span of its
                paths.
        """
        ranges = {k: self.ranges[k] for k in ('flops', 'params')
                  if self.ranges[k] is not None}
        if not ranges:
            return
        span = space_cost_span(self.space)
        units = {'flops': ' MACs', 'params': ' parameters'}
        for key, (lo, hi) in ranges.items():
            low, high = span[key]
            if hi < low or lo > high:
                raise ValueError(
                    f'{setting}.{key}=({lo:.6g}, {hi:.6g}){units[key]}: no '
                    f'path of the search space {self.space.name!r} fits; '
                    f'its paths span [{low:.6g}, {high:.6g}]{units[key]} '
                    f'(backbone at 1x3x224x224)')

    def describe(self) -> str:
        """The active ranges and the values seen so far, for error
        messages."""
        units = {'flops': 'MACs', 'params': '', 'latency_ms': 'ms'}
        active = [
            f'{k} in [{r[0]:.4g}, {r[1]:.4g}] {units[k]}'.rstrip()
            for k, r in self.ranges.items() if r is not None
        ] or ['none']
        seen = [
            f'{k} seen [{lo:.4g}, {hi:.4g}] {units[k]}'.rstrip()
            for k, (lo, hi) in self.seen.items()
        ]
        return (f"constraints: {', '.join(active)}; "
                f"{', '.join(seen) or 'nothing checked'}")
