"""Tests of search spaces and architectures (parsing, files, errors)."""
import argparse
import random

import pytest
import torch
import yaml

from mmdetnas.models.backbones import DetNASShuffleNetV2
from mmdetnas.spaces import (arch_argument, arch_to_indices,
                             build_search_space, CHOICES, load_arch_file,
                             official_arch, OFFICIAL_ARCHS, parse_arch,
                             parse_arch_text, PRESETS, resolve_arch,
                             save_arch_file, SearchSpace)

NAMES = ('shuffle_3x3', 'shuffle_5x5', 'shuffle_7x7', 'shuffle_xception')
CUSTOM = dict(
    name='tiny',
    stem_channels=8,
    stage_channels=[16, 32, 64, 128],
    stage_blocks=[1, 2, 1, 1],
    last_channels=256,
    choices=['shuffle_3x3', 'shuffle_xception'])


def _random_arch(n, seed=0):
    rng = random.Random(seed)
    return tuple(rng.choice(NAMES) for _ in range(n))


# ------------------------------------------------------------ search space
@pytest.mark.parametrize('name,stem,channels,blocks,last', [
    ('300M', 16, (64, 160, 320, 640), (4, 4, 8, 4), 1024),
    ('1.3G', 48, (96, 240, 480, 960), (8, 8, 16, 8), 1024),
    ('3.8G', 72, (172, 432, 864, 1728), (8, 8, 16, 8), 1728),
])
def test_presets(name, stem, channels, blocks, last):
    space = build_search_space(name)
    assert space is PRESETS[name]
    assert (space.stem_channels, space.stage_channels, space.stage_blocks,
            space.last_channels) == (stem, channels, blocks, last)
    assert space.choices == NAMES == CHOICES
    assert space.num_layers == sum(blocks)
    layers = space.layers()
    assert len(layers) == sum(blocks)
    # stride 2 exactly at the first block of every stage
    firsts = {0, blocks[0], sum(blocks[:2]), sum(blocks[:3])}
    for spec in layers:
        assert spec.stride == (2 if spec.index in firsts else 1)
        assert spec.out_channels == channels[spec.stage]
    assert layers[0].in_channels == stem and layers[0].in_size == 112
    assert [layers[i].in_size for i in sorted(firsts)] == [112, 56, 28, 14]
    assert space.stage_ends == [sum(blocks[:i + 1]) - 1 for i in range(4)]


def test_custom_search_space_builds():
    space = build_search_space(CUSTOM)
    assert isinstance(space, SearchSpace)
    assert space.num_layers == 5 and space.num_choices == 2
    assert hash(space) == hash(build_search_space(dict(CUSTOM)))
    model = DetNASShuffleNetV2(search_space=CUSTOM).eval()
    model.set_arch(['shuffle_xception', 0, 1, 'shuffle_3x3', 1])
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 33, 33))
    assert [o.shape[1] for o in outs] == [16, 32, 64, 128]
    assert [o.shape[-1] for o in outs] == [9, 5, 3, 2]
    # a choice outside the space's list is rejected
    with pytest.raises(ValueError, match='shuffle_7x7'):
        model.set_arch(['shuffle_7x7'] * 5)
    with pytest.raises(ValueError, match='out of range'):
        model.set_arch([2] * 5)


@pytest.mark.parametrize(
    'change,error',
    [
        (dict(stem_channels=7), ValueError),
        (dict(stage_channels=[16, 33, 64, 128]), ValueError),
        # a stage as wide as its input leaves its stride-2 block a main
        # branch of 0 channels
        (dict(stage_channels=[16, 32, 32, 128]), ValueError),
        (dict(stem_channels=16, stage_channels=[16, 32, 64, 128]),
         ValueError),
        (dict(choices=['shuffle_3x3', 'shuffle_9x9']), ValueError),
        (dict(choices=[]), ValueError),
        (dict(choices=['shuffle_3x3', 'shuffle_3x3']), ValueError),
        (dict(stage_blocks=[1, 1, 1]), ValueError),
        (dict(stage_blocks=[1, 0, 1, 1]), ValueError),
        (dict(stage_channels=[16, 32, 64], stage_blocks=[1, 1, 1
                                                         ]), ValueError),
        (dict(depth=3), TypeError),
        (dict(name='300M'),
         ValueError),  # differs from the preset of that name
    ])
def test_custom_search_space_errors(change, error):
    cfg = dict(CUSTOM, **change)
    with pytest.raises(error):
        build_search_space(cfg)


def test_build_search_space_errors():
    with pytest.raises(KeyError, match='300M'):
        build_search_space('600M')
    with pytest.raises(TypeError):
        build_search_space(300)


def test_odd_channel_message():
    with pytest.raises(ValueError, match='33'):
        build_search_space(dict(CUSTOM, stage_channels=[16, 33, 64, 128]))


# ------------------------------------------------------------ architectures
def test_official_archs():
    expected = {
        'COCO-FPN-300M':
        [2, 1, 2, 0, 2, 1, 1, 2, 3, 3, 1, 3, 0, 0, 3, 1, 3, 1, 3, 2],
        'COCO-RetinaNet-300M':
        [2, 3, 1, 1, 3, 2, 1, 3, 3, 1, 1, 1, 3, 3, 2, 0, 3, 3, 3, 3],
    }
    for name, idx in expected.items():
        space, arch = official_arch(name)
        assert space is PRESETS['300M']
        assert arch == tuple(NAMES[i] for i in idx)
        assert arch_to_indices(arch, space) == idx
        assert resolve_arch(name) == (space, arch)
    big = [
        0, 0, 3, 1, 2, 1, 0, 2, 0, 3, 1, 2, 3, 3, 2, 0, 2, 1, 1, 3, 2, 0, 2, 2,
        2, 1, 3, 1, 0, 3, 3, 3, 1, 3, 3, 3, 3, 3, 3, 3
    ]
    for name, preset in (('COCO-FPN-1.3G', '1.3G'), ('COCO-FPN-3.8G', '3.8G')):
        space, arch = resolve_arch(name)
        assert space is PRESETS[preset]
        assert arch == tuple(NAMES[i] for i in big)
    assert set(OFFICIAL_ARCHS) == {
        'COCO-FPN-300M', 'COCO-RetinaNet-300M', 'COCO-FPN-1.3G',
        'COCO-FPN-3.8G'
    }
    with pytest.raises(KeyError, match='COCO-FPN-300M'):
        official_arch('COCO-FPN-600M')


def test_resolve_list_forms():
    arch = _random_arch(20)
    idx = [NAMES.index(c) for c in arch]
    mixed = [c if i % 3 else idx[i] for i, c in enumerate(arch)]
    for value in (list(arch), arch, idx, mixed):
        space, out = resolve_arch(value)
        assert space is PRESETS['300M'] and out == arch
        assert isinstance(out, tuple)
    space, out = resolve_arch([3] * 40, '1.3G')
    assert space is PRESETS['1.3G'] and out == ('shuffle_xception', ) * 40


def test_resolve_errors():
    arch = list(_random_arch(20))
    with pytest.raises(ValueError) as e:
        resolve_arch(arch[:-2])
    assert '18' in str(e.value) and '20' in str(e.value)
    with pytest.raises(ValueError) as e:
        resolve_arch(arch, '1.3G')
    assert '20' in str(e.value) and '40' in str(e.value)
    bad = arch[:7] + ['shuffle_9x9'] + arch[8:]
    with pytest.raises(ValueError) as e:
        resolve_arch(bad)
    msg = str(e.value)
    assert 'layer 7' in msg and 'shuffle_9x9' in msg
    assert all(n in msg for n in NAMES)  # the allowed values
    with pytest.raises(ValueError, match='layer 4.*index 4'):
        resolve_arch([0] * 4 + [4] + [0] * 15)
    with pytest.raises(ValueError, match='layer 0.*index -1'):
        resolve_arch([-1] + [0] * 19)
    with pytest.raises((TypeError, ValueError)):
        resolve_arch([True] + [0] * 19)  # a bool is not an index
    with pytest.raises(TypeError):
        resolve_arch([0.0] * 20)
    with pytest.raises(FileNotFoundError):
        resolve_arch('not-an-arch')
    with pytest.raises(FileNotFoundError):
        resolve_arch('/nonexistent/dir/arch.yaml')
    with pytest.raises(ValueError, match='1.3G'):
        resolve_arch('COCO-FPN-1.3G', '300M')


# ------------------------------------------------------------------- files
def test_arch_file_round_trip(tmp_path):
    arch = _random_arch(20, seed=5)
    path = str(tmp_path / 'sub' / 'arch.yaml')
    assert save_arch_file(path, arch, '300M', meta=dict(flops=3e8)) == path
    text = open(path).read()
    # human readable: the choice names are in the file, one per layer
    data = yaml.safe_load(text)
    assert data['search_space'] == '300M'
    assert data['arch'] == list(arch)
    assert data['meta'] == dict(flops=3e8)
    for c in set(arch):
        assert c in text
    space, loaded = load_arch_file(path)
    assert space is PRESETS['300M'] and loaded == arch
    assert resolve_arch(path) == (space, arch)
    assert resolve_arch(path, '300M') == (space, arch)
    # the backbone accepts the file
    model = DetNASShuffleNetV2(arch=path)
    assert model.arch == arch


def test_arch_file_custom_space(tmp_path):
    path = str(tmp_path / 'tiny.yaml')
    save_arch_file(path, [1, 0, 1, 0, 0], CUSTOM)
    data = yaml.safe_load(open(path))
    assert data['search_space']['stage_channels'] == [16, 32, 64, 128]
    space, arch = load_arch_file(path)
    assert space == build_search_space(CUSTOM)
    assert arch == ('shuffle_xception', 'shuffle_3x3', 'shuffle_xception',
                    'shuffle_3x3', 'shuffle_3x3')


def test_arch_file_other_space(tmp_path):
    path = str(tmp_path / 'big.yaml')
    save_arch_file(path, [0] * 40, '1.3G')
    with pytest.raises(ValueError, match='1.3G'):
        resolve_arch(path, '300M')
    with pytest.raises(ValueError):
        DetNASShuffleNetV2(search_space='300M', arch=path)
    assert resolve_arch(path)[0] is PRESETS['1.3G']


def test_save_arch_file_validates(tmp_path):
    with pytest.raises(ValueError):
        save_arch_file(str(tmp_path / 'a.yaml'), ['shuffle_3x3'] * 19, '300M')
    assert not (tmp_path / 'a.yaml').exists()


@pytest.mark.parametrize(
    'content',
    [
        'arch: [shuffle_3x3, shuffle_5x5\n',  # malformed YAML
        'arch: [0, 1]\n',  # no search_space
        'search_space: 300M\n',  # no arch
        '- shuffle_3x3\n- shuffle_5x5\n',  # not a mapping
        '',  # empty
    ])
def test_bad_arch_files(tmp_path, content):
    path = tmp_path / 'bad.yaml'
    path.write_text(content)
    with pytest.raises(ValueError):
        load_arch_file(str(path))


def test_arch_file_bad_content(tmp_path):
    path = tmp_path / 'bad.yaml'
    path.write_text('search_space: 300M\narch: [' + ', '.join(['0'] * 19) +
                    ']\n')
    with pytest.raises(ValueError, match='19'):
        load_arch_file(str(path))
    path.write_text('search_space: 300M\narch: [' +
                    ', '.join(['shuffle_3x3'] * 19 + ['conv']) + ']\n')
    with pytest.raises(ValueError, match='layer 19'):
        load_arch_file(str(path))


def test_missing_arch_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_arch_file(str(tmp_path / 'missing.yaml'))


# ------------------------------------------------- architectures as text
FPN_300M_IDX = [2, 1, 2, 0, 2, 1, 1, 2, 3, 3, 1, 3, 0, 0, 3, 1, 3, 1, 3, 2]


def test_parse_arch_text_forms(tmp_path):
    """Every form a tool's architecture argument accepts, one parser."""
    want = tuple(NAMES[i] for i in FPN_300M_IDX)  # COCO-FPN-300M
    space = PRESETS['300M']
    names = ','.join(want)
    forms = [
        ','.join(map(str, FPN_300M_IDX)),  # indices
        names,  # names
        ', '.join(want),  # with blanks
        ','.join(c if i % 2 else str(FPN_300M_IDX[i])
                 for i, c in enumerate(want)),  # mixed
        str(FPN_300M_IDX),  # '[2, 1, ...]' as in an arch file's comment
        str(list(want)),  # "['shuffle_7x7', ...]"
        'COCO-FPN-300M',
        ' COCO-FPN-300M ',
    ]
    for text in forms:
        assert parse_arch(text) == (space, want), text
        # resolve_arch accepts the very same strings (backbone, hooks...)
        assert resolve_arch(text) == (space, want), text
        assert parse_arch(text, '300M') == (space, want), text
        assert arch_argument(text) == text
    path = save_arch_file(str(tmp_path / 'a,b.yaml'), want, '300M')
    assert parse_arch(path) == (space, want)  # a comma in a file name
    assert parse_arch_text(path) == path
    assert parse_arch_text('3,0') == [3, 0]
    assert parse_arch_text('shuffle_3x3') == ['shuffle_3x3']
    # another search space: the indices are read against it
    out = parse_arch(','.join(['3'] * 40), '1.3G')
    assert out == (PRESETS['1.3G'], ('shuffle_xception', ) * 40)
    assert DetNASShuffleNetV2(arch=names).arch == want


def test_parse_arch_text_errors():
    bad = ','.join(['0'] * 7 + ['shuffle_9x9'] + ['0'] * 12)
    with pytest.raises(ValueError) as e:
        parse_arch(bad)
    msg = str(e.value)
    assert bad in msg and 'layer 7' in msg and "'shuffle_9x9'" in msg
    assert all(n in msg for n in NAMES)  # what was expected
    with pytest.raises(ValueError, match=r'layer 3: choice index 4 .*0\.\.3'):
        parse_arch(','.join(['0'] * 3 + ['4'] + ['0'] * 16))
    with pytest.raises(ValueError, match='index -1'):
        parse_arch(','.join(['-1'] + ['0'] * 19))
    with pytest.raises(ValueError) as e:
        parse_arch('0,1,2')
    assert "'0,1,2'" in str(e.value) and '3 layers' in str(e.value)
    assert '20' in str(e.value)
    with pytest.raises(ValueError, match='1 layers'):
        parse_arch('3')
    with pytest.raises(ValueError, match=r"'0,,1'.*position 1"):
        parse_arch('0,,1')
    with pytest.raises(ValueError, match='empty architecture'):
        parse_arch('  ')
    for text in ('not-an-arch', 'COCO-FPN-600M', '/nonexistent/a.yaml'):
        with pytest.raises(FileNotFoundError) as e:
            parse_arch(text)
        assert text in str(e.value)
    with pytest.raises(FileNotFoundError) as e:
        parse_arch('not-an-arch')
    # the message lists the accepted forms
    assert 'comma-separated' in str(e.value) and 'COCO-FPN-300M' in str(
        e.value)
    with pytest.raises(ValueError, match='1.3G'):
        parse_arch(','.join(['0'] * 20), '1.3G')
    with pytest.raises(TypeError):
        parse_arch(['0'] * 20)
    for text in ('not-an-arch', '0,,1', ''):
        with pytest.raises(argparse.ArgumentTypeError) as e:
            arch_argument(text)
        assert repr(text) in str(e.value)


def test_stage_not_wider_than_its_input_is_named():
    # stage 2 (64 -> 64) would give its stride-2 block a main branch of
    # 64 - 64 = 0 channels, which fails deep inside a conv otherwise
    with pytest.raises(ValueError, match='stage 2 has 64 output channels '
                       'but its input has 64'):
        build_search_space(dict(CUSTOM, stage_channels=[16, 64, 64, 128]))
    with pytest.raises(ValueError, match='stage 0 has 8 .* input has 8'):
        build_search_space(dict(CUSTOM, stage_channels=[8, 32, 64, 128]))
