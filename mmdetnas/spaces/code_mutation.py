"""Random draw, mutation and crossover of SM-NAS backbone codes.

SM-NAS Sec. 3 (modular-level search) evolves the backbone code of
:mod:`mmdetnas.spaces.resnet_code`. The operators follow the original
implementation: a child changes the base channels with probability 1/2, then
applies a few structural moves, each one of: insert a ``'1'`` block, delete a
``'1'`` block, move a widening (``'2'``) by one block, move a stage border
(``'-'``) by one block. Unlike the original, the base-channel move picks a
*neighbouring* allowed value (the original meant to, but fell back to a
uniform pick), and a widening and a border move separately, so every
operator changes exactly what its name says.

Every function returns codes inside the :class:`CodeLimits` (blocks, allowed
base channels, number of widenings, optional FLOPs window), or ``None`` when
no such code exists. They take a ``random.Random`` and nothing else random,
so a seeded search is repeatable. Each operator lists its possible moves,
shuffles them and returns the first one inside the limits: a uniform draw
over the valid distinct results that calls the FLOPs callable as few times
as possible.
"""
import itertools
import random
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional, Tuple

from mmdetnas.spaces.resnet_code import DEPTH_BLOCKS, NUM_STAGES, ResNetCode

FlopsFn = Callable[[ResNetCode], float]


@dataclass(frozen=True)
class CodeLimits:
    """Which codes a search may produce.

    Args:
        min_blocks (int): Fewest blocks in total (at least 4, one per
            stage).
        max_blocks (int): Most blocks in total.
        base_channels (tuple[int]): Allowed base channels (the original
            search used 48, 56, 64, 72).
        num_widenings (int, optional): Required number of ``'2'`` blocks
            (3 in the original, as in a plain ResNet); ``None``: any.
        flops_fn (callable, optional): ``code -> cost``, e.g.
            ``functools.partial(code_macs, input_size=(600, 800))`` (MACs)
            or a ratio to the plain ResNet of the same depth.
        flops_window (tuple, optional): ``(low, high)`` inclusive bounds on
            ``flops_fn(code)``, in its unit; either bound may be ``None``.

    Raises:
        ValueError: inconsistent limits.
    """
    min_blocks: int = NUM_STAGES
    max_blocks: int = 36
    base_channels: Tuple[int, ...] = (48, 56, 64, 72)
    num_widenings: Optional[int] = 3
    flops_fn: Optional[FlopsFn] = None
    flops_window: Optional[Tuple[Optional[float], Optional[float]]] = None

    def __post_init__(self):
        if not NUM_STAGES <= self.min_blocks <= self.max_blocks:
            raise ValueError(f'CodeLimits: expected {NUM_STAGES} <= '
                             f'min_blocks <= max_blocks, got '
                             f'{self.min_blocks} and {self.max_blocks}')
        bases = tuple(sorted(set(self.base_channels)))
        if not bases or any(
                isinstance(b, bool) or not isinstance(b, int) or b < 1
                for b in bases):
            raise ValueError(f'CodeLimits.base_channels: expected positive '
                             f'integers, got {self.base_channels!r}')
        object.__setattr__(self, 'base_channels', bases)
        if self.num_widenings is not None and self.num_widenings < 0:
            raise ValueError(f'CodeLimits.num_widenings: expected >= 0 or '
                             f'None, got {self.num_widenings}')
        if (self.flops_window is None) != (self.flops_fn is None):
            raise ValueError('CodeLimits: flops_window and flops_fn go '
                             'together (give both or neither)')
        if self.flops_window is not None:
            lo, hi = self.flops_window
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f'CodeLimits.flops_window: low {lo} > '
                                 f'high {hi}')

    def violation(self, code: ResNetCode) -> Optional[str]:
        """Why ``code`` is outside the limits, or ``None`` if it is
        inside (the FLOPs callable runs only when every other limit
        holds)."""
        n = code.num_blocks
        if not self.min_blocks <= n <= self.max_blocks:
            return (f'{n} blocks, expected {self.min_blocks}..'
                    f'{self.max_blocks}')
        if code.base_channels not in self.base_channels:
            return (f'base channels {code.base_channels}, expected one of '
                    f'{self.base_channels}')
        if (self.num_widenings is not None
                and code.num_widenings != self.num_widenings):
            return (f"{code.num_widenings} widenings ('2'), expected "
                    f'{self.num_widenings}')
        if self.flops_window is not None:
            lo, hi = self.flops_window
            cost = self.flops_fn(code)
            if (lo is not None and cost < lo) or (hi is not None
                                                  and cost > hi):
                return f'FLOPs {cost:g} outside the window [{lo}, {hi}]'
        return None

    def is_valid(self, code: ResNetCode) -> bool:
        return self.violation(code) is None


def _with_blocks(code: ResNetCode, blocks: str,
                 stage_blocks: Iterable[int]) -> ResNetCode:
    stages, start = [], 0
    for n in stage_blocks:
        stages.append(blocks[start:start + n])
        start += n
    return code.replace(stages=tuple(stages))


def _first_valid(code: ResNetCode, moves: List[ResNetCode],
                 limits: CodeLimits,
                 rng: random.Random) -> Optional[ResNetCode]:
    """A uniformly random element of the valid distinct ``moves`` that
    differ from ``code`` (``None`` if there is none)."""
    distinct = list(dict.fromkeys(m for m in moves if m != code))
    rng.shuffle(distinct)
    for m in distinct:
        if limits.is_valid(m):
            return m
    return None


def random_code(depth: int, limits: CodeLimits, rng: random.Random,
                max_tries: int = 1000) -> ResNetCode:
    """A random code inside the limits (the original's random draw).

    The total number of blocks is uniform in ``[min_blocks, max_blocks]``,
    split into 4 non-empty stages at uniformly random borders; the
    widenings (``limits.num_widenings``, 3 if ``None``) sit on distinct
    uniformly random blocks; the base channels are uniform over the
    allowed ones. Draws outside a FLOPs window are redrawn.

    Args:
        depth (int): Depth field (block type) of the code.
        limits (CodeLimits): The limits.
        rng (random.Random): Random source.
        max_tries (int): Draws before giving up.

    Returns:
        ResNetCode: a valid code.

    Raises:
        ValueError: unsupported ``depth``.
        RuntimeError: no draw fell inside the limits.
    """
    if depth not in DEPTH_BLOCKS:
        raise ValueError(f'depth: expected one of {tuple(DEPTH_BLOCKS)}, got '
                         f'{depth}')
    widenings = 3 if limits.num_widenings is None else limits.num_widenings
    last = None
    for _ in range(max_tries):
        n = rng.randint(max(limits.min_blocks, widenings), limits.max_blocks)
        cuts = sorted(rng.sample(range(1, n), NUM_STAGES - 1))
        sizes = [b - a for a, b in zip([0] + cuts, cuts + [n])]
        wide = set(rng.sample(range(n), widenings))
        blocks = ''.join('2' if i in wide else '1' for i in range(n))
        code = _with_blocks(
            ResNetCode(depth, rng.choice(limits.base_channels),
                       ('1', ) * NUM_STAGES), blocks, sizes)
        last = limits.violation(code)
        if last is None:
            return code
    raise RuntimeError(f'no random depth-{depth} code inside {limits} in '
                       f'{max_tries} draws; last: {last}')


# ------------------------------------------------------------ operators
def insert_block(code: ResNetCode, limits: CodeLimits,
                 rng: random.Random) -> Optional[ResNetCode]:
    """Insert a ``'1'`` block anywhere in one stage (one more block, the
    same widenings in the same order and the other stages unchanged).

    Returns:
        ResNetCode | None: the child, or ``None`` when no insertion stays
        inside the limits.
    """
    moves = []
    for k, stage in enumerate(code.stages):
        for p in range(len(stage) + 1):
            stages = list(code.stages)
            stages[k] = stage[:p] + '1' + stage[p:]
            moves.append(code.replace(stages=tuple(stages)))
    return _first_valid(code, moves, limits, rng)


def delete_block(code: ResNetCode, limits: CodeLimits,
                 rng: random.Random) -> Optional[ResNetCode]:
    """Delete a ``'1'`` block from a stage that keeps at least one block
    (widenings are never deleted).

    Returns:
        ResNetCode | None: the child, or ``None`` when no deletion stays
        inside the limits.
    """
    moves = []
    for k, stage in enumerate(code.stages):
        if len(stage) < 2:
            continue
        for p, ch in enumerate(stage):
            if ch == '1':
                stages = list(code.stages)
                stages[k] = stage[:p] + stage[p + 1:]
                moves.append(code.replace(stages=tuple(stages)))
    return _first_valid(code, moves, limits, rng)


def move_widening(code: ResNetCode, limits: CodeLimits,
                  rng: random.Random) -> Optional[ResNetCode]:
    """Move one widening (``'2'``) to the neighbouring block before or
    after it, across a stage border if there is one; blocks per stage are
    unchanged.

    Returns:
        ResNetCode | None: the child, or ``None`` when no move stays
        inside the limits.
    """
    blocks, moves = code.blocks, []
    for i in code.widen_at:
        for j in (i - 1, i + 1):
            if 0 <= j < len(blocks) and blocks[j] == '1':
                chars = list(blocks)
                chars[i], chars[j] = chars[j], chars[i]
                moves.append(
                    _with_blocks(code, ''.join(chars), code.stage_blocks))
    return _first_valid(code, moves, limits, rng)


def move_stage_border(code: ResNetCode, limits: CodeLimits,
                      rng: random.Random) -> Optional[ResNetCode]:
    """Move one stage border (``'-'``) by one block: the last block of a
    stage joins the next stage or the other way round, so the resolution
    halves one block earlier or later. The block sequence (and so every
    widening) is unchanged and no stage becomes empty.

    Returns:
        ResNetCode | None: the child, or ``None`` when no move stays
        inside the limits.
    """
    sizes, moves = list(code.stage_blocks), []
    for k in range(NUM_STAGES - 1):
        for d in (-1, 1):  # -1: stage k gives its last block to stage k+1
            new = list(sizes)
            new[k] += d
            new[k + 1] -= d
            if min(new[k], new[k + 1]) >= 1:
                moves.append(_with_blocks(code, code.blocks, new))
    return _first_valid(code, moves, limits, rng)


def change_base_channels(code: ResNetCode, limits: CodeLimits,
                         rng: random.Random) -> Optional[ResNetCode]:
    """Set the base channels to an allowed value next to the current one
    (the next smaller or larger of ``limits.base_channels``).

    Returns:
        ResNetCode | None: the child, or ``None`` when neither neighbour
        stays inside the limits.
    """
    values = sorted(set(limits.base_channels) | {code.base_channels})
    i = values.index(code.base_channels)
    moves = [
        code.replace(base_channels=values[j]) for j in (i - 1, i + 1)
        if 0 <= j < len(values)
    ]
    return _first_valid(code, moves, limits, rng)


#: The structural moves :func:`mutate` draws from, by name.
STRUCTURE_OPERATORS = {
    'insert_block': insert_block,
    'delete_block': delete_block,
    'move_widening': move_widening,
    'move_stage_border': move_stage_border,
}


def mutate(code: ResNetCode,
           limits: CodeLimits,
           rng: random.Random,
           num_ops: int = 3,
           base_prob: float = 0.5,
           max_tries: int = 20) -> Optional[ResNetCode]:
    """One child of ``code``: with probability ``base_prob`` change the
    base channels, then ``num_ops`` structural moves, each uniformly one of
    :data:`STRUCTURE_OPERATORS` (a move that cannot apply is skipped).
    Every intermediate code is inside the limits. A child equal to
    ``code`` is redrawn.

    Args:
        code (ResNetCode): The parent.
        limits (CodeLimits): The limits every child respects.
        rng (random.Random): Random source.
        num_ops (int): Structural moves per child (3 in the original).
        base_prob (float): Probability of a base-channel change.
        max_tries (int): Redraws of an unchanged child.

    Returns:
        ResNetCode | None: a valid child different from ``code``, or
        ``None`` when ``max_tries`` draws gave none.
    """
    ops = list(STRUCTURE_OPERATORS.values())
    for _ in range(max_tries):
        child = code
        if rng.random() < base_prob:
            child = change_base_channels(child, limits, rng) or child
        for _ in range(num_ops):
            child = rng.choice(ops)(child, limits, rng) or child
        if child != code and limits.is_valid(child):
            return child
    return None


def crossover(a: ResNetCode, b: ResNetCode, limits: CodeLimits,
              rng: random.Random) -> Optional[ResNetCode]:
    """Stage-wise uniform crossover: each of the 4 stages (its blocks and
    widenings) and the base channels come from ``a`` or ``b``.

    Returns a uniformly random one of the combinations that are inside the
    limits and differ from both parents.

    Args:
        a (ResNetCode): Parent.
        b (ResNetCode): Parent of the same depth.
        limits (CodeLimits): The limits the child respects.
        rng (random.Random): Random source.

    Returns:
        ResNetCode | None: the child, or ``None`` when every valid
        combination equals a parent.

    Raises:
        ValueError: the parents have different depths (block types).
    """
    if a.depth != b.depth:
        raise ValueError(f'crossover needs parents of the same depth, got '
                         f'{a} and {b}')
    moves = [
        ResNetCode(a.depth, base,
                   tuple((a, b)[m].stages[k] for k, m in enumerate(mask)))
        for mask in itertools.product((0, 1), repeat=NUM_STAGES)
        for base in (a.base_channels, b.base_channels)
    ]
    moves = [m for m in moves if m != b]
    return _first_valid(a, moves, limits, rng)
