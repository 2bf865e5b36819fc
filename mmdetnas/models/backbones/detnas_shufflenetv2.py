"""The searchable DetNAS ShuffleNetV2 backbone: supernet and subnet in one.

DetNAS (Chen et al., NeurIPS 2019), Sec. 3.3. With ``arch=None`` the module
is a supernet: every layer holds all its choices and runs the one of the
active path (set by :meth:`DetNASShuffleNetV2.set_arch`, normally by
:class:`mmdetnas.engine.PathSamplerHook` or the search loop). With ``arch``
given it builds only the chosen blocks and is an ordinary backbone; its
state-dict keys are the supernet's keys of those blocks, so weights sliced out
of a supernet load with ``strict=True``.
"""
import re
import warnings
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from mmdetnas.registry import MODELS
from mmdetnas.spaces.arch import Arch, ArchLike, resolve_arch
from mmdetnas.spaces.search_space import (CHOICE_KERNELS, SearchSpace,
                                          build_search_space)
from ..layers import SHUFFLE_ORDERS, build_choice_block
from ._freezing import freeze_modules, train_keeping_frozen


WEIGHT_SHARING = ('none', 'kernel')
# optional state-dict entry recording the channel-shuffle order the weights
# were trained with (index into SHUFFLE_ORDERS, a 0-dim int64 tensor); the
# reference converter writes it, and loading it into a backbone built with
# the other order is an error instead of silently wrong features
SHUFFLE_ORDER_KEY = 'shuffle_order'


def shuffle_order_tensor(order: str) -> torch.Tensor:
    """The state-dict value under :data:`SHUFFLE_ORDER_KEY` for ``order``.

    Raises:
        ValueError: ``order`` is not one of ``SHUFFLE_ORDERS``.
    """
    if order not in SHUFFLE_ORDERS:
        raise ValueError(f'unknown shuffle_order {order!r}; expected one of '
                         f'{SHUFFLE_ORDERS}')
    return torch.tensor(SHUFFLE_ORDERS.index(order))


def entangled_routes(choices, weight_sharing: str = 'kernel') -> dict:
    """Which block runs each choice of a supernet layer.

    Args:
        choices (Sequence[str]): The choices of the search space.
        weight_sharing (str): ``'none'`` or ``'kernel'``.

    Returns:
        dict: ``choice -> (block key, kernel_size or None)``. With
        ``'kernel'`` every ``k x k`` choice maps to the ``k x k`` choice of
        the largest kernel, with its own kernel size as override (``None``
        for the largest itself); other choices map to themselves.
    """
    route = {c: (c, None) for c in choices}
    if weight_sharing == 'kernel':
        kxk = [c for c in choices if c != 'shuffle_xception']
        if kxk:
            big = max(kxk, key=lambda c: CHOICE_KERNELS[c])
            for c in kxk:
                route[c] = (big, None if c == big else CHOICE_KERNELS[c])
    return route


def build_stem(channels: int,
               conv_cfg: Optional[dict] = None,
               norm_cfg: dict = dict(type='BN'),
               act_cfg: dict = dict(type='ReLU')) -> ConvModule:
    """The stem: 3x3 conv stride 2 **with bias**, BN, ReLU (DetNAS Sec. 3.3).

    ``(N, 3, H, W) -> (N, channels, ceil(H / 2), ceil(W / 2))``.
    """
    with warnings.catch_warnings():
        # the reference stem conv has a bias before its BN (kept for weight
        # compatibility); silence mmcv's warning about it
        warnings.simplefilter('ignore', UserWarning)
        return ConvModule(3, channels, 3, stride=2, padding=1, bias=True,
                          conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                          act_cfg=act_cfg)


@MODELS.register_module()
class DetNASShuffleNetV2(BaseModule):
    """DetNAS ShuffleNetV2 supernet / subnet backbone.

    Args:
        search_space (str | dict | SearchSpace, optional): ``'300M'``,
            ``'1.3G'``, ``'3.8G'`` or a custom dict (see
            :class:`mmdetnas.spaces.SearchSpace`). ``None``: the space of
            ``arch`` if that names one (file or official name), else
            ``'300M'``.
        arch (list | str, optional): Fixed architecture, making this a
            subnet: a list of choice names or indices, a path to an
            architecture file, or an official name such as
            ``'COCO-FPN-300M'``. ``None`` builds the supernet.
        out_indices (Sequence[int]): Stages whose outputs are returned
            (0..3, strides 4, 8, 16, 32).
        with_last_conv (bool): Append the 1x1 conv (``last_channels``, BN,
            ReLU) of the classification network after stage 3; the output of
            index 3 is then the last conv's output.
        shuffle_order (str): ``'transpose'`` (reference supernets, default)
            or ``'interleave'`` (released official single models). See
            :func:`mmdetnas.models.layers.channel_shuffle_split`.
        weight_sharing (str): How the choices of a supernet layer hold
            their weights. ``'none'`` (DetNAS/SPOS, the reference layout):
            every choice has its own weights. ``'kernel'`` (weight
            entanglement, as the elastic kernel of Once-for-All, Cai et al.
            ICLR 2020, and the superkernel of Single-Path NAS, Stamoulis et
            al. 2019): the ``k x k`` choices of a layer are one block with
            the largest kernel, stored under that choice's key; a smaller
            ``k x k`` choice runs it with the centre of its depthwise
            kernels, sharing its 1x1 convs and norms. Xception choices keep
            their own weights. A random-path supernet with independent
            weights stays near chance at short schedules; see
            ``docs/supernet_training.md``. Ignored by a subnet (``arch``
            given): it is an ordinary network, and
            :func:`slice_supernet_state_dict` crops its kernels out of an
            entangled supernet.
        conv_cfg, norm_cfg, act_cfg (dict): mmcv ``ConvModule`` configs.
        norm_eval (bool): Keep norm layers in eval mode during training.
        frozen_stages (int): -1 freezes nothing; 0 freezes the stem; ``k``
            freezes the stem and stages ``0..k-1``.
        init_cfg (dict | list, optional): mmengine init config, e.g.
            ``dict(type='Pretrained', checkpoint=...)``.

    Shapes:
        input ``(N, 3, H, W)``; output ``i`` is
        ``(N, C_i, ceil(H / 2**(i+2)), ceil(W / 2**(i+2)))`` with ``C_i`` the
        stage channels (``last_channels`` for index 3 with the last conv);
        exact sizes follow conv arithmetic (``(s - 1) // 2 + 1`` per
        stride-2 step).

    Raises:
        ValueError: bad ``out_indices``, ``frozen_stages``,
            ``shuffle_order`` or architecture (wrong length, unknown choice).
    """

    def __init__(self,
                 search_space: Union[None, str, dict, SearchSpace] = None,
                 arch: Optional[ArchLike] = None,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 with_last_conv: bool = False,
                 shuffle_order: str = 'transpose',
                 weight_sharing: str = 'none',
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'),
                 norm_eval: bool = False,
                 frozen_stages: int = -1,
                 init_cfg: Union[None, dict, list] = None):
        super().__init__(init_cfg=init_cfg)
        if arch is not None:
            space, fixed = resolve_arch(arch, search_space)
        else:
            space, fixed = build_search_space(search_space or '300M'), None
        out_indices = tuple(out_indices)
        if not out_indices or any(i not in range(4) for i in out_indices):
            raise ValueError(f'out_indices must be a non-empty subset of '
                             f'(0, 1, 2, 3), got {out_indices}')
        if frozen_stages not in range(-1, 5):
            raise ValueError(
                f'frozen_stages must be in -1..4, got {frozen_stages}')
        if shuffle_order not in SHUFFLE_ORDERS:
            raise ValueError(f'unknown shuffle_order {shuffle_order!r}; '
                             f'expected one of {SHUFFLE_ORDERS}')
        if weight_sharing not in WEIGHT_SHARING:
            raise ValueError(f'unknown weight_sharing {weight_sharing!r}; '
                             f'expected one of {WEIGHT_SHARING}')
        self.weight_sharing = weight_sharing if fixed is None else 'none'
        self.shuffle_order = shuffle_order
        self.search_space = space
        self.out_indices = out_indices
        self.norm_eval = norm_eval
        self.frozen_stages = frozen_stages
        self.fixed_arch: Optional[Arch] = fixed
        self._active: Optional[Arch] = fixed

        self.stem = build_stem(space.stem_channels, conv_cfg, norm_cfg,
                               act_cfg)
        block_kw = dict(shuffle_order=shuffle_order, conv_cfg=conv_cfg,
                        norm_cfg=norm_cfg, act_cfg=act_cfg)
        # choice -> (key of the block that runs it, kernel override or None)
        self._route = entangled_routes(
            space.choices if fixed is None else (), self.weight_sharing)
        self.layers = nn.ModuleList()
        for spec in space.layers():
            names = (sorted({k for k, _ in self._route.values()},
                            key=space.choices.index)
                     if fixed is None else (fixed[spec.index], ))
            self.layers.append(nn.ModuleDict({
                c: build_choice_block(c, spec.in_channels, spec.out_channels,
                                      spec.stride, **block_kw)
                for c in names
            }))
        self._stage_of_layer = [spec.stage for spec in space.layers()]
        self.last_conv = ConvModule(
            space.stage_channels[-1], space.last_channels, 1, bias=False,
            conv_cfg=conv_cfg, norm_cfg=norm_cfg,
            act_cfg=act_cfg) if with_last_conv else None
        self.out_channels = [
            space.last_channels if (i == 3 and with_last_conv) else c
            for i, c in enumerate(space.stage_channels)
        ]
        self._freeze_stages()

    # ------------------------------------------------------------------ path
    @property
    def is_supernet(self) -> bool:
        """True when every layer holds all its choices."""
        return self.fixed_arch is None

    @property
    def arch(self) -> Optional[Arch]:
        """The active path (the fixed architecture of a subnet)."""
        return self._active

    def set_arch(self, arch: ArchLike) -> Arch:
        """Activate a path of the supernet.

        Args:
            arch: anything :func:`mmdetnas.search.resolve_arch` accepts.

        Returns:
            tuple[str]: the validated architecture.

        Raises:
            ValueError: invalid architecture, or a subnet asked for another
                path than the one it was built with.
        """
        arch = arch if self._is_valid(arch) else resolve_arch(
            arch, self.search_space)[1]
        if self.fixed_arch is not None and arch != self.fixed_arch:
            raise ValueError(
                f'this backbone is a fixed subnet {list(self.fixed_arch)}; it'
                f' cannot run path {list(arch)}. Build a supernet '
                '(arch=None) to switch paths')
        self._active = arch
        return arch

    def _is_valid(self, arch) -> bool:
        # fast path for tuples produced by samplers / the search loop
        return (isinstance(arch, tuple)
                and len(arch) == self.search_space.num_layers
                and all(c in self.search_space.choices for c in arch))

    # --------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> tuple:
        """Run the active path.

        Args:
            x (Tensor): ``(N, 3, H, W)`` images.

        Returns:
            tuple[Tensor]: the stage outputs of ``out_indices``.

        Raises:
            RuntimeError: a supernet with no active path.
        """
        arch = self._active
        if arch is None:
            raise RuntimeError(
                'DetNASShuffleNetV2 is a supernet with no active path: call '
                'backbone.set_arch(arch), add mmdetnas.PathSamplerHook to '
                'custom_hooks, or build a subnet with arch=...')
        x = self.stem(x)
        outs = []
        ends = self.search_space.stage_ends
        stage = 0
        route = self._route
        for i, (layer, choice) in enumerate(zip(self.layers, arch)):
            key, k = route.get(choice, (choice, None))
            x = layer[key](x) if k is None else layer[key](x, kernel_size=k)
            if i == ends[stage]:
                if stage == 3 and self.last_conv is not None:
                    x = self.last_conv(x)
                if stage in self.out_indices:
                    outs.append(x)
                stage += 1
        return tuple(outs)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Check the optional shuffle-order record, then load as usual.

        Raises:
            RuntimeError: the state dict records a channel-shuffle order
                (``<prefix>shuffle_order``, written by
                ``tools/model_converters/detnas_to_mmdetnas.py``) other than
                this backbone's ``shuffle_order``.
        """
        key = prefix + SHUFFLE_ORDER_KEY
        if key in state_dict:
            code = int(state_dict.pop(key))
            saved = (SHUFFLE_ORDERS[code] if 0 <= code < len(SHUFFLE_ORDERS)
                     else f'<code {code}>')
            if saved != self.shuffle_order:
                raise RuntimeError(
                    f'these weights were trained with '
                    f'shuffle_order={saved!r} but the backbone was built with '
                    f'shuffle_order={self.shuffle_order!r}: build it with '
                    f'shuffle_order={saved!r} (the released official DetNAS '
                    f"models use 'interleave', the reference supernets "
                    f"'transpose')")
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)

    # ------------------------------------------------------ train/freeze/BN
    def _frozen_modules(self) -> list:
        if self.frozen_stages < 0:
            return []
        return [self.stem] + [
            layer for layer, s in zip(self.layers, self._stage_of_layer)
            if s < self.frozen_stages
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


_LAYER_KEY = re.compile(r'^(?P<prefix>.*?)layers\.(?P<i>\d+)\.(?P<c>\w+?)\.')


def slice_supernet_state_dict(
        state_dict: Dict[str, torch.Tensor],
        arch: Arch,
        prefix: str = 'backbone.') -> Dict[str, torch.Tensor]:
    """Keep only the chosen blocks of a supernet state dict.

    Keys of the searchable layers look like
    ``{prefix}layers.{i}.{choice}.…``; those whose choice differs from
    ``arch[i]`` are dropped, every other key (stem, neck, heads…) is kept
    unchanged, so the result loads strictly into the subnet built with
    ``arch``. For a supernet with ``weight_sharing='kernel'`` (recognised by
    holding at most one ``k x k`` block per layer) a ``k x k`` choice has no
    keys of its own: it is cut out of the layer's ``k x k`` block (keys
    renamed, depthwise kernels ``(C, 1, K, K)`` cropped to their centre
    ``k x k``), which is exactly what that supernet runs for the choice.

    Args:
        state_dict (dict[str, Tensor]): Supernet (or detector) state dict.
        arch (tuple[str]): Validated architecture.
        prefix (str): Prefix of the backbone keys (``'backbone.'`` in a
            detector or classifier, ``''`` for a bare backbone).

    Returns:
        dict[str, Tensor]: the sliced state dict (same tensor objects;
        cropped kernels are contiguous copies).

    Raises:
        KeyError: a chosen block is missing from the state dict (with the
            layer index and choice).
    """
    out, blocks = {}, {}
    for k, v in state_dict.items():
        m = _LAYER_KEY.match(k)
        if m and m.group('prefix') == prefix:
            i, c = int(m.group('i')), m.group('c')
            if i >= len(arch):
                raise KeyError(f'state dict key {k!r} is for layer {i} but '
                               f'the architecture has {len(arch)} layers')
            blocks.setdefault(i, {}).setdefault(c, []).append((k, v))
            if c != arch[i]:
                continue
        out[k] = v
    # an entangled supernet holds at most one k x k block per layer; in an
    # independent one a missing block is an error, never cropped from another
    entangled = all(
        sum(c != 'shuffle_xception' for c in held) <= 1
        for held in blocks.values())
    missing = []
    for i, choice in enumerate(arch):
        held = blocks.get(i, {})
        if choice in held:
            continue
        # the block an entangled supernet runs for this choice
        src, k = entangled_routes(list(held) + [choice],
                                  'kernel' if entangled else 'none')[choice]
        if k is None or src not in held:
            missing.append(i)
            continue
        old = f'{prefix}layers.{i}.{src}.'
        new = f'{prefix}layers.{i}.{choice}.'
        big_k = CHOICE_KERNELS[src]
        for key, v in held[src]:
            if v.dim() == 4 and v.shape[1] == 1 and v.shape[-1] == big_k:
                o = (big_k - k) // 2
                v = v[:, :, o:o + k, o:o + k].contiguous()
            out[new + key[len(old):]] = v
    if missing:
        raise KeyError(
            f'no weights for layer(s) {missing} (choices '
            f'{[arch[i] for i in missing]}) under prefix {prefix!r}layers.; '
            'is this a supernet checkpoint of the same search space?')
    return out
