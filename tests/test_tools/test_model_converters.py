"""Tests of tools/model_converters: export_subnet.py and
detnas_to_mmdetnas.py."""
import json
import os.path as osp
import random

import pytest
import torch

from mmdetnas.models.backbones import DetNASShuffleNetV2
from mmdetnas.search import (OFFICIAL_ARCHS, PRESETS, arch_cost,
                             arch_to_indices, load_arch_file)
from tests.e2e_utils import ROOT, load_tool

# the reference key layout lives in the workspace's shared/ folder (next to
# the repository, or inside a checkout that carries it)
KEYS_JSONS = [
    osp.join(base, 'shared', 'reference', 'detnas_official_backbone_keys.json')
    for base in (ROOT, osp.dirname(ROOT))
]
NAMES = ('shuffle_3x3', 'shuffle_5x5', 'shuffle_7x7', 'shuffle_xception')


def _read(path):
    return torch.load(path, map_location='cpu', weights_only=False)


# ------------------------------------------------------------ export_subnet
@pytest.fixture(scope='module')
def export_tool():
    return load_tool('model_converters/export_subnet.py')


def _supernet_checkpoint(path):
    torch.manual_seed(0)
    supernet = DetNASShuffleNetV2()
    state = {'backbone.' + k: v for k, v in supernet.state_dict().items()}
    state['neck.w'] = torch.randn(3, 4)
    torch.save(
        dict(
            state_dict=state,
            optimizer=dict(state={}, param_groups=[dict(lr=0.1)]),
            meta=dict(iter=10)), path)
    return state


def test_export_subnet(tmp_path, export_tool, capsys):
    src = str(tmp_path / 'supernet.pth')
    dst = str(tmp_path / 'out' / 'subnet.pth')
    state = _supernet_checkpoint(src)
    rng = random.Random(0)
    idx = [rng.randrange(4) for _ in range(20)]
    arch = tuple(NAMES[i] for i in idx)
    export_tool.main([src, ','.join(map(str, idx)), dst])
    assert 'exported subnet' in capsys.readouterr().out

    ckpt = _read(dst)
    assert 'optimizer' not in ckpt
    out = ckpt['state_dict']
    assert torch.equal(out['neck.w'], state['neck.w'])
    backbone = {
        k[len('backbone.'):]: v
        for k, v in out.items() if k.startswith('backbone.')
    }
    assert set(out) == {'neck.w'} | {'backbone.' + k for k in backbone}
    subnet = DetNASShuffleNetV2(arch=arch)
    subnet.load_state_dict(backbone, strict=True)
    for k, v in subnet.state_dict().items():
        assert torch.equal(v, state['backbone.' + k]), k
    # meta: the architecture and its cost; an arch file next to it
    meta = ckpt['meta']
    assert meta['arch'] == list(arch) and meta['iter'] == 10
    assert (meta['flops'], meta['params']) == arch_cost(PRESETS['300M'], arch)
    space, arch_from_file = load_arch_file(
        str(tmp_path / 'out' / 'subnet_arch.yaml'))
    assert space is PRESETS['300M'] and arch_from_file == arch


def test_export_official_name_and_names(tmp_path, export_tool):
    src = str(tmp_path / 'supernet.pth')
    _supernet_checkpoint(src)
    dst = str(tmp_path / 'fpn.pth')
    export_tool.main([src, 'COCO-FPN-300M', dst])
    arch = tuple(NAMES[i] for i in OFFICIAL_ARCHS['COCO-FPN-300M'][1])
    assert _read(dst)['meta']['arch'] == list(arch)
    dst2 = str(tmp_path / 'names.pth')
    export_tool.main([src, ','.join(arch), dst2])
    a, b = _read(dst)['state_dict'], _read(dst2)['state_dict']
    assert set(a) == set(b)


def test_export_missing_block(tmp_path, export_tool):
    src = str(tmp_path / 'supernet.pth')
    state = _supernet_checkpoint(src)
    arch = ['shuffle_5x5'] * 20
    state = {
        k: v
        for k, v in state.items()
        if not k.startswith('backbone.layers.3.shuffle_5x5.')
    }
    torch.save(dict(state_dict=state), src)
    with pytest.raises(KeyError, match='3'):
        export_tool.main([src, ','.join(arch), str(tmp_path / 'x.pth')])
    assert not osp.exists(tmp_path / 'x.pth')
    # another prefix than the checkpoint's: nothing found
    _supernet_checkpoint(src)
    with pytest.raises(KeyError):
        export_tool.main([
            src, ','.join(arch),
            str(tmp_path / 'y.pth'), '--prefix', 'model.backbone.'
        ])


# ------------------------------------------------------- detnas_to_mmdetnas
REFERENCE_PREFIX = 'module.backbone.body.'


@pytest.fixture(scope='module')
def convert_tool():
    return load_tool('model_converters/detnas_to_mmdetnas.py')


@pytest.fixture(scope='module')
def reference_keys():
    for path in KEYS_JSONS:
        if osp.isfile(path):
            with open(path) as f:
                return json.load(f)
    pytest.skip(f'reference key layout not found in {KEYS_JSONS}')


def _synthesize(layout, seed=0):
    """Random tensors of the listed shapes (integer counters for the 0-d
    ``num_batches_tracked``)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, shape in layout.items():
        if not shape:
            state[k] = torch.randint(0, 1000, (), generator=g)
        else:
            state[k] = torch.randn(shape, generator=g)
    return state


def _expected_key(ref_key, choice):
    """The mmdetnas key of a reference key, written out case by case from
    the block structure (reference ``conv.{r}`` rounds / ``_s`` depthwise
    suffix -> ``branch_main.{slot}``)."""
    if ref_key.startswith('first_conv.'):
        return 'stem.' + ref_key[len('first_conv.'):]
    parts = ref_key.split('.')
    layer = parts[1]
    if parts[2].isdigit():  # supernet: features.{layer}.{choice idx}.
        parts = parts[:2] + parts[3:]
    branch, name, param = parts[2], parts[-2], parts[-1]
    is_dw = name.endswith(('_s', '_s_bn'))  # depthwise conv or its BN
    is_bn = name.startswith('bn') or name.endswith('_bn')
    mod = 'bn' if is_bn else 'conv'
    if branch == 'proj_conv':
        return (f'layers.{layer}.{choice}.branch_proj.'
                f'{0 if is_dw else 1}.{mod}.{param}')
    rnd = int(parts[3])
    if choice == 'shuffle_xception':
        slot = 2 * rnd + (0 if is_dw else 1)
    else:  # 1x1 (round 0), then depthwise and 1x1 (round 1)
        slot = 0 if rnd == 0 else (1 if is_dw else 2)
    return f'layers.{layer}.{choice}.branch_main.{slot}.{mod}.{param}'


@pytest.mark.parametrize('entry', [
    'COCO-FPN-300M', 'COCO-RetinaNet-300M', 'COCO-FPN-1.3G', 'COCO-FPN-3.8G',
    'COCO-FPN-300M-search'
])
def test_convert_reference_layouts(tmp_path, convert_tool, reference_keys,
                                   entry):
    layout = reference_keys[entry]
    ref = _synthesize(layout)
    src, dst = str(tmp_path / 'ref.pth'), str(tmp_path / 'out' / 'conv.pth')
    torch.save(
        dict(state_dict={
            REFERENCE_PREFIX + k: v
            for k, v in ref.items()
        }), src)
    out, space, arch = convert_tool.main([src, dst])
    saved = _read(dst)['state_dict']
    assert set(saved) == set(out) and len(saved) == len(ref)

    supernet = entry.endswith('-search')
    official = entry[:-len('-search')] if supernet else entry
    preset, official_idx = OFFICIAL_ARCHS[official]
    assert space is PRESETS[preset]
    if supernet:
        assert arch is None
        model = DetNASShuffleNetV2(search_space=space)
    else:
        assert arch_to_indices(arch, space) == official_idx
        assert load_arch_file(str(tmp_path / 'out' /
                                  'conv_arch.yaml')) == (space, arch)
        model = DetNASShuffleNetV2(
            search_space=space, arch=arch, shuffle_order='interleave')
    model.load_state_dict(saved, strict=True)

    # values preserved under an independently written key mapping
    rng = random.Random(0)
    sampled = rng.sample(sorted(ref), 40) + [
        'first_conv.conv.weight', 'first_conv.bn.running_var'
    ]
    model_state = model.state_dict()
    for k in sampled:
        parts = k.split('.')
        if k.startswith('first_conv.'):
            choice = None
        elif supernet:
            choice = NAMES[int(parts[2])]
        else:
            choice = NAMES[official_idx[int(parts[1])]]
        new = _expected_key(k, choice)
        assert torch.equal(saved[new], ref[k]), (k, new)
        assert torch.equal(model_state[new], ref[k]), (k, new)


def test_convert_documented_mapping(tmp_path, convert_tool, reference_keys):
    ref = _synthesize(reference_keys['COCO-FPN-300M'], seed=1)
    src, dst = str(tmp_path / 'ref.pth'), str(tmp_path / 'conv.pth')
    torch.save({REFERENCE_PREFIX + k: v for k, v in ref.items()}, src)
    out, _, _ = convert_tool.main([src, dst, '--prefix', 'backbone.'])
    saved = _read(dst)['state_dict']
    pairs = {
        'first_conv.conv.weight':
        'stem.conv.weight',
        'first_conv.bn.bias':
        'stem.bn.bias',
        'features.0.conv.0.interstellar1a_shufflenet_7x7_branch2a.weight':
        'layers.0.shuffle_7x7.branch_main.0.conv.weight',
        'features.0.conv.1.interstellar1a_shufflenet_7x7_branch2b_s.weight':
        'layers.0.shuffle_7x7.branch_main.1.conv.weight',
        'features.0.conv.1.interstellar1a_shufflenet_7x7_branch2b_s_bn.'
        'running_mean':
        'layers.0.shuffle_7x7.branch_main.1.bn.running_mean',
        'features.0.conv.1.bn1a_shufflenet_7x7_branch2b.weight':
        'layers.0.shuffle_7x7.branch_main.2.bn.weight',
        'features.0.proj_conv.interstellar1a_proj_s.weight':
        'layers.0.shuffle_7x7.branch_proj.0.conv.weight',
        'features.0.proj_conv.bn1a_proj.running_var':
        'layers.0.shuffle_7x7.branch_proj.1.bn.running_var',
        'features.8.conv.2.interstellar3a_xception_3x3_branch2c_s.weight':
        'layers.8.shuffle_xception.branch_main.4.conv.weight',
        'features.8.conv.2.bn3a_xception_3x3_branch2c.bias':
        'layers.8.shuffle_xception.branch_main.5.bn.bias',
    }
    for ref_key, new in pairs.items():
        assert torch.equal(saved['backbone.' + new], ref[ref_key]), ref_key
    assert all(k.startswith('backbone.') for k in saved)


def test_convert_unknown_key(tmp_path, convert_tool, reference_keys):
    ref = _synthesize(reference_keys['COCO-FPN-300M'])
    src = str(tmp_path / 'ref.pth')
    for extra in ('features.0.conv.0.interstellar1a_mystery_conv.weight',
                  'head.fc.weight'):
        state = {REFERENCE_PREFIX + k: v for k, v in ref.items()}
        state[REFERENCE_PREFIX + extra] = torch.zeros(2)
        torch.save(dict(state_dict=state), src)
        with pytest.raises(KeyError):
            convert_tool.main([src, str(tmp_path / 'x.pth')])
        assert not osp.exists(tmp_path / 'x.pth')


def test_convert_missing_key(tmp_path, convert_tool, reference_keys):
    ref = _synthesize(reference_keys['COCO-FPN-300M'])
    ref.pop('features.5.conv.1.interstellar2b_shufflenet_5x5_branch2b.weight')
    src = str(tmp_path / 'ref.pth')
    torch.save(ref, src)
    with pytest.raises(RuntimeError, match='Missing'):
        convert_tool.main([src, str(tmp_path / 'x.pth')])
