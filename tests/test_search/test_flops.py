"""Tests of backbone FLOPs / params under the DetNAS convention."""
import random

import pytest
import torch
import torch.nn as nn

from mmdetnas.models.backbones import DetNASShuffleNetV2
from mmdetnas.search import arch_cost, arch_flops, count_macs
from mmdetnas.spaces import official_arch, PRESETS

NAMES = ('shuffle_3x3', 'shuffle_5x5', 'shuffle_7x7', 'shuffle_xception')


def _uniform(choice, n=20):
    return (choice, ) * n


def test_kernel_size_order():
    space = PRESETS['300M']
    f3, f5, f7, fx = (arch_flops(space, _uniform(c)) for c in NAMES)
    assert f3 < f5 < f7
    assert fx > f3


@pytest.mark.parametrize('name,lo,hi', [
    ('COCO-FPN-300M', 0.25e9, 0.35e9),
    ('COCO-RetinaNet-300M', 0.25e9, 0.35e9),
    ('COCO-FPN-1.3G', 1.1e9, 1.5e9),
    ('COCO-FPN-3.8G', 3.4e9, 4.2e9),
])
def test_official_flops(name, lo, hi):
    space, arch = official_arch(name)
    flops, params = arch_cost(space, arch)
    assert lo <= flops <= hi
    assert arch_flops(space, arch) == flops
    assert params > 0


def _hand_macs(model, h=224, w=224):
    """MACs of every Conv2d / Linear, from forward-hook output shapes
    (a count independent of mmengine.analysis)."""
    total = []

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1]
            total.append(out.numel() * k * m.in_channels // m.groups)
        else:
            total.append(out.numel() * m.in_features)

    handles = [
        m.register_forward_hook(hook) for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    with torch.no_grad():
        model(torch.zeros(1, 3, h, w))
    for handle in handles:
        handle.remove()
    return sum(total)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_table_matches_whole_backbone(seed):
    """The per-block table equals a trace of the whole built subnet."""
    rng = random.Random(seed)
    space = PRESETS['300M']
    arch = tuple(rng.choice(NAMES) for _ in range(space.num_layers))
    macs, params = arch_cost(space, arch)
    model = DetNASShuffleNetV2(arch=arch).eval()
    assert macs == count_macs(model, (torch.zeros(1, 3, 224, 224), ))
    assert macs == _hand_macs(model)
    assert params == sum(p.numel() for p in model.parameters())


def test_last_conv_not_counted():
    space, arch = official_arch('COCO-FPN-300M')
    model = DetNASShuffleNetV2(arch=arch, with_last_conv=True).eval()
    whole = count_macs(model, (torch.zeros(1, 3, 224, 224), ))
    # the last 1x1 conv at 7x7: 640 -> 1024 channels
    assert whole - arch_flops(space, arch) == 7 * 7 * 640 * 1024


def test_count_macs_only_conv_and_linear():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5)).eval()
    macs = count_macs(model, (torch.zeros(1, 3, 8, 8), ))
    assert macs == 8 * 8 * 4 * 3 * 9 + 4 * 5
    # with every operator counted, BN and pooling add to it
    assert count_macs(model, (torch.zeros(1, 3, 8, 8), ), ops=None) > macs


def test_space_span_is_the_extremes_of_every_path():
    """Every path of a 4-layer, 3-choice space enumerated (81 paths): the
    span is the smallest and largest cost found, and a FLOPs range outside
    it is refused naming the span, one inside it is accepted."""
    import itertools

    from mmdetnas.search.constraints import ArchConstraints
    from mmdetnas.search.flops import space_cost_span
    from mmdetnas.spaces.search_space import SearchSpace
    space = SearchSpace(name='tiny', stem_channels=8,
                        stage_channels=(16, 32, 48, 64),
                        stage_blocks=(1, 1, 1, 1), last_channels=64,
                        choices=NAMES[:2] + NAMES[3:])
    costs = [arch_cost(space, a)
             for a in itertools.product(space.choices, repeat=4)]
    span = space_cost_span(space)
    assert span['flops'] == (min(c[0] for c in costs),
                             max(c[0] for c in costs))
    assert span['params'] == (min(c[1] for c in costs),
                              max(c[1] for c in costs))
    low, high = span['flops']
    ArchConstraints(space, flops=(low, low)).check_reachable()
    ArchConstraints(space, flops=(None, low)).check_reachable()
    ArchConstraints(space, params=(span['params'][1], None)).check_reachable()
    for rng in ((None, low - 1), (high + 1, None)):
        with pytest.raises(ValueError) as e:
            ArchConstraints(space, flops=rng).check_reachable('train_cfg')
        msg = str(e.value)
        assert "train_cfg.flops=" in msg and "space 'tiny'" in msg
        assert f'[{low:.6g}, {high:.6g}] MACs' in msg
    with pytest.raises(ValueError, match='params'):
        ArchConstraints(space, params=(0, span['params'][0] - 1)
                        ).check_reachable()
