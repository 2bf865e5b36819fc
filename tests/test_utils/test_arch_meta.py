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
