"""The DetNAS search space of paths: one choice block per searchable layer
of a ShuffleNetV2 supernet (DetNAS Sec. 3, Fig. 2).

A genome is an :data:`~mmdetnas.spaces.arch.Arch`, a tuple of choice names
(e.g. ``('shuffle_3x3', 'shuffle_xception', ...)``, one per layer of the
:class:`~mmdetnas.spaces.search_space.SearchSpace`). The evolution operators
are those of the evolutionary search of SPOS that DetNAS uses (DetNAS
Sec. 3.4): mutation re-draws each layer uniformly over its choices with
probability ``mutate_prob`` (the re-drawn choice may equal the old one),
crossover takes every layer uniformly from one of the two parents.
"""
import random as pyrandom
from typing import Sequence, Union

from .arch import Arch, arch_to_indices, resolve_arch
from .base import BaseSearchSpace
from .search_space import SearchSpace, build_search_space


def random_arch(space: SearchSpace, rng: pyrandom.Random) -> Arch:
    """A uniformly random path of ``space``."""
    return tuple(rng.choice(space.choices) for _ in range(space.num_layers))


def mutate_arch(arch: Arch, space: SearchSpace, prob: float,
                rng: pyrandom.Random) -> Arch:
    """Re-draw each layer uniformly over its choices with probability
    ``prob`` (the re-drawn choice may equal the old one, as in SPOS)."""
    return tuple(
        rng.choice(space.choices) if rng.random() < prob else c for c in arch)


def crossover_arch(a: Arch, b: Arch, rng: pyrandom.Random) -> Arch:
    """Uniform crossover: each layer from ``a`` or ``b`` with probability
    1/2."""
    return tuple(x if rng.random() < 0.5 else y for x, y in zip(a, b))


class PathSpace(BaseSearchSpace):
    """The paths of a DetNAS supernet as a search space (module doc).

    Args:
        space (SearchSpace | str | dict): The supernet's search space (a
            preset name such as ``'300M'`` or its dict).
        mutate_prob (float): Per-layer re-draw probability of
            :meth:`mutate` (0.1 in DetNAS's search).

    Raises:
        ValueError: an unknown preset, or ``mutate_prob`` outside [0, 1].
    """

    def __init__(self, space: Union[SearchSpace, str, dict],
                 mutate_prob: float = 0.1):
        self.space = build_search_space(space)
        if not 0.0 <= float(mutate_prob) <= 1.0:
            raise ValueError(f'mutate_prob: expected a probability in '
                             f'[0, 1], got {mutate_prob!r}')
        self.mutate_prob = float(mutate_prob)

    def validate(self, genome: Sequence) -> Arch:
        """The path as a tuple of choice names (indices and names are
        accepted, as everywhere an architecture is read).

        Raises:
            ValueError: wrong length or an unknown choice (from
                :func:`~mmdetnas.spaces.arch.resolve_arch`).
        """
        return resolve_arch(list(genome), self.space)[1]

    def key(self, genome: Sequence) -> Arch:
        return tuple(genome)

    def random(self, rng: pyrandom.Random) -> Arch:
        return random_arch(self.space, rng)

    def mutate(self, genome: Arch, rng: pyrandom.Random) -> Arch:
        return mutate_arch(tuple(genome), self.space, self.mutate_prob, rng)

    def crossover(self, a: Arch, b: Arch, rng: pyrandom.Random) -> Arch:
        return crossover_arch(tuple(a), tuple(b), rng)

    def label(self, genome: Arch) -> str:
        """The choice indices, e.g. ``'0120...'`` (``'-'``-separated when
        the space has more than 10 choices)."""
        sep = '' if self.space.num_choices <= 10 else '-'
        return sep.join(map(str, arch_to_indices(tuple(genome), self.space)))

    def to_json(self, genome: Arch) -> list:
        return list(genome)

    def from_json(self, value) -> Arch:
        return tuple(value)

    def identity(self) -> dict:
        """The space's ``to_dict()`` (what the search state records)."""
        return self.space.to_dict()
