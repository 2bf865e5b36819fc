"""FLOPs and parameters of architectures, counted with ``mmengine.analysis``.

DetNAS convention (DetNAS Sec. 4.1 and its reference code): the **backbone
only** (stem + the searchable layers; no last conv, no classifier), input
``1x3x224x224``, counting multiply-accumulates (MACs) of ``Conv2d`` and
``Linear`` layers only (no BN, ReLU, bias, pooling). "FLOPs" in this project
always means MACs.

The search asks for the FLOPs of thousands of architectures. Blocks of a
ShuffleNetV2 path are independent given their input shape, so the cost of an
architecture is the stem's plus one table entry per layer. Each distinct
``(choice, in, out, stride, size)`` block is traced once by
:class:`mmengine.analysis.FlopAnalyzer`; architecture totals are cached too.
"""
from functools import lru_cache
from typing import Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer

from mmdetnas.models.backbones.detnas_shufflenetv2 import build_stem
from mmdetnas.models.layers import build_choice_block
from mmdetnas.spaces.arch import Arch
from mmdetnas.spaces.search_space import SearchSpace

#: mmengine.analysis operator names that count under the DetNAS convention.
COUNTED_OPS = ('conv', 'linear', 'addmm')


def count_macs(module: nn.Module, inputs: tuple,
               ops: Sequence[str] = COUNTED_OPS) -> int:
    """MACs of ``module(*inputs)`` restricted to operators ``ops``.

    Args:
        module (nn.Module): Model to trace (put in eval mode by the caller).
        inputs (tuple): Positional inputs.
        ops (Sequence[str]): mmengine.analysis operator names to sum;
            ``None`` sums every operator mmengine knows.

    Returns:
        int: multiply-accumulates.
    """
    analyzer = FlopAnalyzer(module, inputs)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    with torch.no_grad():
        by_op = analyzer.by_operator()
    if ops is None:
        return int(sum(by_op.values()))
    return int(sum(v for k, v in by_op.items() if k in ops))


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@lru_cache(maxsize=None)
def _block_cost(choice: str, in_ch: int, out_ch: int, stride: int,
                size: int) -> Tuple[int, int]:
    block = build_choice_block(choice, in_ch, out_ch, stride).eval()
    x = torch.zeros(1, in_ch, size, size)
    return count_macs(block, (x, )), _params(block)


@lru_cache(maxsize=None)
def _stem_cost(stem_channels: int) -> Tuple[int, int]:
    stem = build_stem(stem_channels).eval()
    return count_macs(stem, (torch.zeros(1, 3, 224, 224), )), _params(stem)


@lru_cache(maxsize=65536)
def arch_cost(space: SearchSpace, arch: Arch) -> Tuple[int, int]:
    """Backbone MACs and parameters of an architecture (DetNAS convention).

    Args:
        space (SearchSpace): The search space.
        arch (tuple[str]): Validated architecture (one choice per layer).

    Returns:
        tuple[int, int]: ``(macs, params)`` of stem + chosen blocks at
        1x3x224x224; params include BN affine parameters.
    """
    macs, params = _stem_cost(space.stem_channels)
    for spec, choice in zip(space.layers(), arch):
        m, p = _block_cost(choice, spec.in_channels, spec.out_channels,
                           spec.stride, spec.in_size)
        macs += m
        params += p
    return macs, params


def arch_flops(space: SearchSpace, arch: Arch) -> int:
    """Backbone MACs of ``arch`` under the DetNAS convention (cached)."""
    return arch_cost(space, arch)[0]


def space_cost_span(space: SearchSpace) -> dict:
    """The smallest and largest backbone MACs and parameters of any path of
    ``space`` (DetNAS convention): a path's cost is the stem's plus one
    independent term per layer, so the extremes are the sums of each
    layer's cheapest and dearest choice.

    Returns:
        dict: ``{'flops': (min, max), 'params': (min, max)}``, ints.
    """
    macs, params = _stem_cost(space.stem_channels)
    span = {'flops': [macs, macs], 'params': [params, params]}
    for spec in space.layers():
        costs = [_block_cost(c, spec.in_channels, spec.out_channels,
                             spec.stride, spec.in_size)
                 for c in space.choices]
        for i, key in enumerate(('flops', 'params')):
            span[key][0] += min(c[i] for c in costs)
            span[key][1] += max(c[i] for c in costs)
    return {k: tuple(v) for k, v in span.items()}
