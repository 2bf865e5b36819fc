"""Whole-model cost: FLOPs at a given input size and measured latency, and
both FLOPs counts of a config's model (:func:`config_flops`, the
``get_flops.py`` tool).

Not the DetNAS backbone convention (see :mod:`mmdetnas.search.flops`): these
count the whole detector (or classifier) at the size it runs at, every
operator ``mmengine.analysis`` knows, and time it on the current device.
"""
import copy
import time
from typing import Sequence, Tuple

import torch
import torch.nn as nn

from .flops import count_macs


def _dummy_samples(shape: Sequence[int], batch: int):
    from mmdet.structures import DetDataSample
    h, w = shape
    samples = []
    for _ in range(batch):
        s = DetDataSample()
        s.set_metainfo(
            dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                 batch_input_shape=(h, w), scale_factor=(1.0, 1.0)))
        samples.append(s)
    return samples


class _TensorForward(nn.Module):
    """``model(x)`` -> raw network outputs (mode ``'tensor'``), or the
    post-processed predictions (mode ``'predict'``: boxes after NMS)."""

    def __init__(self, model: nn.Module, samples, mode: str = 'tensor'):
        super().__init__()
        self.model = model
        self.samples = samples
        self.mode = mode

    def forward(self, x):
        if self.samples is None:
            return self.model(x, mode=self.mode)
        return self.model(x, self.samples, mode=self.mode)


def _wrap(model: nn.Module, shape: Sequence[int], batch: int = 1,
          mode: str = 'tensor') -> Tuple[nn.Module, torch.Tensor]:
    from mmdet.models.detectors import BaseDetector
    device = next(model.parameters()).device
    x = torch.zeros(batch, 3, *shape, device=device)
    samples = _dummy_samples(shape, batch) if isinstance(
        model, BaseDetector) else None
    return _TensorForward(model, samples, mode).eval(), x


def model_flops(model: nn.Module, shape: Sequence[int] = (800, 1333)) -> int:
    """MACs of a whole model (all operators mmengine.analysis counts:
    conv, linear, BN, upsample, ...) for one ``3 x H x W`` image, from
    backbone to raw head outputs (no post-processing).

    Args:
        model (nn.Module): an mmdet detector or an mmdetnas classifier
            (fixed path, eval mode).
        shape (Sequence[int]): ``(H, W)`` input size in pixels.

    Returns:
        int: multiply-accumulates of every counted operator.
    """
    wrapped, x = _wrap(model, shape)
    return count_macs(wrapped, (x, ), ops=None)


@torch.no_grad()
def measure_latency(model: nn.Module,
                    shape: Sequence[int] = (800, 1333),
                    warmup: int = 2,
                    repeats: int = 5,
                    mode: str = 'tensor') -> float:
    """Median latency in **ms** of one forward of a ``1 x 3 x H x W`` input
    (backbone to raw head outputs) on the model's device.

    Runs ``warmup`` untimed forwards, then ``repeats`` timed ones (wall
    clock, ``time.perf_counter``), without gradients; CUDA is synchronised
    around each timing. The caller puts the model in eval mode and sets
    the path of a supernet.

    Args:
        model (nn.Module): An mmdet detector (called with dummy data
            samples, ``mode='tensor'``) or a model called as
            ``model(x, mode='tensor')`` (an mmdetnas classifier), with at
            least one parameter (its device is the input's).
        shape (Sequence[int]): ``(H, W)`` input size in pixels.
        warmup (int): Untimed forwards first (>= 0).
        repeats (int): Timed forwards (>= 1).
        mode (str): ``'tensor'`` times backbone to raw head outputs;
            ``'predict'`` (detectors) the whole inference, post-processing
            and NMS included, on an all-zero image.

    Returns:
        float: the median of the ``repeats`` timings in milliseconds (the
        upper median for an even ``repeats``).

    Raises:
        ValueError: ``repeats < 1``, ``warmup < 0`` or an unknown
            ``mode``.
        StopIteration: the model has no parameter (no device to run on).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f'measure_latency needs repeats >= 1 and warmup >= '
                         f'0, got repeats={repeats}, warmup={warmup}')
    if mode not in ('tensor', 'predict'):
        raise ValueError(f"mode must be 'tensor' or 'predict', got {mode!r}")
    wrapped, x = _wrap(model, shape, mode=mode)
    cuda = x.is_cuda
    times = []
    for i in range(warmup + repeats):
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        wrapped(x)
        if cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append((time.perf_counter() - t) * 1000.0)
    times.sort()
    return times[len(times) // 2]


def config_flops(cfg, arch=None, shape=None) -> dict:
    """Both FLOPs counts of ``cfg.model`` with path ``arch``.

    Args:
        cfg (mmengine.Config): A config whose model has a
            :class:`mmdetnas.models.DetNASShuffleNetV2` backbone.
        arch (str | list, optional): Path to activate, anything
            :func:`mmdetnas.search.resolve_arch` accepts (comma-separated
            choices, an official name, a file, a list); required for a
            supernet config.
        shape (tuple[int], optional): ``(H, W)`` of the whole-model count;
            default 800x1333 for detectors, 224x224 otherwise.

    Returns:
        dict: ``arch`` (list of choice names), ``backbone_flops`` (MACs,
        DetNAS convention), ``backbone_params``, ``model_flops`` (MACs at
        ``shape``), ``model_params``, ``shape``. The whole-model numbers are
        those of the model with a fixed ``arch`` backbone (a supernet config
        is built again as that subnet); ``cfg`` is not modified.

    Raises:
        ValueError: the model has no DetNASShuffleNetV2, a supernet config
            without ``arch``, an ``arch`` that differs from the config's
            fixed one, or an invalid ``arch`` (message naming it).
        FileNotFoundError: ``arch`` names no official architecture and no
            existing file.
    """
    from mmdet.models.detectors import BaseDetector
    from mmdet.registry import MODELS

    from mmdetnas.models.backbones import DetNASShuffleNetV2
    from mmdetnas.spaces import resolve_arch
    from .flops import arch_cost
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.pop('init_cfg', None)

    def build():
        model = MODELS.build(cfg.model).eval()
        found = [m for m in model.modules()
                 if isinstance(m, DetNASShuffleNetV2)]
        if not found:
            raise ValueError('the model has no mmdetnas.DetNASShuffleNetV2')
        return model, found[0]

    model, backbone = build()
    if arch is not None:
        arch = resolve_arch(arch, backbone.search_space)[1]
        if backbone.is_supernet:
            # count the subnet as it is deployed: the whole-model params of
            # the supernet would include every unchosen block
            cfg.model.backbone.arch = list(arch)
            model, backbone = build()
        elif arch != backbone.fixed_arch:
            raise ValueError(
                f'--arch {list(arch)} differs from the fixed arch of the '
                f'config {list(backbone.fixed_arch)}')
    if backbone.arch is None:
        raise ValueError('this config builds a supernet: pass --arch '
                         '(comma-separated choice names or indices, an '
                         'official name or an architecture file)')
    if shape is None:
        shape = (800, 1333) if isinstance(model, BaseDetector) else (224, 224)
    flops, params = arch_cost(backbone.search_space, backbone.arch)
    return dict(
        arch=list(backbone.arch), backbone_flops=flops,
        backbone_params=params, model_flops=model_flops(model, shape),
        model_params=sum(p.numel() for p in model.parameters()),
        shape=tuple(shape))
