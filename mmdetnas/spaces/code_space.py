"""The search space of the SM-NAS modular-level search (Yao et al., AAAI
2020, Sec. 3, second stage): the backbone code of a fixed detector.

A genome is a backbone code string ``r{depth}_{base}_{arch}``
(:mod:`mmdetnas.spaces.resnet_code`, always in the canonical form of
:func:`~mmdetnas.spaces.resnet_code.format_code`). The detector around it
(neck, heads, input size, schedule) is the base config, typically the
structural stage's chosen detector with the from-scratch recipe. Building a
candidate's config puts an :class:`mmdetnas.SMNASResNet` with the code into
``model.backbone`` (GroupNorm + Weight Standardization unless the space says
otherwise) and the stage channels it outputs into ``model.neck.in_channels``.

:class:`ModularSearchSpace` is a
:class:`~mmdetnas.spaces.base.BaseSearchSpace` with the
``scale`` and ``build_config`` of
:class:`~mmdetnas.spaces.structural_space.StructuralSearchSpace`, so one
search driver
(:class:`mmdetnas.engine.structural_search.StructuralSearch` and its
:class:`~mmdetnas.engine.structural_search.ModularSearch`) and one engine
(:class:`mmdetnas.search.population.Population`) run both stages.
"""
import copy
import random as pyrandom
from typing import Optional, Sequence, Tuple

from mmengine.config import Config

from mmdetnas.spaces.resnet_code import (DEPTH_BLOCKS, ResNetCode,
                                         code_macs, format_code, parse_code,
                                         plain_code)
from .base import BaseSearchSpace
from .code_mutation import CodeLimits, crossover, mutate, random_code

#: the from-scratch backbone norm of SM-NAS: GN with base/2 groups (valid for
#: any even base channels; 32 groups at base 64), as the original code has it
DEFAULT_NORM = dict(type='GN', num_groups='half_base', requires_grad=True)
DEFAULT_CONV = dict(type='ConvWS')


class ModularSearchSpace(BaseSearchSpace):
    """Backbone codes of one block type inside limits (see module doc).

    Args:
        depth (int): Block type of every code: 18/34 BasicBlock, 50/101/152
            Bottleneck (:data:`~mmdetnas.spaces.resnet_code.DEPTH_BLOCKS`).
        min_blocks (int): Fewest blocks in total (>= 4). Default 5, the
            original's random draw.
        max_blocks (int): Most blocks in total. Default 15.
        base_channels (Sequence[int]): Allowed base channels (default the
            original's 48, 56, 64, 72).
        num_widenings (int | None): ``'2'`` blocks per code (3 as a plain
            ResNet); ``None``: any number.
        flops_ratio (tuple, optional): ``(low, high)`` window on the
            backbone MACs as a ratio to the plain ResNet of ``depth`` (base
            64) at ``input_size``, the original's FLOPs window; either bound
            may be ``None``.
        input_size (tuple): ``(H, W)`` of the FLOPs ratio, normally the
            test size; the search driver fills it from the base config.
        num_ops (int): Structural moves per mutation (3 in the original).
        base_prob (float): Probability that a mutation changes the base
            channels (0.5 in the original).
        backbone (dict, optional): Extra ``SMNASResNet`` arguments merged
            into every candidate's backbone (default: ``conv_cfg=ConvWS``,
            ``norm_cfg=GN`` with base/2 groups, no pre-trained weights, no
            frozen stages, ``out_indices=(0, 1, 2, 3)``).

    Raises:
        ValueError: an unknown depth or inconsistent limits (the message
            names the value).
    """

    def __init__(self,
                 depth: int = 18,
                 min_blocks: int = 5,
                 max_blocks: int = 15,
                 base_channels: Sequence[int] = (48, 56, 64, 72),
                 num_widenings: Optional[int] = 3,
                 flops_ratio: Optional[Tuple] = None,
                 input_size: Tuple[int, int] = (800, 1333),
                 num_ops: int = 3,
                 base_prob: float = 0.5,
                 backbone: Optional[dict] = None):
        if depth not in DEPTH_BLOCKS:
            raise ValueError(f'modular_space.depth: expected one of '
                             f'{tuple(DEPTH_BLOCKS)}, got {depth!r}')
        self.depth = depth
        self.input_size = tuple(int(s) for s in input_size)
        self.num_ops = num_ops
        self.base_prob = base_prob
        self.flops_ratio = None if flops_ratio is None else tuple(flops_ratio)
        if self.flops_ratio is not None and len(self.flops_ratio) != 2:
            raise ValueError(f'modular_space.flops_ratio: expected (low, '
                             f'high), got {flops_ratio!r}')
        self._plain_macs = code_macs(plain_code(depth), self.input_size)
        self.limits = CodeLimits(
            min_blocks=min_blocks, max_blocks=max_blocks,
            base_channels=tuple(base_channels), num_widenings=num_widenings,
            flops_fn=self.flops_ratio_of if self.flops_ratio else None,
            flops_window=self.flops_ratio)
        self.backbone = dict(
            type='mmdetnas.SMNASResNet', out_indices=(0, 1, 2, 3),
            conv_cfg=DEFAULT_CONV, norm_cfg=DEFAULT_NORM, frozen_stages=-1,
            norm_eval=False, zero_init_residual=False, init_cfg=None)
        self.backbone.update(copy.deepcopy(dict(backbone or {})))
        self.backbone.pop('arch', None)

    @classmethod
    def from_cfg(cls, cfg) -> 'ModularSearchSpace':
        """Build from the config's ``modular_space`` dict.

        Raises:
            ValueError: unknown keys in ``modular_space`` or in its
                ``backbone`` (naming them and the keys expected), or a
                malformed value (see the class).
        """
        import inspect

        from mmdetnas.models.backbones.smnas_resnet import SMNASResNet
        cfg = dict(cfg or {})
        expected = [k for k in inspect.signature(cls.__init__).parameters
                    if k != 'self']
        unknown = sorted(set(cfg) - set(expected))
        if unknown:
            raise ValueError(f'modular_space: unknown key(s) {unknown}; '
                             f'expected some of {expected}')
        backbone = dict(cfg.get('backbone') or {})
        allowed = [k for k in inspect.signature(
            SMNASResNet.__init__).parameters if k != 'self'] + ['type']
        unknown = sorted(set(backbone) - set(allowed))
        if unknown:
            raise ValueError(
                f'modular_space.backbone: unknown key(s) {unknown} for '
                f'SMNASResNet; expected some of {allowed}')
        if backbone.get('type', 'mmdetnas.SMNASResNet') not in (
                'SMNASResNet', 'mmdetnas.SMNASResNet'):
            raise ValueError(
                f"modular_space.backbone.type: the modular search builds "
                f"'mmdetnas.SMNASResNet' backbones, got "
                f"{backbone['type']!r}")
        return cls(**cfg)

    def check_buildable(self, base: Config) -> None:
        """Check the space with the base config before any training: one
        code of the space (a random one, seeded) is built into a detector
        config, every ``type`` in its model is looked up in the registries,
        and its backbone is built (conv and norm configs, GroupNorm groups).

        Returns:
            None: the number of codes is not counted (the population is
            not compared with it).

        Raises:
            ValueError: a base config without ``model.backbone``, an
                unregistered type (its key path and close registered
                names), or a backbone that does not build; each names the
                code tried.
        """
        from mmdetnas.registry import MODELS  # imports its models lazily
        from .structural_space import _close, _registered, _types
        code = self.random(pyrandom.Random(0))
        cfg = self.build_config(base, code)
        for path, type_name in _types(cfg.model, 'model'):
            if not _registered(type_name):
                raise ValueError(
                    f'modular search: {path}.type={type_name!r} is not a '
                    f'registered type' + _close(type_name) +
                    f' (checked with the code {code}, before any training)')
        from mmengine.registry import DefaultScope
        try:
            # built as the detector's Runner builds it (mmdet scope)
            with DefaultScope.overwrite_default_scope(
                    base.get('default_scope', 'mmdet')):
                MODELS.build(copy.deepcopy(cfg.model.backbone))
        except Exception as e:
            raise ValueError(
                f'modular search: the backbone of the code {code} does not '
                f'build ({type(e).__name__}: {e}); check modular_space.'
                f'backbone') from e
        return None

    @property
    def components(self) -> dict:
        """What a resumed search must share with the one that wrote the
        state (the engine's identity check)."""
        lim = self.limits
        return dict(depth=self.depth, min_blocks=lim.min_blocks,
                    max_blocks=lim.max_blocks,
                    base_channels=lim.base_channels,
                    num_widenings=lim.num_widenings,
                    flops_ratio=self.flops_ratio,
                    input_size=self.input_size, num_ops=self.num_ops,
                    base_prob=self.base_prob, backbone=self.backbone)

    # ---------------------------------------------------------------- genes
    def flops_ratio_of(self, code) -> float:
        """Backbone MACs of ``code`` over those of the plain ResNet of the
        space's depth (base 64), both at ``input_size``."""
        return code_macs(code, self.input_size) / self._plain_macs

    def validate(self, genome) -> str:
        """A code (string or :class:`ResNetCode`) checked against the space;
        returns its canonical string.

        Raises:
            ValueError: malformed code (position and expectation, from
                :func:`parse_code`), another block type, or a code outside
                the limits (which limit, and the value).
        """
        code = parse_code(genome)
        if code.depth != self.depth:
            raise ValueError(f'{format_code(code)}: the space searches depth '
                             f'{self.depth} ({DEPTH_BLOCKS[self.depth]} '
                             f'blocks), got depth {code.depth}')
        why = self.limits.violation(code)
        if why is not None:
            raise ValueError(f'{format_code(code)} is outside the modular '
                             f'space: {why}')
        return format_code(code)

    def key(self, genome) -> str:
        """Hashable identity: the canonical code string."""
        return format_code(parse_code(genome))

    def random(self, rng: pyrandom.Random) -> str:
        """A random code inside the limits
        (:func:`~mmdetnas.spaces.code_mutation.random_code`)."""
        return format_code(random_code(self.depth, self.limits, rng))

    def mutate(self, genome, rng: pyrandom.Random) -> str:
        """A child of ``genome``
        (:func:`~mmdetnas.spaces.code_mutation.mutate`); the parent itself
        when no valid child exists (the engine then skips it as visited)."""
        child = mutate(parse_code(genome), self.limits, rng,
                       num_ops=self.num_ops, base_prob=self.base_prob)
        return format_code(child) if child is not None else self.key(genome)

    def crossover(self, a, b, rng: pyrandom.Random) -> str:
        """Stage-wise crossover
        (:func:`~mmdetnas.spaces.code_mutation.crossover`); parent ``a``
        when no valid child differs from both parents."""
        child = crossover(parse_code(a), parse_code(b), self.limits, rng)
        return format_code(child) if child is not None else self.key(a)

    def label(self, genome) -> str:
        """The code string (file-name safe)."""
        return self.key(genome)

    def to_json(self, genome) -> str:
        """The canonical code string (records, ``candidates.jsonl``)."""
        return self.key(genome)

    def from_json(self, value) -> str:
        return str(value)

    def identity(self) -> str:
        """``repr`` of :attr:`components` (what the search state
        records)."""
        return repr(self.components)

    def scale(self, genome) -> None:
        """The modular stage keeps the base config's input size."""
        return None

    # --------------------------------------------------------------- config
    def backbone_config(self, genome) -> dict:
        """``model.backbone`` of ``genome``: an ``SMNASResNet`` dict."""
        return dict(copy.deepcopy(self.backbone), arch=self.validate(genome))

    def build_config(self, base: Config, genome) -> Config:
        """The ordinary mmdet config of ``genome``: ``base`` with the
        backbone replaced by the code's ``SMNASResNet`` and
        ``model.neck.in_channels`` set to the channels of its output stages.

        Raises:
            ValueError: an invalid code (see :meth:`validate`); a base
                config without ``model.backbone``.
        """
        backbone = self.backbone_config(genome)  # validates the code once
        code: ResNetCode = parse_code(backbone['arch'])
        cfg = Config(copy.deepcopy(base._cfg_dict.to_dict()),
                     filename=base.filename)
        if cfg.get('model') is None or cfg.model.get('backbone') is None:
            raise ValueError('the modular search needs a base config with '
                             'model.backbone')
        cfg.model.backbone = backbone
        neck = cfg.model.get('neck')
        channels = [code.stage_channels[i] for i in backbone['out_indices']]
        for n in (neck if isinstance(neck, (list, tuple)) else [neck]):
            if n is not None and 'in_channels' in n:
                n.in_channels = channels
                break
        return cfg
