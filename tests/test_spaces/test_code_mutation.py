"""Random draw, mutation and crossover of SM-NAS backbone codes."""
import functools
import itertools
import random

import pytest

from mmdetnas.spaces.resnet_code import (ResNetCode, code_macs, parse_code,
                                         plain_code)
from mmdetnas.spaces.code_mutation import (change_base_channels, CodeLimits,
                                           crossover, delete_block,
                                           insert_block, move_stage_border,
                                           move_widening, mutate, random_code,
                                           STRUCTURE_OPERATORS)

LIMITS = CodeLimits(min_blocks=5, max_blocks=15)
DRAWS = 2000


def inside(code, limits):
    """Independent check of the limits (not ``limits.is_valid``)."""
    ok = (limits.min_blocks <= len(''.join(code.stages)) <= limits.max_blocks
          and code.base_channels in limits.base_channels
          and len(code.stages) == 4 and all(code.stages)
          and set(''.join(code.stages)) <= {'1', '2'})
    if limits.num_widenings is not None:
        ok = ok and ''.join(code.stages).count('2') == limits.num_widenings
    if limits.flops_window is not None:
        lo, hi = limits.flops_window
        ok = ok and lo <= limits.flops_fn(code) <= hi
    return ok


def test_limits_validate_themselves():
    with pytest.raises(ValueError, match='min_blocks <= max_blocks'):
        CodeLimits(min_blocks=9, max_blocks=8)
    with pytest.raises(ValueError, match='min_blocks <= max_blocks'):
        CodeLimits(min_blocks=3)
    with pytest.raises(ValueError, match='positive integers'):
        CodeLimits(base_channels=())
    with pytest.raises(ValueError, match='positive integers'):
        CodeLimits(base_channels=(64, 0))
    with pytest.raises(ValueError, match='go together'):
        CodeLimits(flops_window=(0, 1))
    with pytest.raises(ValueError, match='low 2 > high 1'):
        CodeLimits(flops_fn=code_macs, flops_window=(2, 1))
    assert CodeLimits(base_channels=(72, 48, 64)).base_channels == (48, 64,
                                                                    72)


def test_violation_names_the_limit():
    code = parse_code('r18_64_11-21-21-21')
    assert LIMITS.violation(code) is None
    assert '16 blocks, expected 5..15' in LIMITS.violation(
        plain_code(34))
    assert 'base channels 32' in LIMITS.violation(code.replace(
        base_channels=32))
    assert "2 widenings ('2'), expected 3" in LIMITS.violation(
        parse_code('r18_64_11-21-21-11'))
    window = CodeLimits(flops_fn=lambda c: 5.0, flops_window=(6, None))
    assert 'FLOPs 5 outside the window [6, None]' in window.violation(code)


def test_random_codes_are_valid_and_repeatable():
    rng = random.Random(0)
    codes = [random_code(18, LIMITS, rng) for _ in range(DRAWS)]
    assert all(inside(c, LIMITS) and c.depth == 18 for c in codes)
    # the draw covers the whole range of blocks and every base
    assert {c.num_blocks for c in codes} == set(range(5, 16))
    assert {c.base_channels for c in codes} == {48, 56, 64, 72}
    assert len(set(codes)) > DRAWS // 2
    assert random_code(50, LIMITS, random.Random(3)) == random_code(
        50, LIMITS, random.Random(3))
    with pytest.raises(ValueError, match='depth: expected one of'):
        random_code(20, LIMITS, rng)
    impossible = CodeLimits(flops_fn=lambda c: 1.0, flops_window=(2, 3))
    with pytest.raises(RuntimeError, match='no random depth-18 code'):
        random_code(18, impossible, rng, max_tries=5)


def test_mutation_and_crossover_stay_valid_over_many_draws():
    rng = random.Random(1)
    children = crossed = 0
    for _ in range(DRAWS):
        depth = rng.choice([18, 50])
        a, b = (random_code(depth, LIMITS, rng) for _ in range(2))
        child = mutate(a, LIMITS, rng)
        # wide limits: a changed valid child always exists
        assert child is not None and child != a
        assert inside(child, LIMITS) and child.depth == depth
        children += 1
        child = crossover(a, b, LIMITS, rng)
        combos = {
            ResNetCode(depth, base,
                       tuple((a, b)[m].stages[k] for k, m in enumerate(mask)))
            for mask in itertools.product((0, 1), repeat=4)
            for base in (a.base_channels, b.base_channels)
        }
        valid = {c for c in combos if inside(c, LIMITS)} - {a, b}
        if child is None:
            assert not valid  # None only when no valid new child exists
            continue
        crossed += 1
        assert child in valid
        for k in range(4):
            assert child.stages[k] in (a.stages[k], b.stages[k])
    assert children == DRAWS and crossed > 0


def test_flops_window_is_respected():
    macs = functools.partial(code_macs, input_size=(64, 64))
    ref = macs(plain_code(18))
    limits = CodeLimits(min_blocks=4, max_blocks=15, base_channels=(48, 56,
                                                                    64, 72),
                        flops_fn=macs, flops_window=(0.8 * ref, 1.2 * ref))
    rng = random.Random(2)
    parents = [random_code(18, limits, rng) for _ in range(100)]
    for parent in parents:
        assert 0.8 * ref <= macs(parent) <= 1.2 * ref
        for op in (mutate, *STRUCTURE_OPERATORS.values(),
                   change_base_channels):
            child = op(parent, limits, rng)
            if child is not None:
                assert inside(child, limits), (op.__name__, parent, child)
        other = rng.choice(parents)
        child = crossover(parent, other, limits, rng)
        assert child is None or inside(child, limits)


def _stage_diff(a, b):
    return [k for k in range(4) if a.stages[k] != b.stages[k]]


def test_insert_and_delete_change_one_stage_by_one_plain_block():
    rng = random.Random(3)
    for _ in range(DRAWS // 4):
        parent = random_code(18, LIMITS, rng)
        for op, sign in ((insert_block, 1), (delete_block, -1)):
            child = op(parent, LIMITS, rng)
            if child is None:
                continue
            assert child.base_channels == parent.base_channels
            assert child.num_blocks == parent.num_blocks + sign
            (k, ) = _stage_diff(parent, child)
            longer, shorter = ((child, parent) if sign > 0 else
                               (parent, child))
            s_long, s_short = longer.stages[k], shorter.stages[k]
            # removing one '1' of the longer stage gives the shorter one
            assert any(s_long[p] == '1'
                       and s_long[:p] + s_long[p + 1:] == s_short
                       for p in range(len(s_long)))


def test_move_widening_swaps_one_two_with_a_neighbour():
    rng = random.Random(4)
    for _ in range(DRAWS // 4):
        parent = random_code(50, LIMITS, rng)
        child = move_widening(parent, LIMITS, rng)
        if child is None:
            continue
        assert child.stage_blocks == parent.stage_blocks
        assert child.base_channels == parent.base_channels
        a, b = ''.join(parent.stages), ''.join(child.stages)
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        assert len(diff) == 2 and diff[1] == diff[0] + 1
        assert {a[diff[0]] + a[diff[1]], b[diff[0]] + b[diff[1]]} == {
            '12', '21'}


def test_move_stage_border_shifts_one_border_by_one_block():
    rng = random.Random(5)
    for _ in range(DRAWS // 4):
        parent = random_code(18, LIMITS, rng)
        child = move_stage_border(parent, LIMITS, rng)
        if child is None:
            continue
        assert ''.join(child.stages) == ''.join(parent.stages)
        assert child.base_channels == parent.base_channels
        delta = [c - p for c, p in zip(child.stage_blocks,
                                       parent.stage_blocks)]
        k = _stage_diff(parent, child)
        assert len(k) == 2 and k[1] == k[0] + 1
        assert sorted(delta[i] for i in k) == [-1, 1]
        assert min(child.stage_blocks) >= 1


def test_change_base_channels_picks_a_neighbour():
    rng = random.Random(6)
    seen = {}
    for base in (48, 56, 64, 72):
        parent = parse_code(f'r18_{base}_11-21-21-21')
        for _ in range(50):
            child = change_base_channels(parent, LIMITS, rng)
            assert child.stages == parent.stages
            seen.setdefault(base, set()).add(child.base_channels)
    assert seen == {48: {56}, 56: {48, 64}, 64: {56, 72}, 72: {64}}
    # a base outside the allowed ones moves to an allowed neighbour
    child = change_base_channels(parse_code('r18_60_11-21-21-21'), LIMITS,
                                 rng)
    assert child.base_channels in (56, 64)


@pytest.mark.parametrize('op,text,limits', [
    (insert_block, 'r18_64_111-21-21-21', CodeLimits(max_blocks=9)),
    (delete_block, 'r18_64_1-2-2-2', CodeLimits()),
    (delete_block, 'r18_64_12-2-2-1', CodeLimits(min_blocks=5)),
    (move_widening, 'r18_64_2-2-2-2', CodeLimits(num_widenings=None)),
    (move_stage_border, 'r18_64_1-2-2-2', CodeLimits()),
    (change_base_channels, 'r18_64_1-2-2-2', CodeLimits(base_channels=(64,
                                                                       ))),
])
def test_operator_returns_none_when_impossible(op, text, limits):
    assert op(parse_code(text), limits, random.Random(0)) is None


def test_mutate_returns_none_when_nothing_can_change():
    frozen = CodeLimits(min_blocks=4, max_blocks=4, base_channels=(64, ),
                        num_widenings=4)
    assert mutate(parse_code('r18_64_2-2-2-2'), frozen,
                  random.Random(0)) is None


def test_mutate_is_repeatable_and_uses_every_operator():
    parent = plain_code(18, 56)
    kids = [mutate(parent, LIMITS, random.Random(s)) for s in range(200)]
    assert kids == [mutate(parent, LIMITS, random.Random(s))
                    for s in range(200)]
    assert any(k.base_channels != 56 for k in kids)
    assert any(k.base_channels == 56 for k in kids)
    assert any(k.num_blocks > 8 for k in kids)
    assert any(k.num_blocks < 8 for k in kids)
    assert any(k.widen_at != parent.widen_at for k in kids)
    assert any(k.downsample_at != parent.downsample_at for k in kids)


def test_crossover_needs_the_same_depth():
    with pytest.raises(ValueError, match='same depth'):
        crossover(plain_code(18), plain_code(50), LIMITS, random.Random(0))
    a = parse_code('r18_64_11-21-21-21')
    # parents differing in one stage only have no third child
    assert crossover(a, parse_code('r18_64_111-21-21-21'), LIMITS,
                     random.Random(0)) is None
