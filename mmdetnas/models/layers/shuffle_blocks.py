"""The four DetNAS choice blocks and the channel shuffle (DetNAS Sec. 3.3).

Blocks read top-down: channel split/shuffle, then the block, then a factory
that builds a block from its choice name.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule

from mmdetnas.spaces.search_space import CHOICE_KERNELS

SHUFFLE_ORDERS = ('transpose', 'interleave')


def channel_shuffle_split(x: torch.Tensor,
                          order: str = 'transpose'
                          ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Channel shuffle (2 groups) followed by a split into two halves.

    The reference code has two orders, NOT interchangeable for trained
    weights (a mismatch gives mAP near 0):

    - ``'transpose'`` (method 1, used for the reference supernets): view as
      ``(N, 2, C/2, H, W)``, swap the group and channel axes, flatten, take
      the first and the second half.
    - ``'interleave'`` (method 2, used for the released single models):
      reshape to ``(N*C/2, 2, H*W)``, permute, i.e. the even channels form
      the first half and the odd channels the second.

    Args:
        x (Tensor): ``(N, C, H, W)``, ``C`` divisible by 4 for
            ``'transpose'`` and by 2 for ``'interleave'``.
        order (str): ``'transpose'`` or ``'interleave'``.

    Returns:
        tuple[Tensor, Tensor]: two ``(N, C/2, H, W)`` tensors.

    Raises:
        ValueError: unknown order.
    """
    n, c, h, w = x.shape
    if order == 'transpose':
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        return x[:, :c // 2], x[:, c // 2:]
    if order == 'interleave':
        x = x.reshape(n * c // 2, 2, h * w).permute(1, 0, 2)
        x = x.reshape(2, n, c // 2, h, w)
        return x[0], x[1]
    raise ValueError(f'unknown channel shuffle order {order!r}; expected one '
                     f'of {SHUFFLE_ORDERS}')


class ShuffleChoiceBlock(nn.Module):
    """A ShuffleNetV2 block with a ``k x k`` or an Xception main branch.

    Stride 1: channel shuffle + split of the input into ``(x_proj, x)``; the
    main branch maps ``x`` (``C/2`` channels) to ``out/2`` channels; the
    output is ``cat(x_proj, main(x))``.
    Stride 2: a projection branch (``k x k`` depthwise s2 + BN, 1x1 + BN +
    ReLU; ``k = 3`` for Xception) and the main branch both read the whole
    input; the main branch outputs ``out - in`` channels.

    Main branch, ``k x k``: 1x1 (-> mid) BN ReLU, ``k x k`` depthwise BN,
    1x1 (-> out') BN ReLU. Xception: three rounds of 3x3 depthwise BN,
    1x1 BN, with ReLU after each round's 1x1 (the first depthwise conv
    carries the stride). ``mid = out_channels // 2``.

    Args:
        in_channels (int): Input channels ``C``.
        out_channels (int): Output channels.
        stride (int): 1 or 2.
        kernel_size (int): Depthwise kernel of the ``k x k`` block.
        xception (bool): Build the Xception main branch.
        shuffle_order (str): See :func:`channel_shuffle_split`.
        conv_cfg, norm_cfg, act_cfg (dict): mmcv ``ConvModule`` configs.

    Shapes:
        ``(N, C, H, W) -> (N, out_channels, ceil(H / s), ceil(W / s))``.

    Raises:
        ValueError: ``stride`` is neither 1 nor 2, a stride-1 block with
            ``in_channels != out_channels``, or an unknown
            ``shuffle_order`` (the message lists the known ones).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int,
                 kernel_size: int = 3,
                 xception: bool = False,
                 shuffle_order: str = 'transpose',
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU')):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f'stride must be 1 or 2, got {stride}')
        if stride == 1 and in_channels != out_channels:
            raise ValueError(f'a stride-1 block keeps its width, got '
                             f'{in_channels} -> {out_channels}')
        if shuffle_order not in SHUFFLE_ORDERS:
            raise ValueError(f'unknown shuffle_order {shuffle_order!r}; '
                             f'expected one of {SHUFFLE_ORDERS}')
        self.stride = stride
        self.shuffle_order = shuffle_order
        mid = out_channels // 2
        main_in = in_channels // 2 if stride == 1 else in_channels
        main_out = out_channels // 2 if stride == 1 else (out_channels -
                                                          in_channels)

        def conv(i, o, k, s=1, dw=False, act=True):
            return ConvModule(
                i, o, k, stride=s, padding=k // 2, groups=i if dw else 1,
                bias=False, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                act_cfg=act_cfg if act else None)

        if xception:
            self.branch_main = nn.Sequential(
                conv(main_in, main_in, 3, stride, dw=True, act=False),
                conv(main_in, mid, 1),
                conv(mid, mid, 3, dw=True, act=False),
                conv(mid, mid, 1),
                conv(mid, mid, 3, dw=True, act=False),
                conv(mid, main_out, 1),
            )
            proj_k = 3
        else:
            self.branch_main = nn.Sequential(
                conv(main_in, mid, 1),
                conv(mid, mid, kernel_size, stride, dw=True, act=False),
                conv(mid, main_out, 1),
            )
            proj_k = kernel_size
        if stride == 2:
            self.branch_proj = nn.Sequential(
                conv(in_channels, in_channels, proj_k, stride, dw=True,
                     act=False),
                conv(in_channels, in_channels, 1),
            )
        else:
            self.branch_proj = None

        self.kernel_size = proj_k if xception else kernel_size
        self.xception = xception

    def forward(self,
                x: torch.Tensor,
                kernel_size: Optional[int] = None) -> torch.Tensor:
        """Run the block.

        Args:
            x (Tensor): ``(N, C, H, W)``.
            kernel_size (int, optional): Run a ``k x k`` block as the
                smaller block ``kernel_size x kernel_size`` whose depthwise
                kernels are the centre of this block's (weight entanglement,
                see :class:`mmdetnas.models.DetNASShuffleNetV2`); every
                other weight is used as is. ``None``: the block's own kernel.

        Returns:
            Tensor: ``(N, out_channels, ceil(H / s), ceil(W / s))``.

        Raises:
            ValueError: ``kernel_size`` on an Xception block, larger than
                the block's kernel, or of another parity.
        """
        if kernel_size is None or (kernel_size == self.kernel_size
                                   and not self.xception):
            if self.stride == 1:
                x_proj, x = channel_shuffle_split(x, self.shuffle_order)
                return torch.cat((x_proj, self.branch_main(x)), 1)
            return torch.cat((self.branch_proj(x), self.branch_main(x)), 1)
        if (self.xception or kernel_size > self.kernel_size
                or (self.kernel_size - kernel_size) % 2):
            raise ValueError(
                f'cannot run a {"Xception" if self.xception else "k x k"} '
                f'block with kernel {self.kernel_size} as kernel '
                f'{kernel_size}; expected an odd size <= {self.kernel_size} '
                'on a k x k block')
        m = self.branch_main
        if self.stride == 1:
            x_proj, x = channel_shuffle_split(x, self.shuffle_order)
        else:
            x_proj = self.branch_proj[1](
                _cropped_dw(self.branch_proj[0], x, kernel_size))
        main = m[2](_cropped_dw(m[1], m[0](x), kernel_size))
        return torch.cat((x_proj, main), 1)


def _cropped_dw(module: ConvModule, x: torch.Tensor, k: int) -> torch.Tensor:
    """Depthwise conv + norm of ``module`` with the centre ``k x k`` of its
    kernel and padding ``k // 2`` (the same conv as a ``k x k`` block)."""
    conv = module.conv
    o = (conv.kernel_size[0] - k) // 2
    # a contiguous copy of the centre: the strided view is slower in conv2d
    w = conv.weight[:, :, o:o + k, o:o + k].contiguous()
    y = F.conv2d(x, w, conv.bias, conv.stride, k // 2, conv.dilation,
                 conv.groups)
    return module.norm(y) if module.with_norm else y


def build_choice_block(choice: str, in_channels: int, out_channels: int,
                       stride: int, **kwargs) -> ShuffleChoiceBlock:
    """Build the block of a choice name (``'shuffle_3x3'``, ``'shuffle_5x5'``,
    ``'shuffle_7x7'``, ``'shuffle_xception'``).

    Raises:
        ValueError: unknown choice name.
    """
    if choice not in CHOICE_KERNELS:
        raise ValueError(f'unknown choice {choice!r}; expected one of '
                         f'{list(CHOICE_KERNELS)}')
    return ShuffleChoiceBlock(
        in_channels, out_channels, stride, kernel_size=CHOICE_KERNELS[choice],
        xception=choice == 'shuffle_xception', **kwargs)
