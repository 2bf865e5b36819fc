"""SM-NAS backbone codes: one value, parsed and formatted in one place.

SM-NAS (Yao et al., AAAI 2020, Sec. 3, modular-level search) evolves a
ResNet-like backbone described by a short code. The string form is the one of
the original implementation, ``r{depth}_{base}_{arch}``, read as follows::

    r50_64_111-2111-211111-211
    |   |  '-- arch: 4 stages separated by '-', one character per block
    |   '----- base channels (positive integer, no leading zero)
    '--------- depth: 18 or 34 -> BasicBlock, 50, 101 or 152 -> Bottleneck

* ``depth`` only picks the residual block (and names the plain ResNet the
  code derives from, the reference of a FLOPs window); it does **not** count
  the layers of this code: ``r18_64_1-2-2-2`` is a valid 4-block network.
  Mutation and crossover never change it.
* Every block character is ``1`` (keep the width) or ``2`` (double the width
  at this block). Block ``j`` (counted over all stages) has
  ``planes = base * 2 ** (number of '2' among blocks 0..j)`` and outputs
  ``planes * expansion`` channels (expansion 1 for BasicBlock, 4 for
  Bottleneck); a stage outputs the channels of its last block.
* ``-`` is a stage border and marks where the resolution halves: the first
  block of stages 2, 3 and 4 has stride 2, every other block stride 1. The
  stem has stride 4, so there are exactly 4 stages with output strides
  ``(4, 8, 16, 32)``; every stage has at least one block.
* A block gets a 1x1 projection shortcut (conv + norm, as mmdet's ResNet)
  when its stride is 2 or its input and output channels differ.

The plain ResNets are ``r18_64_11-21-21-21``, ``r34_64_111-2111-211111-211``,
``r50_64_111-2111-211111-211``, ``r101_64_111-2111-2{22 x 1}-211`` and
``r152_64_111-21111111-2{35 x 1}-211`` (:func:`plain_code`).

Everything that takes a code from a user (config, CLI, file) calls
:func:`parse_code`; code downstream of it trusts the :class:`ResNetCode`.
"""
from dataclasses import dataclass
from typing import Dict, Tuple, Union

#: Block type of each supported depth (the original code's rule).
DEPTH_BLOCKS: Dict[int, str] = {
    18: 'basic',
    34: 'basic',
    50: 'bottleneck',
    101: 'bottleneck',
    152: 'bottleneck'
}
#: Channel expansion of the last conv of a block, per block type.
EXPANSION = {'basic': 1, 'bottleneck': 4}
#: Blocks per stage of the plain ResNet of each depth (He et al., 2016).
PLAIN_STAGE_BLOCKS: Dict[int, Tuple[int, ...]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3)
}
NUM_STAGES = 4
#: Output stride of each stage (stem stride 4, then x2 per stage border).
STAGE_STRIDES = (4, 8, 16, 32)
BLOCK_CHARS = ('1', '2')

CodeLike = Union[str, 'ResNetCode']


@dataclass(frozen=True)
class ResNetCode:
    """A decoded SM-NAS backbone code (see the module docstring).

    Hashable and comparable, so it can key a visited set or a FLOPs cache.
    ``str(code)`` is the canonical string form (:func:`format_code`).

    Args:
        depth (int): 18, 34 (BasicBlock) or 50, 101, 152 (Bottleneck).
        base_channels (int): Planes of the first block before any widening.
        stages (tuple[str]): 4 non-empty strings of ``'1'``/``'2'``, one
            character per block.

    Raises:
        TypeError: A field has the wrong type.
        ValueError: A field has a bad value (the message names it).
    """
    depth: int
    base_channels: int
    stages: Tuple[str, ...]

    def __post_init__(self):
        for name in ('depth', 'base_channels'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f'ResNetCode.{name} must be an int, got '
                                f'{value!r}')
        if self.depth not in DEPTH_BLOCKS:
            raise ValueError(f'ResNetCode.depth: expected one of '
                             f'{tuple(DEPTH_BLOCKS)}, got {self.depth}')
        if self.base_channels < 1:
            raise ValueError(f'ResNetCode.base_channels: expected a positive '
                             f'integer, got {self.base_channels}')
        stages = self.stages
        if isinstance(stages, str) or not isinstance(stages, (tuple, list)):
            raise TypeError(f'ResNetCode.stages must be a tuple of strings, '
                            f'got {stages!r}')
        object.__setattr__(self, 'stages', tuple(stages))
        if len(self.stages) != NUM_STAGES:
            raise ValueError(f'ResNetCode.stages: expected {NUM_STAGES} '
                             f'stages, got {len(self.stages)}')
        for k, stage in enumerate(self.stages):
            if not isinstance(stage, str):
                raise TypeError(f'ResNetCode.stages[{k}] must be a string, '
                                f'got {stage!r}')
            if not stage:
                raise ValueError(f'ResNetCode.stages[{k}]: expected at least '
                                 f"one block '1' or '2', got ''")
            for j, ch in enumerate(stage):
                if ch not in BLOCK_CHARS:
                    raise ValueError(
                        f'ResNetCode.stages[{k}][{j}]: expected a block '
                        f"'1' or '2', got {ch!r}")

    # ------------------------------------------------------------ derived
    @property
    def block(self) -> str:
        """``'basic'`` or ``'bottleneck'``."""
        return DEPTH_BLOCKS[self.depth]

    @property
    def expansion(self) -> int:
        """Output channels of a block per plane (1 or 4)."""
        return EXPANSION[self.block]

    @property
    def arch(self) -> str:
        """The block part of the string form, e.g. ``'11-21-21-21'``."""
        return '-'.join(self.stages)

    @property
    def blocks(self) -> str:
        """All block characters in order, without stage borders."""
        return ''.join(self.stages)

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    @property
    def stage_blocks(self) -> Tuple[int, ...]:
        """Blocks per stage."""
        return tuple(len(s) for s in self.stages)

    @property
    def num_widenings(self) -> int:
        """Number of ``'2'`` blocks (width doublings)."""
        return self.blocks.count('2')

    @property
    def widen_at(self) -> Tuple[int, ...]:
        """Global indices (over all blocks) of the blocks that double the
        width."""
        return tuple(i for i, c in enumerate(self.blocks) if c == '2')

    @property
    def downsample_at(self) -> Tuple[int, ...]:
        """Global indices of the stride-2 blocks (first block of stages
        2-4): where the resolution halves."""
        starts, n = [], 0
        for size in self.stage_blocks[:-1]:
            n += size
            starts.append(n)
        return tuple(starts)

    @property
    def block_planes(self) -> Tuple[int, ...]:
        """Planes (inner width) of every block; outputs are
        ``planes * expansion`` channels."""
        planes, width = [], self.base_channels
        for c in self.blocks:
            if c == '2':
                width *= 2
            planes.append(width)
        return tuple(planes)

    @property
    def block_strides(self) -> Tuple[int, ...]:
        """Stride (1 or 2) of every block."""
        down = set(self.downsample_at)
        return tuple(2 if i in down else 1 for i in range(self.num_blocks))

    @property
    def stage_channels(self) -> Tuple[int, ...]:
        """Output channels of the 4 stages (the neck's ``in_channels``)."""
        planes = self.block_planes
        ends = [sum(self.stage_blocks[:k + 1]) - 1 for k in range(NUM_STAGES)]
        return tuple(planes[e] * self.expansion for e in ends)

    @property
    def stem_channels(self) -> Tuple[int, int]:
        """Output channels of the two stem convs: ``(base // 2, base)``."""
        return (self.base_channels // 2, self.base_channels)

    def replace(self, **fields) -> 'ResNetCode':
        """A copy with some fields replaced (validated again)."""
        values = dict(
            depth=self.depth,
            base_channels=self.base_channels,
            stages=self.stages)
        values.update(fields)
        return ResNetCode(**values)

    def __str__(self) -> str:
        return format_code(self)


def format_code(code: 'ResNetCode') -> str:
    """The string form ``r{depth}_{base}_{arch}`` of a code.

    ``parse_code(format_code(c)) == c`` for every valid code, and
    ``format_code(parse_code(s)) == s`` for every valid string.
    """
    return f'r{code.depth}_{code.base_channels}_{code.arch}'


def _error(text: str, pos: int, expected: str,
           got: str = None) -> ValueError:
    if got is None:
        got = repr(text[pos]) if pos < len(text) else 'end of code'
    return ValueError(f'bad ResNet code {text!r} at position {pos}: expected '
                      f'{expected}, got {got}\n  {text}\n  {" " * pos}^')


def _read_int(text: str, pos: int, what: str) -> Tuple[int, int]:
    end = pos
    while end < len(text) and text[end].isdigit():
        end += 1
    if end == pos:
        raise _error(text, pos, f'the {what} (digits)')
    if text[pos] == '0':
        raise _error(text, pos,
                     f'the {what} as a positive integer without leading '
                     'zeros')
    return int(text[pos:end]), end


def parse_code(text: CodeLike) -> ResNetCode:
    """Parse and validate an SM-NAS backbone code.

    Args:
        text (str | ResNetCode): ``r{depth}_{base}_{arch}``, e.g.
            ``'r18_64_11-21-21-21'``; a :class:`ResNetCode` is returned as
            is.

    Returns:
        ResNetCode: the decoded code.

    Raises:
        TypeError: ``text`` is neither a string nor a ResNetCode.
        ValueError: the string is malformed; the message gives the
            0-based character position, what was expected there and what
            was found, with a caret under the position.
    """
    if isinstance(text, ResNetCode):
        return text
    if not isinstance(text, str):
        raise TypeError(f'a ResNet code is a string like '
                        f"'r18_64_11-21-21-21', got {text!r}")
    if not text.startswith('r'):
        raise _error(text, 0, "'r' (codes read r{depth}_{base}_{arch})")
    depth, pos = _read_int(text, 1, 'depth')
    if depth not in DEPTH_BLOCKS:
        raise _error(text, 1, f'a depth in {tuple(DEPTH_BLOCKS)}',
                     got=str(depth))
    if pos >= len(text) or text[pos] != '_':
        raise _error(text, pos, "'_' after the depth")
    base, pos = _read_int(text, pos + 1, 'base channels')
    if pos >= len(text) or text[pos] != '_':
        raise _error(text, pos, "'_' after the base channels")
    pos += 1
    stages, current = [], ''
    for i in range(pos, len(text)):
        ch = text[i]
        if ch in BLOCK_CHARS:
            current += ch
        elif ch == '-':
            if not current:
                raise _error(
                    text, i, f"a block '1' or '2' (stage {len(stages) + 1} "
                    'is empty)')
            if len(stages) == NUM_STAGES - 1:
                raise _error(
                    text, i, f"a block '1' or '2': a code has {NUM_STAGES} "
                    f"stages, so at most {NUM_STAGES - 1} '-'")
            stages.append(current)
            current = ''
        else:
            raise _error(
                text, i, "a block '1' (keep width) or '2' (double width) "
                "or a stage border '-'")
    if not current:
        raise _error(text, len(text),
                     f"a block '1' or '2' (stage {len(stages) + 1} is empty)")
    stages.append(current)
    if len(stages) != NUM_STAGES:
        raise _error(
            text, len(text), f"{NUM_STAGES} stages separated by '-', "
            f'found {len(stages)}')
    return ResNetCode(depth, base, tuple(stages))


def plain_code(depth: int, base_channels: int = 64) -> ResNetCode:
    """The code of the plain ResNet of ``depth`` (the width doubles and the
    resolution halves at the first block of stages 2-4).

    Raises:
        ValueError: unsupported depth.
    """
    if depth not in PLAIN_STAGE_BLOCKS:
        raise ValueError(f'no plain ResNet of depth {depth}; expected one '
                         f'of {tuple(PLAIN_STAGE_BLOCKS)}')
    stages = tuple(('1' if k == 0 else '2') + '1' * (n - 1)
                   for k, n in enumerate(PLAIN_STAGE_BLOCKS[depth]))
    return ResNetCode(depth, base_channels, stages)


def _conv_out(size: int, stride: int) -> int:
    # 3x3 convs with padding 1 and 1x1 convs with padding 0 both give
    # ceil(size / stride)
    return -(-size // stride)


def code_macs(code: CodeLike, input_size: Tuple[int, int] = (224, 224),
              in_channels: int = 3) -> int:
    """Backbone MACs of a code, computed in closed form.

    Counts the multiply-accumulates of every convolution (stem, blocks,
    projection shortcuts) of :class:`mmdetnas.models.SMNASResNet`, the
    project's FLOPs convention (conv/linear MACs only: no norm, activation,
    bias or addition); a test checks it against ``mmengine.analysis``.
    Cheap enough to be the FLOPs callable of a mutation's limits.

    Args:
        code (str | ResNetCode): The backbone code.
        input_size (tuple[int, int]): Input ``(H, W)`` in pixels.
        in_channels (int): Image channels.

    Returns:
        int: MACs for one image of shape ``(in_channels, H, W)``.
    """
    code = parse_code(code)
    h, w = input_size
    macs = 0

    def conv(cin, cout, k, stride):
        nonlocal h, w, macs
        h, w = _conv_out(h, stride), _conv_out(w, stride)
        macs += cin * cout * k * k * h * w

    half, base = code.stem_channels
    conv(in_channels, half, 3, 2)
    conv(half, base, 3, 2)
    inplanes, exp = base, code.expansion
    for planes, stride in zip(code.block_planes, code.block_strides):
        if code.block == 'basic':
            conv(inplanes, planes, 3, stride)
            conv(planes, planes, 3, 1)
        else:
            conv(inplanes, planes, 1, 1)
            conv(planes, planes, 3, stride)
            conv(planes, planes * exp, 1, 1)
        if stride != 1 or inplanes != planes * exp:
            macs += inplanes * planes * exp * h * w  # 1x1 projection
        inplanes = planes * exp
    return macs
