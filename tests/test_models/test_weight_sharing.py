"""Weight-entangled supernets (``weight_sharing='kernel'``): the k x k
choices of a layer run one block with the largest kernel, smaller kernels
being its centre; slicing cuts exactly that network out."""
import random

import pytest
import torch
import torch.nn as nn

from mmdetnas.models import DetNASShuffleNetV2, slice_supernet_state_dict
from mmdetnas.models.layers import build_choice_block
from mmdetnas.spaces import PRESETS


def _randomise_bn(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - .5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + .5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + .5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) - .5)


def test_kernel_choices_share_one_block_per_layer():
    sup = DetNASShuffleNetV2(weight_sharing='kernel')
    for layer in sup.layers:
        assert sorted(layer.keys()) == ['shuffle_7x7', 'shuffle_xception']
    # independent layout holds the 3x3 and 5x5 blocks on top
    ind = DetNASShuffleNetV2()
    n_sup = sum(p.numel() for p in sup.parameters())
    n_ind = sum(p.numel() for p in ind.parameters())
    extra = 0
    for spec in PRESETS['300M'].layers():
        for c in ('shuffle_3x3', 'shuffle_5x5'):
            blk = build_choice_block(c, spec.in_channels, spec.out_channels,
                                     spec.stride)
            extra += sum(p.numel() for p in blk.parameters())
    assert n_ind - n_sup == extra
    kernel_only = DetNASShuffleNetV2('300M-kernel', weight_sharing='kernel')
    assert all(list(layer.keys()) == ['shuffle_7x7']
               for layer in kernel_only.layers)


def test_small_kernel_is_the_centre_of_the_large_one():
    """A 3x3 choice of the entangled layer equals a stand-alone 3x3 block
    whose weights are copied by hand from the 7x7 block (centre crop of the
    depthwise kernels, everything else as is)."""
    torch.manual_seed(0)
    for stride, cin, cout in ((1, 64, 64), (2, 64, 160)):
        big = build_choice_block('shuffle_7x7', cin, cout, stride)
        small = build_choice_block('shuffle_3x3', cin, cout, stride)
        _randomise_bn(big)
        big_sd = big.state_dict()
        with torch.no_grad():
            for name, p in small.state_dict().items():
                src = big_sd[name]
                p.copy_(src[:, :, 2:5, 2:5] if p.shape != src.shape else src)
        big.eval(), small.eval()
        x = torch.randn(2, cin, 15, 15)
        assert torch.equal(big(x, kernel_size=3), small(x))
        assert not torch.allclose(big(x), small(x))
        assert torch.equal(big(x, kernel_size=7), big(x))


@pytest.mark.parametrize('space', ['300M', '300M-kernel'])
def test_supernet_path_equals_sliced_subnet(space):
    sup = DetNASShuffleNetV2(space, weight_sharing='kernel')
    _randomise_bn(sup)
    sup.eval()
    rng = random.Random(0)
    x = torch.randn(2, 3, 64, 64)
    choices = PRESETS[space].choices
    archs = [tuple(rng.choice(choices) for _ in range(20)) for _ in range(3)]
    archs.append(('shuffle_3x3', ) * 20)
    for arch in archs:
        sup.set_arch(arch)
        sub = DetNASShuffleNetV2(arch=list(arch), search_space=space)
        sub.load_state_dict(
            slice_supernet_state_dict(sup.state_dict(), arch, prefix=''),
            strict=True)
        sub.eval()
        for a, b in zip(sup(x), sub(x)):
            assert torch.equal(a, b)


def test_small_kernel_path_trains_only_the_centre():
    sup = DetNASShuffleNetV2('300M-kernel', weight_sharing='kernel')
    sup.set_arch(('shuffle_3x3', ) * 20)
    sum(o.sum() for o in sup(torch.randn(2, 3, 32, 32))).backward()
    g = sup.layers[5]['shuffle_7x7'].branch_main[1].conv.weight.grad
    ring = g.clone()
    ring[:, :, 2:5, 2:5] = 0
    assert g[:, :, 2:5, 2:5].abs().sum() > 0
    assert ring.abs().sum() == 0


def test_sliced_weights_are_compact_copies():
    sup = DetNASShuffleNetV2('300M-kernel', weight_sharing='kernel')
    arch = ('shuffle_5x5', ) * 20
    sd = slice_supernet_state_dict(sup.state_dict(), arch, prefix='')
    w = sd['layers.0.shuffle_5x5.branch_main.1.conv.weight']
    assert w.shape[-2:] == (5, 5) and w.is_contiguous()
    assert not any('shuffle_7x7' in k for k in sd)


def test_bad_values_are_named():
    with pytest.raises(ValueError, match="'entangled'"):
        DetNASShuffleNetV2(weight_sharing='entangled')
    blk = build_choice_block('shuffle_xception', 64, 64, 1)
    with pytest.raises(ValueError, match='Xception'):
        blk(torch.randn(1, 64, 8, 8), kernel_size=3)
    blk = build_choice_block('shuffle_5x5', 64, 64, 1)
    with pytest.raises(ValueError, match='kernel 5 as kernel 7'):
        blk(torch.randn(1, 64, 8, 8), kernel_size=7)


def test_subnet_ignores_weight_sharing():
    arch = ['shuffle_3x3'] * 20
    sub = DetNASShuffleNetV2(arch=arch, weight_sharing='kernel')
    assert sub.weight_sharing == 'none'
    assert all(list(layer.keys()) == ['shuffle_3x3'] for layer in sub.layers)


def test_independent_supernet_missing_block_is_not_cropped():
    """A block missing from an independent supernet is an error, not a crop
    of the layer's 7x7 block."""
    sd = DetNASShuffleNetV2().state_dict()
    sd = {k: v for k, v in sd.items()
          if not k.startswith('layers.3.shuffle_5x5.')}
    with pytest.raises(KeyError, match=r'\[3\]'):
        slice_supernet_state_dict(sd, ('shuffle_5x5', ) * 20, prefix='')
