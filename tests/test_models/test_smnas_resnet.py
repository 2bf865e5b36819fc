"""The SM-NAS ResNet backbone built from a backbone code."""
import math
import random

import pytest
import torch
import torch.nn as nn
from mmcv.cnn.bricks.conv_ws import ConvWS2d
from mmdet.models.backbones import ResNet
from mmengine.analysis import FlopAnalyzer

from mmdetnas.models.backbones import SMNASResNet
from mmdetnas.spaces.resnet_code import parse_code, plain_code
from mmdetnas.spaces.code_mutation import CodeLimits, random_code

GNWS = dict(conv_cfg=dict(type='ConvWS'),
            norm_cfg=dict(type='GN', num_groups=32, requires_grad=True))


def _stage_macs(model, x):
    analyzer = FlopAnalyzer(model, (x, ))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    by_module = analyzer.by_module()
    return [by_module[f'layer{i}'] for i in range(1, 5)]


@pytest.mark.parametrize('depth', [18, 34, 50])
def test_plain_codes_build_the_mmdet_resnet_stages(depth):
    """Same blocks, widths and strides per stage as mmdet's ResNet(depth):
    the same stage output shapes, parameter names, shapes and counts, and
    the same MACs per stage (mmengine.analysis). Only the stem differs."""
    ours = SMNASResNet(str(plain_code(depth)), **GNWS)
    ref = ResNet(depth, norm_eval=False, **GNWS)
    ours.eval()
    ref.eval()
    for i in range(1, 5):
        a = getattr(ours, f'layer{i}').state_dict()
        b = getattr(ref, f'layer{i}').state_dict()
        assert {k: v.shape for k, v in a.items()} == {
            k: v.shape for k, v in b.items()}, i
        assert sum(p.numel() for p in getattr(ours, f'layer{i}').parameters(
        )) == sum(p.numel() for p in getattr(ref, f'layer{i}').parameters())
    x = torch.rand(1, 3, 65, 97)
    with torch.no_grad():
        assert [o.shape for o in ours(x)] == [o.shape for o in ref(x)]
    assert _stage_macs(ours, x) == _stage_macs(ref, x)
    assert ours.out_channels == tuple(
        ref.feat_dim // 2**(3 - i) for i in range(4))


def test_plain_resnet101_stages_have_mmdet_shapes():
    ours = SMNASResNet(str(plain_code(101)), conv_cfg=None,
                       norm_cfg=dict(type='BN'))
    ref = ResNet(101)
    for i in range(1, 5):
        a = getattr(ours, f'layer{i}').state_dict()
        b = getattr(ref, f'layer{i}').state_dict()
        assert {k: v.shape for k, v in a.items()} == {
            k: v.shape for k, v in b.items()}


def test_output_strides_and_channels_of_random_codes():
    rng = random.Random(0)
    limits = CodeLimits(min_blocks=4, max_blocks=8, num_widenings=None,
                        base_channels=(16, 32))
    h, w = 70, 45
    x = torch.rand(2, 3, h, w)
    for depth in (18, 50):
        for _ in range(4):
            code = random_code(depth, limits, rng)
            model = SMNASResNet(code, norm_cfg=dict(
                type='GN', num_groups='half_base')).eval()
            with torch.no_grad():
                outs = model(x)
            assert len(outs) == 4
            # channels: base * 2**(widenings so far) * expansion, counted
            # here from the string
            exp = 1 if depth == 18 else 4
            seen = 0
            for k, (out, stride) in enumerate(zip(outs, (4, 8, 16, 32))):
                seen += code.stages[k].count('2')
                channels = code.base_channels * 2**seen * exp
                assert out.shape == (2, channels, math.ceil(h / stride),
                                     math.ceil(w / stride)), (code, k)
                assert model.stage_channels[k] == channels


def test_out_indices_and_out_channels():
    model = SMNASResNet('r50_48_1-12-2-211', out_indices=(1, 3),
                        norm_cfg=dict(type='GN', num_groups=24))
    assert model.stage_channels == (192, 384, 768, 1536)
    assert model.out_channels == (384, 1536)
    outs = model(torch.rand(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [384, 1536]
    with pytest.raises(ValueError, match='out_indices'):
        SMNASResNet('r18_64_1-2-2-2', out_indices=(4, ))
    with pytest.raises(ValueError, match='frozen_stages'):
        SMNASResNet('r18_64_1-2-2-2', frozen_stages=5)


def test_from_scratch_defaults_are_gn_and_ws_everywhere():
    model = SMNASResNet('r18_64_11-21-21-21')
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in model.modules()
             if isinstance(m, (nn.GroupNorm, nn.modules.batchnorm._NormBase))]
    assert convs and all(isinstance(m, ConvWS2d) for m in convs)
    assert norms and all(
        isinstance(m, nn.GroupNorm) and m.num_groups == 32 for m in norms)
    assert all(p.requires_grad for p in model.parameters())
    # Kaiming convs, unit norm weights, no zero-init of residual norms
    model.init_weights()
    assert all(torch.all(m.weight == 1) for m in norms)


def test_zero_init_residual():
    model = SMNASResNet('r50_64_1-2-2-2', zero_init_residual=True)
    model.init_weights()
    for name in ('layer1', 'layer2', 'layer3', 'layer4'):
        block = getattr(model, name)[0]
        assert torch.all(block.norm3.weight == 0)
        assert torch.all(block.norm1.weight == 1)


def test_group_norm_must_divide_every_width():
    with pytest.raises(ValueError) as info:
        SMNASResNet('r18_48_11-21-21-21')
    msg = str(info.value)
    assert 'num_groups=32' in msg and 'the 24 channels of the stem conv 1' \
        in msg and "'half_base'" in msg
    # base/2 groups (the original code's choice) work for any even base
    for base in (48, 56, 72):
        model = SMNASResNet(f'r18_{base}_11-21-21-21',
                            norm_cfg=dict(type='GN', num_groups='half_base'))
        groups = {m.num_groups for m in model.modules()
                  if isinstance(m, nn.GroupNorm)}
        assert groups == {base // 2}
    with pytest.raises(ValueError, match='positive int or'):
        SMNASResNet('r18_64_1-2-2-2',
                    norm_cfg=dict(type='GN', num_groups='x'))


def test_bad_code_is_a_clear_error():
    with pytest.raises(ValueError, match="at position 9: expected a block"):
        SMNASResNet('r18_64_11x-21-21-21')


def test_frozen_stages_and_norm_eval():
    model = SMNASResNet('r18_64_11-21-21-21', frozen_stages=2,
                        norm_eval=True, conv_cfg=None,
                        norm_cfg=dict(type='BN'))
    model.train()
    for name in ('stem', 'layer1', 'layer2'):
        part = getattr(model, name)
        assert not any(p.requires_grad for p in part.parameters()), name
        assert not any(m.training for m in part.modules()), name
    for name in ('layer3', 'layer4'):
        assert all(p.requires_grad for p in getattr(model,
                                                    name).parameters())
    # norm_eval: every BN in eval mode, convs of unfrozen stages training
    bns = [m for m in model.modules()
           if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert bns and not any(m.training for m in bns)
    assert model.layer3[0].conv1.training
    model.eval()
    model.train()
    assert not model.layer1.training and model.layer4.training


def test_trains_one_step():
    model = SMNASResNet('r18_32_1-21-2-2',
                        norm_cfg=dict(type='GN', num_groups=16))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = sum(o.mean() for o in model(torch.rand(2, 3, 32, 32)))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    opt.step()


def test_built_from_the_registry_under_mmdet_scope():
    from mmdet.registry import MODELS
    model = MODELS.build(dict(type='mmdetnas.SMNASResNet',
                              arch='r34_64_111-2111-211111-211'))
    assert isinstance(model, SMNASResNet)
    assert model.code == parse_code('r34_64_111-2111-211111-211')
