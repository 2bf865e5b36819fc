"""Reading a checkpoint's architecture, and refusing weights that do not
fit the built model, on small in-memory models."""
import pytest
import torch
from torch import nn

from mmdetnas.models.backbones.detnas_shufflenetv2 import DetNASShuffleNetV2
from mmdetnas.utils.arch_meta import (check_weights_fit, checkpoint_arch,
                                      model_arch_meta)

A = ['shuffle_3x3', 'shuffle_5x5', 'shuffle_7x7', 'shuffle_xception'] * 5
B = ['shuffle_xception'] * 20


class Det(nn.Module):
    """A detector's layout: backbone and a neck."""

    def __init__(self, arch):
        super().__init__()
        self.backbone = DetNASShuffleNetV2(arch=arch)
        self.neck = nn.Linear(2, 2)


def test_architecture_from_meta_keys_or_none():
    sd = Det(A).state_dict()
    assert checkpoint_arch(dict(state_dict=sd)) == (A, None, 'keys')
    meta = model_arch_meta(Det(A))
    assert meta['arch'] == A and meta['search_space']['name'] == '300M'
    assert checkpoint_arch(dict(state_dict={}, meta=meta))[::2] == (A, 'meta')
    supernet = DetNASShuffleNetV2()
    assert model_arch_meta(nn.Sequential()) is None
    wrapped = {'backbone.' + k: v for k, v in supernet.state_dict().items()}
    assert checkpoint_arch(dict(state_dict=wrapped)) == (None, None, 'none')


def test_weights_of_another_architecture_are_refused_with_the_fit():
    model = Det(B)
    with pytest.raises(ValueError) as e:
        check_weights_fit(model, dict(state_dict=Det(A).state_dict()),
                          'a.pth')
    msg = str(e.value)
    assert "'a.pth'" in msg and 'model.backbone.arch=' + ','.join(A) in msg
    assert 'built with ' + ','.join(B) in msg
    check_weights_fit(model, dict(state_dict=model.state_dict()), 'b.pth')


def test_a_module_left_without_weights_is_refused():
    """A backbone-only checkpoint (classification) loaded as a whole
    detector: the backbone fits, the neck would stay random."""
    model = Det(A)
    backbone_only = {k: v for k, v in model.state_dict().items()
                     if k.startswith('backbone.')}
    with pytest.raises(ValueError, match=r"no weights at all for \['neck'\]"):
        check_weights_fit(model, dict(state_dict=backbone_only), 'c.pth')
    with pytest.raises(ValueError, match='holds no state dict'):
        check_weights_fit(model, torch.zeros(3), 'd.pth')


class SMDet(nn.Module):
    """A detector's layout with an SM-NAS backbone and a neck whose input
    channels are the backbone's stage outputs."""

    def __init__(self, code):
        super().__init__()
        from mmdetnas.models.backbones.smnas_resnet import SMNASResNet
        self.backbone = SMNASResNet(
            arch=code, norm_cfg=dict(type='GN', num_groups=8))
        self.neck = nn.Linear(2, 2)


# two codes of the same block type and base width whose stage widths differ
# (the '2' of the second stage moves to the third): ResNet-18 channels are
# 64/128/256/512, the other code's 64/64/128/256 (hand-derived: a '2'
# doubles the width of the block that holds it)
R18 = 'r18_64_11-21-21-21'
OTHER = 'r18_64_11-11-21-21'


def test_an_smnas_backbone_records_its_code():
    meta = model_arch_meta(SMDet(R18))
    assert meta['arch'] == R18
    assert meta['search_space'] == dict(name='smnas_resnet_code')
    # the code comes back as one string, not as its characters
    assert checkpoint_arch(dict(state_dict={}, meta=meta)) == (
        R18, meta['search_space'], 'meta')


def test_smnas_weights_of_another_code_are_refused_with_the_fit():
    model = SMDet(OTHER)
    theirs = SMDet(R18)
    ckpt = dict(state_dict=theirs.state_dict(),
                meta=model_arch_meta(theirs))
    with pytest.raises(ValueError) as e:
        check_weights_fit(model, ckpt, 'r18.pth')
    msg = str(e.value)
    assert 'of another shape' in msg
    assert f'built with {OTHER}' in msg
    # the options that build the checkpoint's network: its code and the
    # neck input channels of its four output stages
    assert (f'model.backbone.arch={R18} '
            'model.neck.in_channels=[64,128,256,512]') in msg
    check_weights_fit(theirs, ckpt, 'r18.pth')


def test_a_forgotten_smnas_code_is_taken_from_the_checkpoint():
    from mmengine.config import Config

    from mmdetnas.utils.arch_meta import fit_arch_to_checkpoint
    theirs = SMDet(R18)
    ckpt = dict(state_dict=theirs.state_dict(),
                meta=model_arch_meta(theirs))

    def cfg():
        return Config(dict(model=dict(
            backbone=dict(type='mmdetnas.SMNASResNet', arch=OTHER,
                          out_indices=(1, 2, 3)),
            neck=dict(type='FPN', in_channels=[64, 128, 256],
                      out_channels=8, num_outs=3))))

    c = cfg()
    msg = fit_arch_to_checkpoint(c, ckpt, 'r18.pth', explicit=False)
    assert R18 in msg and OTHER in msg
    assert c.model.backbone.arch == R18
    assert c.model.neck.in_channels == [128, 256, 512]
    c = cfg()
    with pytest.raises(ValueError) as e:
        fit_arch_to_checkpoint(c, ckpt, 'r18.pth', explicit=True)
    assert (f'model.backbone.arch={R18} model.neck.in_channels='
            '[128,256,512]') in str(e.value)
    assert c.model.backbone.arch == OTHER
