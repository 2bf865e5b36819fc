"""Tests of the DetNAS ShuffleNetV2 supernet / subnet backbone, its choice
blocks and the channel shuffle."""
import random

import pytest
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmdetnas.models.backbones import (DetNASShuffleNetV2,
                                       slice_supernet_state_dict)
from mmdetnas.models.layers import channel_shuffle_split
from mmdetnas.registry import MODELS
from mmdetnas.spaces import OFFICIAL_ARCHS, PRESETS

# (stage channels, last conv channels) of the three presets, written from
# the DetNAS paper's table (not read from the library)
PRESET_CHANNELS = {
    '300M': ((64, 160, 320, 640), 1024),
    '1.3G': ((96, 240, 480, 960), 1024),
    '3.8G': ((172, 432, 864, 1728), 1728),
}
PRESET_LAYERS = {'300M': 20, '1.3G': 40, '3.8G': 40}
CHOICE_NAMES = ('shuffle_3x3', 'shuffle_5x5', 'shuffle_7x7',
                'shuffle_xception')


def _down(size):
    """One stride-2 step of a 3x3/5x5/7x7 conv with padding k // 2."""
    return (size - 1) // 2 + 1


def expected_hw(h, w, stage):
    """Spatial size of stage ``stage`` (stride 2**(stage + 2))."""
    for _ in range(stage + 2):
        h, w = _down(h), _down(w)
    return h, w


def random_arch(num_layers, rng):
    return tuple(rng.choice(CHOICE_NAMES) for _ in range(num_layers))


def check_outputs(outs, channels, h, w, n=1, out_indices=(0, 1, 2, 3)):
    assert isinstance(outs, tuple)
    assert len(outs) == len(out_indices)
    for out, i in zip(outs, out_indices):
        assert out.shape == (n, channels[i], *expected_hw(h, w, i)), (i, h, w)


def _rel_diff(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def _shifted(arch):
    """Every layer's choice replaced by the next one."""
    return tuple(CHOICE_NAMES[(CHOICE_NAMES.index(c) + 1) % 4] for c in arch)


def randomize_bn(model, seed=0):
    """Non-trivial BN affine parameters and running statistics, so that a
    wrong weight mapping cannot hide behind identity BNs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _BatchNorm):
                shape = m.running_mean.shape
                m.weight.copy_(torch.rand(shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(shape, generator=g) + 0.5)


# ------------------------------------------------------------------ shapes
@pytest.mark.parametrize('preset,sizes', [
    ('300M', [(32, 32), (67, 99), (65, 65), (64, 48)]),
    ('1.3G', [(32, 32), (33, 17)]),
    ('3.8G', [(32, 32), (17, 33)]),
])
@pytest.mark.parametrize('supernet', [True, False])
def test_output_shapes(preset, sizes, supernet):
    """Channels are the stage channels, spatial sizes follow conv arithmetic
    ((s - 1) // 2 + 1 per stride-2 step), for supernets and subnets."""
    rng = random.Random(0)
    channels = PRESET_CHANNELS[preset][0]
    if supernet:
        model = DetNASShuffleNetV2(search_space=preset).eval()
        assert model.is_supernet and model.arch is None
    else:
        arch = random_arch(PRESET_LAYERS[preset], rng)
        model = DetNASShuffleNetV2(search_space=preset, arch=arch).eval()
        assert not model.is_supernet and model.arch == arch
    assert list(model.out_channels) == list(channels)
    for h, w in sizes:
        if supernet:
            model.set_arch(random_arch(PRESET_LAYERS[preset], rng))
        with torch.no_grad():
            outs = model(torch.randn(1, 3, h, w))
        check_outputs(outs, channels, h, w)


def test_output_shapes_batch_and_registry():
    model = MODELS.build(
        dict(type='mmdetnas.DetNASShuffleNetV2', arch='COCO-FPN-300M'))
    assert isinstance(model, DetNASShuffleNetV2)
    model.eval()
    with torch.no_grad():
        outs = model(torch.randn(3, 3, 40, 56))
    check_outputs(outs, PRESET_CHANNELS['300M'][0], 40, 56, n=3)


@pytest.mark.parametrize('preset', ['300M', '1.3G'])
def test_with_last_conv(preset):
    stage_ch, last_ch = PRESET_CHANNELS[preset]
    arch = [0] * PRESET_LAYERS[preset]
    model = DetNASShuffleNetV2(
        search_space=preset, arch=arch, with_last_conv=True).eval()
    assert model.out_channels == [*stage_ch[:3], last_ch]
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 35, 35))
    check_outputs(outs, [*stage_ch[:3], last_ch], 35, 35)
    assert isinstance(model.last_conv.conv, nn.Conv2d)
    assert model.last_conv.conv.kernel_size == (1, 1)
    # without it, index 3 is the stage output
    model = DetNASShuffleNetV2(search_space=preset, arch=arch).eval()
    assert model.last_conv is None
    assert model(torch.randn(1, 3, 35, 35))[3].shape[1] == stage_ch[3]


@pytest.mark.parametrize('out_indices', [(0, ), (3, ), (1, 3), (0, 2, 3)])
def test_out_indices(out_indices):
    model = DetNASShuffleNetV2(
        arch='COCO-FPN-300M', out_indices=out_indices).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 67, 99))
    check_outputs(
        outs, PRESET_CHANNELS['300M'][0], 67, 99, n=2, out_indices=out_indices)


def test_out_indices_with_last_conv():
    model = DetNASShuffleNetV2(
        arch='COCO-FPN-300M', out_indices=(1, 3), with_last_conv=True).eval()
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [160, 1024]


@pytest.mark.parametrize(
    'kwargs',
    [
        dict(out_indices=()),
        dict(out_indices=(4, )),
        dict(out_indices=(-1, )),
        dict(out_indices=(0, 5)),
        dict(frozen_stages=5),
        dict(frozen_stages=-2),
        dict(shuffle_order='groups'),
        dict(arch=[0] * 19),  # wrong length
        dict(arch=[0] * 19 + [4]),  # index out of range
        dict(arch=['shuffle_9x9'] * 20),
        dict(search_space='300M', arch='COCO-FPN-1.3G'),
    ])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        DetNASShuffleNetV2(**kwargs)


def test_supernet_without_path():
    model = DetNASShuffleNetV2()
    with pytest.raises(RuntimeError, match='no active path'):
        model(torch.randn(1, 3, 32, 32))


def test_set_arch():
    rng = random.Random(1)
    model = DetNASShuffleNetV2()
    arch = random_arch(20, rng)
    # names, indices and mixed lists all resolve to the same tuple
    assert model.set_arch(list(arch)) == arch
    idx = [CHOICE_NAMES.index(c) for c in arch]
    assert model.set_arch(idx) == arch
    mixed = [c if i % 2 else idx[i] for i, c in enumerate(arch)]
    assert model.set_arch(mixed) == arch
    assert model.arch == arch
    with pytest.raises(ValueError, match='20'):
        model.set_arch(arch[:-1])
    with pytest.raises(ValueError, match='layer 3'):
        model.set_arch(arch[:3] + ('shuffle_1x1', ) + arch[4:])
    assert model.arch == arch  # a failed set_arch keeps the active path
    # the official name, resolved with the backbone's search space
    space, official_idx = OFFICIAL_ARCHS['COCO-FPN-300M']
    assert space == '300M'
    assert model.set_arch('COCO-FPN-300M') == tuple(CHOICE_NAMES[i]
                                                    for i in official_idx)


def test_subnet_set_arch():
    rng = random.Random(2)
    arch = random_arch(20, rng)
    model = DetNASShuffleNetV2(arch=arch)
    assert model.set_arch([CHOICE_NAMES.index(c) for c in arch]) == arch
    other = list(arch)
    other[5] = CHOICE_NAMES[(CHOICE_NAMES.index(other[5]) + 1) % 4]
    with pytest.raises(ValueError, match='fixed subnet'):
        model.set_arch(other)
    # a subnet holds only its chosen block per layer
    for layer, choice in zip(model.layers, arch):
        assert list(layer.keys()) == [choice]


def test_official_arch_infers_space():
    model = DetNASShuffleNetV2(arch='COCO-FPN-1.3G')
    assert model.search_space == PRESETS['1.3G']
    assert model.out_channels == list(PRESET_CHANNELS['1.3G'][0])
    assert model.stem.conv.out_channels == 48
    assert model.stem.conv.bias is not None  # the stem conv has a bias


# ------------------------------------------------- supernet == its subnet
@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('shuffle_order', ['transpose', 'interleave'])
def test_supernet_subnet_equivalence(seed, shuffle_order):
    """A subnet loaded with the sliced supernet weights computes exactly
    what the supernet computes on that path."""
    torch.manual_seed(seed)
    arch = random_arch(20, random.Random(seed))
    supernet = DetNASShuffleNetV2(shuffle_order=shuffle_order)
    randomize_bn(supernet, seed)
    supernet.eval()
    supernet.set_arch(arch)
    subnet = DetNASShuffleNetV2(arch=arch, shuffle_order=shuffle_order)
    sliced = slice_supernet_state_dict(supernet.state_dict(), arch, prefix='')
    subnet.load_state_dict(sliced, strict=True)
    subnet.eval()
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        out_super = supernet(x)
        out_sub = subnet(x)
    assert len(out_super) == len(out_sub) == 4
    for a, b in zip(out_super, out_sub):
        assert a.abs().max() > 1e-2  # outputs are not vanishingly small
        assert torch.allclose(a, b, atol=1e-6, rtol=0)
    # the comparison is not vacuous: another path gives other outputs
    supernet.set_arch(_shifted(arch))
    with torch.no_grad():
        assert _rel_diff(supernet(x)[3], out_sub[3]) > 1e-2


def test_slice_supernet_state_dict_keys():
    arch = random_arch(20, random.Random(3))
    supernet = DetNASShuffleNetV2()
    state = {'backbone.' + k: v for k, v in supernet.state_dict().items()}
    state['neck.layers.0.shuffle_3x3.w'] = torch.ones(1)  # not the backbone
    sliced = slice_supernet_state_dict(state, arch)
    expected = {
        'backbone.' + k
        for k in DetNASShuffleNetV2(arch=arch).state_dict()
    } | {'neck.layers.0.shuffle_3x3.w'}
    assert set(sliced) == expected
    assert all(sliced[k] is state[k] for k in sliced)
    state = {
        k: v
        for k, v in state.items()
        if not k.startswith(f'backbone.layers.7.{arch[7]}.')
    }
    with pytest.raises(KeyError, match=r'\[7\]'):
        slice_supernet_state_dict(state, arch)


# ---------------------------------------------------------- channel shuffle
def _shuffle_reference(x, order):
    """The two orders of the DetNAS recipe, written with explicit channel
    index lists."""
    c = x.shape[1]
    if order == 'transpose':
        # view (N, 2, C/2): channel g * C/2 + j sits at (g, j); after the
        # transpose it is at flat position j * 2 + g
        flat = [g * (c // 2) + j for j in range(c // 2) for g in range(2)]
        idx_a, idx_b = flat[:c // 2], flat[c // 2:]
    else:
        idx_a, idx_b = list(range(0, c, 2)), list(range(1, c, 2))
    return x[:, idx_a], x[:, idx_b]


@pytest.mark.parametrize('order', ['transpose', 'interleave'])
@pytest.mark.parametrize('shape', [(1, 8, 1, 1), (2, 12, 3, 2)])
def test_channel_shuffle_split(order, shape):
    x = torch.arange(torch.Size(shape).numel(), dtype=torch.float32)
    x = x.reshape(shape)
    a, b = channel_shuffle_split(x, order)
    ref_a, ref_b = _shuffle_reference(x, order)
    assert a.shape == b.shape == (shape[0], shape[1] // 2, *shape[2:])
    assert torch.equal(a, ref_a) and torch.equal(b, ref_b)


def test_channel_shuffle_orders_documented_values():
    x = torch.arange(8.).reshape(1, 8, 1, 1)
    a, b = channel_shuffle_split(x, 'transpose')
    assert a.flatten().tolist() == [0, 4, 1, 5]
    assert b.flatten().tolist() == [2, 6, 3, 7]
    a2, b2 = channel_shuffle_split(x, 'interleave')
    assert a2.flatten().tolist() == [0, 2, 4, 6]
    assert b2.flatten().tolist() == [1, 3, 5, 7]
    assert not torch.equal(a, a2) and not torch.equal(b, b2)
    with pytest.raises(ValueError, match='order'):
        channel_shuffle_split(x, 'groups')


def test_shuffle_order_changes_outputs():
    """The same weights give different outputs with the two orders (they
    are not interchangeable for trained weights)."""
    torch.manual_seed(0)
    a = DetNASShuffleNetV2(arch='COCO-FPN-300M', shuffle_order='transpose')
    b = DetNASShuffleNetV2(arch='COCO-FPN-300M', shuffle_order='interleave')
    randomize_bn(a)
    b.load_state_dict(a.state_dict(), strict=True)
    a.eval(), b.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out_a, out_b = a(x), b(x)
    for i in range(4):
        assert _rel_diff(out_a[i], out_b[i]) > 1e-2, i


# ---------------------------------------------------- norm_eval / freezing
def _bns(module):
    return [m for m in module.modules() if isinstance(m, _BatchNorm)]


def test_norm_eval():
    model = DetNASShuffleNetV2(arch='COCO-FPN-300M', norm_eval=True)
    model.train()
    assert model.training
    bns = _bns(model)
    assert bns and not any(m.training for m in bns)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.training for m in convs)
    # running statistics are not updated in a train-mode forward
    before = [m.running_mean.clone() for m in bns]
    model(torch.randn(2, 3, 32, 32))
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, bns))
    # default: BN in train mode
    model = DetNASShuffleNetV2(arch='COCO-FPN-300M').train()
    assert all(m.training for m in _bns(model))


@pytest.mark.parametrize('frozen_stages', [0, 1, 3])
def test_frozen_stages(frozen_stages):
    model = DetNASShuffleNetV2(frozen_stages=frozen_stages)
    model.set_arch([1] * 20)
    model.train()
    stage_of_layer = [0] * 4 + [1] * 4 + [2] * 8 + [3] * 4
    frozen = [model.stem] + [
        layer
        for layer, s in zip(model.layers, stage_of_layer) if s < frozen_stages
    ]
    trainable = [
        layer for layer, s in zip(model.layers, stage_of_layer)
        if s >= frozen_stages
    ]
    for m in frozen:
        assert all(not p.requires_grad for p in m.parameters())
        assert all(not bn.training for bn in _bns(m))
    for m in trainable:
        assert all(p.requires_grad for p in m.parameters())
        assert all(bn.training for bn in _bns(m))
    # a train-mode forward leaves the frozen BN statistics alone
    stem_mean = model.stem.bn.running_mean.clone()
    last = model.layers[-1]['shuffle_5x5'].branch_main[0].bn
    last_mean = last.running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    assert torch.equal(stem_mean, model.stem.bn.running_mean)
    assert not torch.equal(last_mean, last.running_mean)
    # .train() again (e.g. after validation) keeps the stages frozen
    model.eval()
    model.train()
    assert not model.stem.bn.training


def test_frozen_nothing():
    model = DetNASShuffleNetV2(frozen_stages=-1).train()
    assert all(p.requires_grad for p in model.parameters())
    assert all(m.training for m in model.modules())


# ----------------------------------------- unselected choices do not move
def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _choice_of(key):
    """(layer, choice) of a supernet block key, else None."""
    parts = key.split('.')
    if parts[0] == 'layers':
        return int(parts[1]), parts[2]
    return None


def _sgd_step(model, optimizer, arch, x):
    model.set_arch(arch)
    optimizer.zero_grad(set_to_none=True)
    loss = sum(o.square().mean() for o in model(x))
    loss.backward()
    optimizer.step()


def test_sgd_step_leaves_unselected_choices_untouched():
    """SPOS training: with set_to_none gradients, SGD applies no weight
    decay and no momentum to the choices off the path, and BN statistics
    of those choices do not change."""
    torch.manual_seed(0)
    model = DetNASShuffleNetV2().train()
    arch = random_arch(20, random.Random(0))
    params = dict(model.named_parameters())
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(2, 3, 32, 32)

    before = _snapshot(model)
    _sgd_step(model, optimizer, arch, x)
    after = _snapshot(model)
    n_unselected = n_selected = 0
    for k, v in after.items():
        lc = _choice_of(k)
        if lc is not None and arch[lc[0]] != lc[1]:
            assert torch.equal(v, before[k]), k
            if k in params:
                n_unselected += 1
                assert params[k].grad is None, k
                assert 'momentum_buffer' not in optimizer.state[params[k]]
        elif k in params:
            n_selected += 1
            assert params[k].grad is not None, k
            # conv weights move (weight decay at least); some biases have
            # an exactly zero gradient (a per-channel shift before a BN)
            if k.endswith('conv.weight'):
                assert not torch.equal(v, before[k]), k
    assert n_unselected > n_selected > 0
    # BN statistics of every selected block were updated
    for i, layer in enumerate(model.layers):
        bn = layer[arch[i]].branch_main[0].bn
        key = f'layers.{i}.{arch[i]}.branch_main.0.bn.num_batches_tracked'
        assert bn.num_batches_tracked.item() == before[key].item() + 1

    # step 2 on a path disjoint from step 1's: step 1's choices now carry
    # momentum buffers but must not move
    arch2 = _shifted(arch)
    _sgd_step(model, optimizer, arch2, x)
    after2 = _snapshot(model)
    for k, v in after2.items():
        lc = _choice_of(k)
        if lc is None:
            if k.endswith(('conv.weight', 'running_mean')):
                assert not torch.equal(v, after[k]), k
            continue
        layer, choice = lc
        if choice == arch[layer]:
            assert torch.equal(v, after[k]), k
            if k in params:
                assert params[k].grad is None
                assert 'momentum_buffer' in optimizer.state[params[k]]
        elif choice == arch2[layer]:
            if k.endswith(('conv.weight', 'running_mean')):
                assert not torch.equal(v, after[k]), k
        else:
            assert torch.equal(v, before[k]), k
