"""Path samplers for supernet training (DetNAS Sec. 3.2, SPOS).

A sampler draws one architecture (path) per call. In distributed training the
path must be the same on every rank: call :func:`sample_synced`, which samples
on rank 0 and broadcasts (never rely on equal seeds).
"""
import random
import warnings
from typing import Optional, Sequence, Tuple, Union

from mmdetnas.registry import TASK_UTILS
from mmdetnas.utils.dist import broadcast_object
from mmdetnas.spaces.arch import Arch
from .flops import arch_flops
from mmdetnas.spaces.search_space import SearchSpace, build_search_space


@TASK_UTILS.register_module()
class UniformPathSampler:
    """Each layer's choice drawn uniformly and independently (SPOS/DetNAS).

    Args:
        search_space (str | dict | SearchSpace): The search space.
        seed (int, optional): Seed of the sampler's own RNG; ``None`` draws
            one from Python's global RNG (seeded by mmengine's
            ``randomness.seed``).
    """

    def __init__(self,
                 search_space: Union[str, dict, SearchSpace] = '300M',
                 seed: Optional[int] = None):
        self.search_space = build_search_space(search_space)
        self.rng = random.Random(
            seed if seed is not None else random.getrandbits(64))

    def sample(self) -> Arch:
        """One architecture: a tuple of ``num_layers`` choice names."""
        choices = self.search_space.choices
        return tuple(
            self.rng.choice(choices)
            for _ in range(self.search_space.num_layers))

    def state_dict(self) -> dict:
        """Everything that decides the next paths (here the RNG state), for
        checkpoints: a sampler loading it samples what this one would."""
        return dict(rng=self.rng.getstate())

    def load_state_dict(self, state: dict):
        """Restore a :meth:`state_dict`.

        Raises:
            KeyError: ``state`` has no ``'rng'``.
        """
        self.rng.setstate(state['rng'])


@TASK_UTILS.register_module()
class FlopsBinPathSampler(UniformPathSampler):
    """Pick a FLOPs bin uniformly inside a range, then rejection-sample a
    uniform path whose backbone FLOPs fall inside it (the reference DetNAS
    ImageNet supernet sampler).

    Args:
        search_space: The search space.
        flops_range (tuple[float, float]): ``(min, max)`` backbone MACs
            under the DetNAS convention (1x3x224x224), e.g. ``(290e6, 360e6)``.
        bin_width (float): Width of a bin in MACs, e.g. ``10e6``.
        max_tries (int): Uniform draws per bin before the bin is declared
            unreachable and another bin is tried.
        seed (int, optional): See :class:`UniformPathSampler`.

    The bins found unreachable and the FLOPs range seen so far are part of
    :meth:`state_dict` with the RNG state: they decide the next draws (a dead
    bin is never picked again), so a resumed run samples the same paths as
    an uninterrupted one.

    Raises:
        ValueError: an empty range or a non-positive bin width.
        RuntimeError: (from :meth:`sample`) no bin of the range is reachable;
            the message gives the FLOPs range actually seen.
    """

    def __init__(self,
                 search_space: Union[str, dict, SearchSpace] = '300M',
                 flops_range: Sequence[float] = (290e6, 360e6),
                 bin_width: float = 10e6,
                 max_tries: int = 2000,
                 seed: Optional[int] = None):
        super().__init__(search_space, seed)
        lo, hi = map(float, flops_range)
        if not lo < hi:
            raise ValueError(f'flops_range must be (min, max) with min < max,'
                             f' got {tuple(flops_range)}')
        if bin_width <= 0:
            raise ValueError(f'bin_width must be > 0, got {bin_width}')
        self.flops_range = (lo, hi)
        n = max(1, int(round((hi - lo) / bin_width)))
        self.bins = [(lo + i * (hi - lo) / n, lo + (i + 1) * (hi - lo) / n)
                     for i in range(n)]
        self.max_tries = max_tries
        self._dead_bins = set()  # bins found unreachable stay dead
        self._seen: Tuple[float, float] = (float('inf'), float('-inf'))

    def sample(self) -> Arch:
        while len(self._dead_bins) < len(self.bins):
            b = self.rng.choice(
                [i for i in range(len(self.bins)) if i not in self._dead_bins])
            lo, hi = self.bins[b]
            for _ in range(self.max_tries):
                arch = super().sample()
                f = arch_flops(self.search_space, arch)
                self._seen = (min(self._seen[0], f), max(self._seen[1], f))
                if lo <= f < hi or (f == hi == self.flops_range[1]):
                    return arch
            self._dead_bins.add(b)
        raise RuntimeError(
            f'FlopsBinPathSampler: no path with backbone FLOPs in '
            f'[{self.flops_range[0]:.4g}, {self.flops_range[1]:.4g}] MACs '
            f'after {self.max_tries} draws per bin; FLOPs seen: '
            f'[{self._seen[0]:.4g}, {self._seen[1]:.4g}]')

    def state_dict(self) -> dict:
        """RNG state, dead bins and the FLOPs range seen (see the class)."""
        return dict(
            rng=self.rng.getstate(), dead_bins=sorted(self._dead_bins),
            seen=list(self._seen), bins=[list(b) for b in self.bins])

    def load_state_dict(self, state: dict):
        """Restore a :meth:`state_dict`.

        A state without ``dead_bins``/``seen`` (written before they were
        saved) restores the RNG and starts with no dead bin and nothing
        seen; a state written with other bins (another ``flops_range`` or
        ``bin_width``) restores no dead bin either, as its bin indices mean
        nothing here (a warning says so).

        Raises:
            KeyError: ``state`` has no ``'rng'``.
        """
        super().load_state_dict(state)
        self._dead_bins = set()
        seen = state.get('seen')
        self._seen = (float('inf'), float('-inf')) if seen is None else (
            float(seen[0]), float(seen[1]))
        if 'dead_bins' not in state:
            return
        bins = state.get('bins')
        if bins is not None and [tuple(map(float, b))
                                 for b in bins] != self.bins:
            warnings.warn(
                'FlopsBinPathSampler.load_state_dict: the state was written '
                f'with other FLOPs bins ({len(bins)} bins from {bins[0]} to '
                f'{bins[-1]}, here {len(self.bins)} from {self.bins[0]} to '
                f'{self.bins[-1]}); its dead bins are not restored')
            return
        self._dead_bins = {int(b) for b in state['dead_bins']}


def sample_synced(sampler: UniformPathSampler) -> Arch:
    """Sample on rank 0 and broadcast, so every rank runs the same path."""
    from mmengine.dist import get_rank
    arch = sampler.sample() if get_rank() == 0 else None
    return broadcast_object(arch)
