"""The DetNAS ShuffleNetV2 search spaces (DetNAS paper, Sec. 3.3 and Table 1).

A search space fixes everything but the choice made at each layer: stem width,
stage widths, blocks per stage, and the list of candidate blocks ("choices").
Presets ``'300M'``, ``'1.3G'`` and ``'3.8G'`` are the three spaces of the
paper; ``'300M-kernel'`` is the 300M space with the kernel-size choices
only (3x3, 5x5, 7x7); a custom space is a dict with the same fields.
"""
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Tuple, Union

#: Choice names in the index order of the reference implementation.
CHOICES: Tuple[str, ...] = ('shuffle_3x3', 'shuffle_5x5', 'shuffle_7x7',
                            'shuffle_xception')

#: Kernel size of the depthwise convs of each known choice.
CHOICE_KERNELS: Dict[str, int] = {
    'shuffle_3x3': 3,
    'shuffle_5x5': 5,
    'shuffle_7x7': 7,
    'shuffle_xception': 3,
}


@dataclass(frozen=True)
class LayerSpec:
    """Static shape of one searchable layer.

    Attributes:
        index (int): Layer index in ``[0, num_layers)``.
        stage (int): Stage index in ``[0, 4)``.
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): 2 for the first block of a stage, else 1.
        in_size (int): Spatial size of the layer input for a 224x224 image
            (used for the FLOPs table of the DetNAS convention).
    """
    index: int
    stage: int
    in_channels: int
    out_channels: int
    stride: int
    in_size: int


@dataclass(frozen=True)
class SearchSpace:
    """A ShuffleNetV2-based DetNAS search space.

    Args:
        name (str): Name used in architecture files and logs.
        stem_channels (int): Output channels of the 3x3 stride-2 stem conv.
        stage_channels (tuple[int]): Output channels of the four stages.
        stage_blocks (tuple[int]): Number of blocks (layers) per stage.
        last_channels (int): Channels of the optional last 1x1 conv used for
            classification.
        choices (tuple[str]): Candidate block names, in index order; each must
            be one of :data:`CHOICE_KERNELS`.

    Raises:
        ValueError: if the lists have the wrong length, a channel number is
            odd, a stage is not wider than its input, or a choice name is
            unknown.
    """
    name: str
    stem_channels: int
    stage_channels: Tuple[int, ...]
    stage_blocks: Tuple[int, ...]
    last_channels: int
    choices: Tuple[str, ...] = field(default=CHOICES)

    def __post_init__(self):
        # normalise lists coming from configs into tuples (hashable)
        for name in ('stage_channels', 'stage_blocks', 'choices'):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if len(self.stage_channels) != len(self.stage_blocks):
            raise ValueError(
                f'search space {self.name!r}: stage_channels has '
                f'{len(self.stage_channels)} entries but stage_blocks has '
                f'{len(self.stage_blocks)}; expected one per stage')
        if len(self.stage_channels) != 4:
            raise ValueError(
                f'search space {self.name!r}: expected 4 stages (strides '
                f'4/8/16/32), got {len(self.stage_channels)}')
        for c in (self.stem_channels, *self.stage_channels):
            if c % 2:
                raise ValueError(
                    f'search space {self.name!r}: channel number {c} is '
                    'odd; ShuffleNetV2 blocks split channels in halves')
        # the first (stride-2) block of a stage concatenates its input,
        # projected, with a main branch of out - in channels
        in_ch = self.stem_channels
        for stage, out_ch in enumerate(self.stage_channels):
            if out_ch <= in_ch:
                raise ValueError(
                    f'search space {self.name!r}: stage {stage} has '
                    f'{out_ch} output channels but its input has {in_ch}; '
                    'expected more (the stride-2 block adds a main branch '
                    'of out - in channels to its projected input), i.e. '
                    'stem_channels < stage_channels[0] < ... < '
                    'stage_channels[3]')
            in_ch = out_ch
        for b in self.stage_blocks:
            if b < 1:
                raise ValueError(f'search space {self.name!r}: every stage '
                                 f'needs >= 1 block, got {self.stage_blocks}')
        unknown = [c for c in self.choices if c not in CHOICE_KERNELS]
        if unknown or not self.choices:
            raise ValueError(
                f'search space {self.name!r}: unknown choice(s) {unknown}; '
                f'expected a non-empty subset of {list(CHOICE_KERNELS)}')
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(f'search space {self.name!r}: duplicate choices '
                             f'in {list(self.choices)}')

    @property
    def num_layers(self) -> int:
        """Number of searchable layers (length of an architecture)."""
        return sum(self.stage_blocks)

    @property
    def num_choices(self) -> int:
        return len(self.choices)

    @property
    def stage_ends(self) -> List[int]:
        """Index of the last layer of each stage."""
        ends, total = [], 0
        for b in self.stage_blocks:
            total += b
            ends.append(total - 1)
        return ends

    def layers(self) -> List[LayerSpec]:
        """Static shape of every layer, for a 224x224 input."""
        specs, in_ch, size = [], self.stem_channels, 112
        for stage, (out_ch, blocks) in enumerate(
                zip(self.stage_channels, self.stage_blocks)):
            for i in range(blocks):
                stride = 2 if i == 0 else 1
                specs.append(
                    LayerSpec(len(specs), stage, in_ch, out_ch, stride, size))
                if stride == 2:
                    size = (size + 1) // 2
                in_ch = out_ch
        return specs

    def to_dict(self) -> dict:
        """Plain-dict form, as written into architecture files."""
        d = asdict(self)
        for k in ('stage_channels', 'stage_blocks', 'choices'):
            d[k] = list(d[k])
        return d

    def describe(self) -> str:
        return (f'{self.name} (stem {self.stem_channels}, stages '
                f'{list(self.stage_channels)} x {list(self.stage_blocks)}, '
                f'choices {list(self.choices)})')


PRESETS: Dict[str, SearchSpace] = {
    '300M': SearchSpace('300M', 16, (64, 160, 320, 640), (4, 4, 8, 4), 1024),
    '1.3G': SearchSpace('1.3G', 48, (96, 240, 480, 960), (8, 8, 16, 8), 1024),
    '3.8G': SearchSpace('3.8G', 72, (172, 432, 864, 1728), (8, 8, 16, 8),
                        1728),
    # the 300M widths with the kernel-size choices only (no Xception): the
    # space whose weight-entangled supernet (weight_sharing='kernel') learns
    # within CPU budgets; see docs/supernet_training.md
    '300M-kernel': SearchSpace('300M-kernel', 16, (64, 160, 320, 640),
                               (4, 4, 8, 4), 1024, CHOICES[:3]),
}


def build_search_space(cfg: Union[str, dict, SearchSpace]) -> SearchSpace:
    """Build a search space from a preset name, a dict or an instance.

    Args:
        cfg: ``'300M'``, ``'1.3G'``, ``'3.8G'``, ``'300M-kernel'``, a dict
            with the fields of
            :class:`SearchSpace` (``name`` optional, default ``'custom'``), or
            a :class:`SearchSpace`.

    Returns:
        SearchSpace: the (frozen, hashable) search space.

    Raises:
        KeyError: unknown preset name (the message lists the presets).
        TypeError: a value of another type, unknown dict keys, or a dict
            lacking a required field.
        ValueError: a dict named like a preset but different from it, or
            invalid fields (see :class:`SearchSpace`).
    """
    if isinstance(cfg, SearchSpace):
        return cfg
    if isinstance(cfg, str):
        if cfg not in PRESETS:
            raise KeyError(f'unknown search space {cfg!r}; expected one of '
                           f'{list(PRESETS)} or a dict with fields '
                           'stem_channels, stage_channels, stage_blocks, '
                           'last_channels[, choices, name]')
        return PRESETS[cfg]
    if isinstance(cfg, dict):
        cfg = dict(cfg)
        cfg.setdefault('name', 'custom')
        fields = set(SearchSpace.__dataclass_fields__)
        unknown = set(cfg) - fields
        if unknown:
            raise TypeError(f'unknown search space field(s) {sorted(unknown)};'
                            f' expected {sorted(fields)}')
        space = SearchSpace(**cfg)
        # a dict that equals a preset is that preset
        preset = PRESETS.get(space.name)
        if preset is not None and preset != space:
            raise ValueError(
                f'custom search space named {space.name!r} differs from the '
                f'preset of that name; rename it')
        return space
    raise TypeError(f'search_space must be a preset name, a dict or a '
                    f'SearchSpace, got {type(cfg).__name__}: {cfg!r}')
