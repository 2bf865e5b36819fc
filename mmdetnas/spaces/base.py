"""The one interface every search space of mmdetnas has.

The evolutionary engine (:class:`mmdetnas.search.population.Population`) and
the search drivers see a space only through :class:`BaseSearchSpace`: they
draw, mutate, cross and validate *genomes*, compare them by :meth:`key`,
store them in records as :meth:`to_json` and read them back with
:meth:`from_json`. What a genome is differs per space:

========================================  ===================================
space                                     genome
========================================  ===================================
:class:`~.path_space.PathSpace` (DetNAS)  tuple of choice names, one per
                                          searchable layer
:class:`~.structural_space.               dict ``{component: choice or
StructuralSearchSpace` (SM-NAS, Sec. 3.1) None}``
:class:`~.code_space.ModularSearchSpace`  backbone code string
(SM-NAS, Sec. 3, modular level)           ``r{depth}_{base}_{arch}``
========================================  ===================================

Every random decision goes through the ``pyrandom.Random`` passed in, so a
seeded search is repeatable and its state (the engine's RNG) resumes
exactly.
"""
import abc
import random as pyrandom
from typing import Any, Hashable


class BaseSearchSpace(abc.ABC):
    """Abstract search space: genomes, their identity and the evolution
    operators (see the module docstring for the genome of each space)."""

    @abc.abstractmethod
    def validate(self, genome) -> Any:
        """``genome`` checked against the space, in canonical form.

        Raises:
            ValueError: the genome is not in the space; the message names
                the bad part and what was expected.
        """

    @abc.abstractmethod
    def key(self, genome) -> Hashable:
        """Hashable identity: two genomes with one key are one candidate."""

    @abc.abstractmethod
    def random(self, rng: pyrandom.Random) -> Any:
        """A random genome of the space."""

    @abc.abstractmethod
    def mutate(self, genome, rng: pyrandom.Random) -> Any:
        """A child of ``genome`` (it may equal the parent; the engine skips
        visited genomes)."""

    @abc.abstractmethod
    def crossover(self, a, b, rng: pyrandom.Random) -> Any:
        """A child of parents ``a`` and ``b``."""

    @abc.abstractmethod
    def label(self, genome) -> str:
        """A short human-readable, file-name safe name of ``genome``."""

    @abc.abstractmethod
    def to_json(self, genome) -> Any:
        """The JSON form of ``genome`` kept in records and
        ``candidates.jsonl``."""

    @abc.abstractmethod
    def from_json(self, value) -> Any:
        """The genome of a record's :meth:`to_json` value."""

    @abc.abstractmethod
    def identity(self) -> Any:
        """What a resumed search must share with the one that wrote its
        state (compared by the engine's identity check)."""
