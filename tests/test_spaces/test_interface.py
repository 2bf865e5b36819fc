"""The one interface of every search space (BaseSearchSpace), checked the
same way on the three spaces of the toolkit: what a search does with a
genome (draw, validate, mutate, cross, store as JSON and read back, compare
by key) must hold for each, and nothing may depend on a global RNG."""
import json
import os.path as osp
import random

import pytest
from mmengine.config import Config

from mmdetnas.spaces import (BaseSearchSpace, ModularSearchSpace, PathSpace,
                             StructuralSearchSpace)
from tests.e2e_utils import ROOT


def _smnas(name):
    return Config.fromfile(osp.join(ROOT, 'configs', 'smnas', name))


def _spaces():
    structural = _smnas(
        'smnas_structural_faster-rcnn_mixed_fpn_quick_neon-trees.py')
    modular = _smnas(
        'smnas_modular_faster-rcnn_code-gnws_fpn_quick_neon-trees.py')
    return {
        'path': PathSpace('300M-kernel', mutate_prob=0.5),
        'structural': StructuralSearchSpace.from_cfg(
            structural.structural_space),
        'modular': ModularSearchSpace.from_cfg(
            dict(modular.modular_space, input_size=(256, 256))),
    }


SPACES = _spaces()


@pytest.mark.parametrize('name', sorted(SPACES))
def test_every_space_keeps_the_contract(name):
    space = SPACES[name]
    assert isinstance(space, BaseSearchSpace)
    rng = random.Random(0)
    genomes = [space.random(rng) for _ in range(12)]
    for g in genomes:
        # a drawn genome is in the space, and validating it keeps its key
        assert space.key(space.validate(g)) == space.key(g)
        # the JSON form survives a round trip through a jsonl line
        back = space.from_json(json.loads(json.dumps(space.to_json(g))))
        assert space.key(back) == space.key(g)
        label = space.label(g)
        assert label and '/' not in label and ' ' not in label
        hash(space.key(g))
    # children of members are members
    for a, b in zip(genomes, genomes[1:]):
        space.validate(space.mutate(a, rng))
        space.validate(space.crossover(a, b, rng))
    # the draws depend on the given generator only (the global one is
    # shuffled between two runs with one seed)
    def run(seed):
        r = random.Random(seed)
        out = []
        for _ in range(5):
            g = space.random(r)
            out += [space.key(g), space.key(space.mutate(g, r))]
        return out

    first = run(7)
    random.seed(12345)
    random.random()
    assert run(7) == first
    # the identity a resumed search compares is a plain, stable value
    ident = space.identity()
    assert isinstance(ident, (str, dict)) and ident == space.identity()
    json.dumps(ident)


def test_a_path_genome_in_indices_validates_to_names():
    space = SPACES['path']
    names = space.space.choices
    assert space.validate([0, 1, 2] * 6 + [0, 0]) == tuple(
        [names[0], names[1], names[2]] * 6 + [names[0], names[0]])
    with pytest.raises(ValueError, match='has 20'):
        space.validate([0] * 3)
    with pytest.raises(ValueError, match='mutate_prob'):
        PathSpace('300M', mutate_prob=1.5)
    # the label is the choice indices, one digit per layer
    assert space.label(space.validate([2] * 20)) == '2' * 20


def test_path_mutation_redraws_at_the_given_rate():
    """Each layer is re-drawn with probability mutate_prob, uniformly over
    its 3 choices: it changes with probability 0.5 * 2/3 = 1/3."""
    space = SPACES['path']
    rng = random.Random(1)
    parent = space.random(rng)
    changed = total = 0
    for _ in range(600):
        child = space.mutate(parent, rng)
        changed += sum(a != b for a, b in zip(parent, child))
        total += len(parent)
    rate = changed / total
    # 12000 layer draws: standard deviation sqrt(1/3 * 2/3 / 12000) = 0.0043
    assert abs(rate - 1 / 3) < 5 * 0.0043, rate
