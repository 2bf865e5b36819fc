"""The SM-NAS backbone code: parsing, formatting, derived layout, MACs."""
import random
import re

import pytest
import torch
from mmdet.models.backbones import ResNet

from mmdetnas.search.flops import count_macs
from mmdetnas.spaces.resnet_code import (ResNetCode, code_macs, format_code,
                                         parse_code, plain_code)
from mmdetnas.spaces.code_mutation import CodeLimits, random_code


def test_worked_example():
    """The layout of a code worked out by hand from the format's rules."""
    code = parse_code('r18_48_121-211-1111-12111')
    assert code == ResNetCode(18, 48, ('121', '211', '1111', '12111'))
    assert code.block == 'basic' and code.expansion == 1
    assert code.stage_blocks == (3, 3, 4, 5) and code.num_blocks == 15
    assert code.widen_at == (1, 3, 11)
    # the first block of stages 2, 3, 4 halves the resolution
    assert code.downsample_at == (3, 6, 10)
    assert code.block_strides == (1, 1, 1, 2, 1, 1, 2, 1, 1, 1, 2, 1, 1, 1,
                                  1)
    assert code.block_planes == (48, 96, 96, 192, 192, 192, 192, 192, 192,
                                 192, 192, 384, 384, 384, 384)
    assert code.stage_channels == (96, 192, 192, 384)
    assert code.stem_channels == (24, 48)
    bottleneck = parse_code('r50_64_1-2-2-2')
    assert bottleneck.block == 'bottleneck'
    assert bottleneck.stage_channels == (256, 512, 1024, 2048)


@pytest.mark.parametrize('depth', [18, 34, 50, 101, 152])
def test_plain_codes_have_mmdet_resnet_stages(depth):
    code = plain_code(depth)
    # blocks per stage from mmdet's own table, not from ours
    block, stage_blocks = ResNet.arch_settings[depth]
    assert code.stage_blocks == tuple(stage_blocks)
    assert code.expansion == block.expansion
    assert code.stage_channels == tuple(64 * 2**i * block.expansion
                                        for i in range(4))
    assert code.num_widenings == 3
    assert code.widen_at == code.downsample_at


def test_plain_code_strings_of_the_original():
    assert str(plain_code(18)) == 'r18_64_11-21-21-21'
    assert str(plain_code(34)) == 'r34_64_111-2111-211111-211'
    assert str(plain_code(50)) == 'r50_64_111-2111-211111-211'
    assert str(plain_code(101)) == 'r101_64_111-2111-2' + '1' * 22 + '-211'
    with pytest.raises(ValueError, match='no plain ResNet of depth 26'):
        plain_code(26)


def test_round_trip():
    rng = random.Random(0)
    limits = CodeLimits(num_widenings=None)
    codes = [plain_code(d) for d in (18, 34, 50, 101, 152)]
    codes += [random_code(rng.choice([18, 50]), limits, rng)
              for _ in range(300)]
    for code in codes:
        text = format_code(code)
        assert text == str(code)
        assert parse_code(text) == code
        assert format_code(parse_code(text)) == text
        assert hash(parse_code(text)) == hash(code)
    assert parse_code(codes[0]) is codes[0]


def _pos(message):
    return int(re.search(r'at position (\d+)', message).group(1))


# (code, offending substring whose index is the position or None for the
# end of the string, words the message must contain)
BAD = [
    ('x18_64_11-21-21-21', 'x', "expected 'r'"),
    ('R18_64_11-21-21-21', 'R', "expected 'r'"),
    (' r18_64_11-21-21-21', ' ', "expected 'r'"),
    ('r_64_11-21-21-21', '_', 'expected the depth (digits)'),
    ('r19_64_11-21-21-21', '19',
     'expected a depth in (18, 34, 50, 101, 152), got 19'),
    ('r18-64_11-21-21-21', '-', "expected '_' after the depth"),
    ('r18', None, "expected '_' after the depth, got end of code"),
    ('r18__11-21-21-21', '_11', 'expected the base channels (digits)'),
    ('r18_064_11-21-21-21', '064', 'without leading zeros'),
    ('r18_0_11-21-21-21', '0_', 'without leading zeros'),
    ('r18_64-11-21-21-21', '-11', "expected '_' after the base channels"),
    ('r18_64', None, "'_' after the base channels, got end of code"),
    ('r18_64_', None, 'stage 1 is empty), got end of code'),
    ('r18_64_-11-21-21-21', '-11', 'stage 1 is empty'),
    ('r18_64_11--21-21', '-21-21', 'stage 2 is empty'),
    ('r18_64_11-21-21-', None, 'stage 4 is empty), got end of code'),
    ('r18_64_11-2x-21-21', 'x', "expected a block '1' (keep width) or '2' "
     "(double width) or a stage border '-', got 'x'"),
    ('r18_64_11-21-21-31', '3', "or a stage border '-', got '3'"),
    ('r18_64_11-21-21-21 ', ' ', "or a stage border '-', got ' '"),
    ('r18_64_11-21-21-21_x', '_x', "got '_'"),
    ('r18_64_11-21-21', None, "4 stages separated by '-', found 3"),
    ('r18_64_1121', None, "4 stages separated by '-', found 1"),
    ('r18_64_11-21-21-21-1', '-1', "at most 3 '-'"),
]


@pytest.mark.parametrize('text,where,words', BAD, ids=[b[0] for b in BAD])
def test_bad_code_errors_name_position_and_expectation(text, where, words):
    with pytest.raises(ValueError) as info:
        parse_code(text)
    msg = str(info.value)
    assert f'bad ResNet code {text!r}' in msg
    assert words in msg
    expected = len(text) if where is None else text.index(where)
    assert _pos(msg) == expected
    # the caret sits under the position
    text_line, caret_line = msg.splitlines()[-2:]
    assert text_line == '  ' + text
    assert caret_line == '  ' + ' ' * expected + '^'


@pytest.mark.parametrize('value', [18, None, b'r18_64_11-21-21-21',
                                   ['r18_64_11-21-21-21']])
def test_non_string_is_type_error(value):
    with pytest.raises(TypeError, match="a string like 'r18_64_11-21-21-21'"):
        parse_code(value)


@pytest.mark.parametrize('fields,exc,words', [
    (dict(depth=19), ValueError, 'depth: expected one of'),
    (dict(depth=True), TypeError, 'depth must be an int'),
    (dict(base_channels=0), ValueError, 'expected a positive integer'),
    (dict(base_channels=64.0), TypeError, 'base_channels must be an int'),
    (dict(stages='11-21-21-21'), TypeError, 'tuple of strings'),
    (dict(stages=('11', '21', '21')), ValueError, 'expected 4 stages'),
    (dict(stages=('11', '', '21', '21')), ValueError,
     r"stages\[1\]: expected at least one block"),
    (dict(stages=('11', '21', '2-1', '21')), ValueError,
     r"stages\[2\]\[1\]: expected a block '1' or '2', got '-'"),
    (dict(stages=('11', '21', 21, '21')), TypeError,
     r'stages\[2\] must be a string'),
])
def test_dataclass_validates_fields(fields, exc, words):
    values = dict(depth=18, base_channels=64, stages=('11', '21', '21', '21'))
    values.update(fields)
    with pytest.raises(exc, match=words):
        ResNetCode(**values)


def test_list_stages_become_a_tuple():
    code = ResNetCode(18, 64, ['11', '21', '21', '21'])
    assert code.stages == ('11', '21', '21', '21')
    assert code == plain_code(18)
    assert code.replace(base_channels=48) == parse_code('r18_48_11-21-21-21')


def test_stem_macs_quoted_in_the_backbone_docstring():
    """By hand: two 3x3 stride-2 convs (3->32 at 112x112, 32->64 at
    56x56) vs mmdet's 7x7 stride-2 conv 3->64 at 112x112."""
    from mmdetnas.models.backbones import SMNASResNet
    ours = 3 * 32 * 9 * 112 * 112 + 32 * 64 * 9 * 56 * 56
    mmdet = 3 * 64 * 49 * 112 * 112
    assert (ours, mmdet) == (68_640_768, 118_013_952)
    x = torch.zeros(1, 3, 224, 224)
    stem = SMNASResNet('r18_64_11-21-21-21').stem.eval()
    assert count_macs(stem, (x, )) == ours
    resnet = ResNet(18)
    resnet.eval()  # mmdet's ResNet.train returns None
    assert count_macs(resnet.conv1, (x, )) == mmdet


@pytest.mark.parametrize('text', [
    'r18_64_11-21-21-21', 'r50_64_111-2111-211111-211',
    'r18_48_121-211-1111-12111', 'r50_56_2-11-1211-21', 'r34_72_1-1-1-1'
])
def test_code_macs_match_mmengine_analysis(text):
    from mmdetnas.models.backbones import SMNASResNet
    for conv_cfg, norm_cfg in ((None, dict(type='BN')),
                               (dict(type='ConvWS'),
                                dict(type='GN', num_groups='half_base'))):
        model = SMNASResNet(text, conv_cfg=conv_cfg,
                            norm_cfg=norm_cfg).eval()
        for h, w in ((64, 64), (65, 97)):
            traced = count_macs(model, (torch.zeros(1, 3, h, w), ))
            assert code_macs(text, input_size=(h, w)) == traced
