"""The SM-NAS searchable ResNet backbone, built from a backbone code.

SM-NAS (Yao et al., AAAI 2020), Sec. 3: the modular-level search evolves a
ResNet-like backbone (block type, base channels, blocks per stage, where the
width doubles and where the resolution halves) and trains every candidate on
the detection data from scratch, with GroupNorm + Weight Standardization.
The code's string form ``r{depth}_{base}_{arch}`` (e.g.
``'r18_64_11-21-21-21'``) is described in :mod:`mmdetnas.spaces.resnet_code`.

Layout, for an input ``(N, 3, H, W)``:

* stem: 3x3 conv stride 2 (3 -> base/2), norm, ReLU, 3x3 conv stride 2
  (base/2 -> base), norm, ReLU; output ``(N, base, ceil(H/4), ceil(W/4))``.
  This is the stem of the original SM-NAS code, kept for two reasons:
  it is what the searched backbones were trained with, and with no
  pre-trained weights a stem of small 3x3 convs is the usual choice for
  training detectors from scratch (the stem block of DSOD, Shen et al.,
  ICCV 2017). It also costs fewer MACs than mmdet's 7x7 conv for the
  same stride 4: 68.6M vs 118.0M at 224x224 for base 64 (mmdet's max-pool
  has no MACs).
* ``layer1`` .. ``layer4``: mmdet's ``BasicBlock`` / ``Bottleneck``
  (``style='pytorch'``: the stride is on the 3x3 conv), one per code
  character; a block whose stride is 2 or whose channels change gets a 1x1
  conv + norm projection shortcut named ``downsample`` as in mmdet's
  ``ResNet``. Stage ``i`` outputs ``(N, stage_channels[i], ceil(H / s),
  ceil(W / s))`` with ``s = (4, 8, 16, 32)[i]``.

For the plain codes (:func:`mmdetnas.spaces.resnet_code.plain_code`) the
four stages are exactly mmdet's ``ResNet(depth)`` stages: same blocks,
widths, strides, parameter names and shapes, hence the same output shapes,
parameters and MACs (tests/test_models/test_smnas_resnet.py checks it). Only
the stem differs.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck
from mmengine.model import BaseModule, Sequential

from mmdetnas.registry import MODELS
from mmdetnas.spaces.resnet_code import (NUM_STAGES, CodeLike, ResNetCode,
                                         parse_code)
from ._freezing import freeze_modules, train_keeping_frozen

BLOCKS = {'basic': BasicBlock, 'bottleneck': Bottleneck}
#: ``norm_cfg=dict(type='GN', num_groups=HALF_BASE)``: base/2 groups, the
#: original code's GroupNorm of the searched backbone (32 for base 64);
#: every layer width is a multiple of base/2, so any even base works.
HALF_BASE = 'half_base'


def _resolve_norm_cfg(norm_cfg: dict, code: ResNetCode) -> dict:
    """``norm_cfg`` with ``num_groups='half_base'`` resolved, checked
    against every normalised width of ``code``.

    Raises:
        ValueError: a GroupNorm width is not a multiple of ``num_groups``
            (the message names the layer and the width).
    """
    norm_cfg = dict(norm_cfg)
    if norm_cfg.get('type') not in ('GN', 'GroupNorm'):
        return norm_cfg
    groups = norm_cfg.get('num_groups')
    if groups == HALF_BASE:
        groups = norm_cfg['num_groups'] = code.base_channels // 2
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"norm_cfg['num_groups']: expected a positive int "
                         f"or {HALF_BASE!r}, got {groups!r}")
    widths = [('stem conv 1', code.stem_channels[0]),
              ('stem conv 2', code.stem_channels[1])]
    for i, planes in enumerate(code.block_planes):
        widths += [(f'block {i} inner', planes),
                   (f'block {i} output', planes * code.expansion)]
    for name, width in widths:
        if width % groups:
            raise ValueError(
                f'GroupNorm with num_groups={groups} cannot normalise the '
                f'{width} channels of the {name} of {code}; use a base '
                f'channel count that makes every width a multiple of '
                f'{groups}, or norm_cfg num_groups={HALF_BASE!r} (base/2 '
                'groups, as the original SM-NAS code)')
    return norm_cfg


@MODELS.register_module()
class SMNASResNet(BaseModule):
    """ResNet-like backbone built from an SM-NAS backbone code.

    Args:
        arch (str | ResNetCode): The backbone code, e.g.
            ``'r18_64_11-21-21-21'`` (ResNet-18 stages) or
            ``'r50_64_111-2111-211111-211'`` (ResNet-50 stages).
        in_channels (int): Image channels.
        out_indices (Sequence[int]): Stages whose outputs are returned
            (0..3, output strides 4, 8, 16, 32).
        frozen_stages (int): As mmdet's ResNet: ``-1`` freezes nothing,
            ``0`` the stem, ``k`` the stem and stages 1..k (eval mode, no
            gradients). From scratch: ``-1``.
        norm_eval (bool): As mmdet's ResNet: keep BatchNorm layers in eval
            mode while training (no effect on GroupNorm).
        conv_cfg (dict): Convolution config for every conv; the default
            ``dict(type='ConvWS')`` is mmcv's weight-standardised conv.
        norm_cfg (dict): Norm config for every norm; the default is
            ``dict(type='GN', num_groups=32, requires_grad=True)``.
            ``num_groups='half_base'`` uses base/2 groups (the original
            code's choice, which works for any even base).
        with_cp (bool): Gradient checkpointing inside blocks.
        zero_init_residual (bool): Zero-initialise the last norm of every
            block (off for the from-scratch recipe, as in the original).
        init_cfg (dict | list, optional): mmengine init config; default:
            Kaiming for convs, 1 for norm weights.

    Raises:
        ValueError: a bad code (position and expectation in the message),
            bad ``out_indices`` or ``frozen_stages``, or a GroupNorm that
            does not divide a width.
    """

    def __init__(self,
                 arch: CodeLike,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 conv_cfg: Optional[dict] = dict(type='ConvWS'),
                 norm_cfg: dict = dict(
                     type='GN', num_groups=32, requires_grad=True),
                 with_cp: bool = False,
                 zero_init_residual: bool = False,
                 init_cfg=None):
        if init_cfg is None:
            init_cfg = [
                dict(type='Kaiming', layer='Conv2d'),
                dict(type='Constant', val=1,
                     layer=['_BatchNorm', 'GroupNorm'])
            ]
        super().__init__(init_cfg)
        self.code = parse_code(arch)
        out_indices = tuple(out_indices)
        if not out_indices or any(
                i not in range(NUM_STAGES) for i in out_indices):
            raise ValueError(f'out_indices: expected stage indices in 0..'
                             f'{NUM_STAGES - 1}, got {out_indices}')
        if frozen_stages not in range(-1, NUM_STAGES + 1):
            raise ValueError(f'frozen_stages: expected -1..{NUM_STAGES}, got '
                             f'{frozen_stages}')
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.conv_cfg = conv_cfg
        self.norm_cfg = _resolve_norm_cfg(norm_cfg, self.code)
        self.zero_init_residual = zero_init_residual
        #: output channels of the 4 stages
        self.stage_channels: Tuple[int, ...] = self.code.stage_channels

        half, base = self.code.stem_channels
        self.stem = nn.Sequential(
            build_conv_layer(conv_cfg, in_channels, half, 3, 2, 1,
                             bias=False),
            build_norm_layer(self.norm_cfg, half)[1], nn.ReLU(inplace=True),
            build_conv_layer(conv_cfg, half, base, 3, 2, 1, bias=False),
            build_norm_layer(self.norm_cfg, base)[1], nn.ReLU(inplace=True))

        block = BLOCKS[self.code.block]
        last_norm = 'norm2' if block is BasicBlock else 'norm3'
        block_init = (dict(type='Constant', val=0,
                           override=dict(name=last_norm))
                      if zero_init_residual else None)
        inplanes = base
        planes = iter(self.code.block_planes)
        strides = iter(self.code.block_strides)
        self.res_layers: List[str] = []
        for k, num in enumerate(self.code.stage_blocks):
            blocks = []
            for _ in range(num):
                p, s = next(planes), next(strides)
                out = p * block.expansion
                downsample = None
                if s != 1 or inplanes != out:
                    downsample = nn.Sequential(
                        build_conv_layer(conv_cfg, inplanes, out, 1, s,
                                         bias=False),
                        build_norm_layer(self.norm_cfg, out)[1])
                blocks.append(
                    block(inplanes, p, stride=s, downsample=downsample,
                          style='pytorch', with_cp=with_cp,
                          conv_cfg=conv_cfg, norm_cfg=self.norm_cfg,
                          init_cfg=block_init))
                inplanes = out
            name = f'layer{k + 1}'
            # mmengine's Sequential runs its blocks' init_cfg
            self.add_module(name, Sequential(*blocks))
            self.res_layers.append(name)
        self._freeze_stages()

    @property
    def out_channels(self) -> Tuple[int, ...]:
        """Channels of the returned outputs, in ``out_indices`` order (the
        neck's ``in_channels``)."""
        return tuple(self.stage_channels[i] for i in self.out_indices)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Args:
            x (Tensor): Images ``(N, C, H, W)``.

        Returns:
            tuple[Tensor]: for each ``i`` in ``out_indices``
            ``(N, stage_channels[i], ceil(H / s_i), ceil(W / s_i))`` with
            ``s_i = (4, 8, 16, 32)[i]``.
        """
        x = self.stem(x)
        outs = []
        for i, name in enumerate(self.res_layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _frozen_modules(self) -> list:
        return ([self.stem] if self.frozen_stages >= 0 else []) + [
            getattr(self, f'layer{i}')
            for i in range(1, self.frozen_stages + 1)
        ]

    def _freeze_stages(self):
        freeze_modules(self._frozen_modules())

    def train(self, mode: bool = True):
        """Train mode, keeping frozen stages (and BatchNorm when
        ``norm_eval``) in eval mode."""
        super().train(mode)
        train_keeping_frozen(self, mode, self._frozen_modules(),
                             self.norm_eval)
        return self
