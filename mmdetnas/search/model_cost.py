"""Whole-model cost: FLOPs at a given input size and measured latency.

Not the DetNAS backbone convention (see :mod:`mmdetnas.search.flops`): these
count the whole detector (or classifier) at the size it runs at, every
operator ``mmengine.analysis`` knows, and time it on the current device.
"""
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
    """``model(x)`` -> raw network outputs (mode ``'tensor'``)."""

    def __init__(self, model: nn.Module, samples):
        super().__init__()
        self.model = model
        self.samples = samples

    def forward(self, x):
        if self.samples is None:
            return self.model(x, mode='tensor')
        return self.model(x, self.samples, mode='tensor')


def _wrap(model: nn.Module, shape: Sequence[int],
          batch: int = 1) -> Tuple[nn.Module, torch.Tensor]:
    from mmdet.models.detectors import BaseDetector
    device = next(model.parameters()).device
    x = torch.zeros(batch, 3, *shape, device=device)
    samples = _dummy_samples(shape, batch) if isinstance(
        model, BaseDetector) else None
    return _TensorForward(model, samples).eval(), x


def model_flops(model: nn.Module, shape: Sequence[int] = (800, 1333)) -> int:
    """MACs of a whole model (all operators mmengine.analysis counts:
    conv, linear, BN, upsample, ...) for one ``3 x H x W`` image, from
    backbone to raw head outputs (no post-processing).

    Args:
        model: an mmdet detector or an mmdetnas classifier (fixed path).
        shape: ``(H, W)`` input size in pixels.
    """
    wrapped, x = _wrap(model, shape)
    return count_macs(wrapped, (x, ), ops=None)


@torch.no_grad()
def measure_latency(model: nn.Module,
                    shape: Sequence[int] = (800, 1333),
                    warmup: int = 2,
                    repeats: int = 5) -> float:
    """Median latency in **ms** of one forward of a ``1 x 3 x H x W`` input
    (backbone to raw head outputs) on the model's device.

    CUDA is synchronised around each timing.
    """
    wrapped, x = _wrap(model, shape)
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
