"""export_subnet.py and detnas_to_mmdetnas.py given bad inputs, as a careless
user would (issue 22, probes 23-25 and 27 of the bad-input table).

The supernet is the quickstart's kind: search space '300M-kernel' (choices
3x3/5x5/7x7) with kernel weight sharing, so each layer holds only its 7x7
block; once with the meta the toolkit's trainings write (search space
recorded), once as an older checkpoint without it (space told from its
keys)."""
import os

import pytest
import torch

from mmdetnas.models import convert_reference_file
from mmdetnas.models.backbones import DetNASShuffleNetV2
from mmdetnas.search import export_subnet
from mmdetnas.spaces import PRESETS, save_arch_file
from tests.e2e_utils import load_tool, run_tool

KSPACE = PRESETS['300M-kernel']


@pytest.fixture(params=['meta', 'keys'])
def supernet(request, tmp_path):
    torch.manual_seed(0)
    net = DetNASShuffleNetV2(search_space='300M-kernel',
                             weight_sharing='kernel')
    state = {'backbone.' + k: v for k, v in net.state_dict().items()}
    meta = dict(iter=200)
    if request.param == 'meta':
        meta.update(arch=None, search_space=KSPACE.to_dict())
    path = tmp_path / 'supernet.pth'
    torch.save(dict(state_dict=state, meta=meta), path)
    return str(path)


def refused(tmp_path, *args):
    """Run what export_subnet.py runs for its command line ``args``
    (its parser, then :func:`export_subnet`); returns the error, asserting
    that no output was written."""
    out = tmp_path / 'out' / 'subnet.pth'
    a = load_tool('tools/model_converters/export_subnet.py').parse_args(
        [*args[:2], str(out), *args[2:]])
    with pytest.raises(ValueError) as e:
        export_subnet(a.checkpoint, a.arch, a.out, a.prefix, a.search_space)
    assert not (tmp_path / 'out').exists()
    return str(e.value)


def test_an_index_out_of_the_checkpoints_range(supernet, tmp_path):
    """Probe 23: index 3 was read in the '300M' space (xception) and
    reported as "no weights for layer(s) [0] (shuffle_xception)"."""
    msg = refused(tmp_path, supernet, '3' + ',0' * 19)
    assert 'layer 0: choice index 3 out of range' in msg
    assert "search space '300M-kernel' has 3 choices" in msg
    assert 'expected 0..2' in msg and 'no weights' not in msg


def test_an_arch_file_of_another_space(supernet, tmp_path):
    """Probe 24: a 1.3G file was reported as missing layers."""
    arch = save_arch_file(str(tmp_path / 'big.yaml'), ['shuffle_3x3'] * 40,
                          '1.3G')
    msg = refused(tmp_path, supernet, arch)
    assert 'another search space' in msg and arch in msg
    assert 'file: 40 layers / 1.3G' in msg
    assert 'checkpoint: 20 layers / 300M-kernel' in msg
    # an official architecture of the 300M space (with xception)
    msg = refused(tmp_path, supernet, 'COCO-FPN-300M')
    assert 'another search space (official name: 20 layers / 300M, ' \
        'checkpoint: 20 layers / 300M-kernel)' in msg


def test_a_list_of_the_wrong_length_names_the_checkpoints_space(
        supernet, tmp_path):
    """Probe 25: the message named the default space '300M'."""
    msg = refused(tmp_path, supernet, '0,0,0')
    assert "architecture has 3 layers but search space '300M-kernel' " \
        'has 20' in msg
    assert "'300M'" not in msg
    # a --search-space that is not the checkpoint's
    msg = refused(tmp_path, supernet, '0' + ',0' * 19, '--search-space',
                  '300M')
    assert "'300M'" in msg and '300M-kernel' in msg
    assert 'is not the search space of checkpoint' in msg


def test_a_valid_arch_of_the_checkpoints_space_exports(supernet, tmp_path):
    idx = [2, 1, 0, 0] * 5
    arch = tuple(KSPACE.choices[i] for i in idx)
    out = tmp_path / 'sub.pth'
    meta = export_subnet(supernet, ','.join(map(str, idx)), str(out))
    assert meta['arch'] == list(arch)
    assert meta['search_space']['name'] == '300M-kernel'
    saved = torch.load(out, map_location='cpu', weights_only=False)
    sub = DetNASShuffleNetV2(search_space='300M-kernel', arch=arch)
    sub.load_state_dict({k[len('backbone.'):]: v
                         for k, v in saved['state_dict'].items()})


def test_a_custom_space_without_meta_needs_it_named(tmp_path):
    """No meta and no preset fits the keys: the space is asked for, not
    taken to be '300M'."""
    custom = dict(name='tiny', stem_channels=8, stage_channels=[16, 32, 64,
                                                                128],
                  stage_blocks=[1, 1, 2, 1], last_channels=256)
    net = DetNASShuffleNetV2(search_space=custom)
    path = str(tmp_path / 'tiny.pth')
    torch.save(dict(state_dict={'backbone.' + k: v
                                for k, v in net.state_dict().items()}),
               path)
    msg = refused(tmp_path, path, '0,1,2,3,0')
    assert 'cannot tell the search space' in msg and '5 layers' in msg
    assert '--search-space' in msg
    meta = export_subnet(path, [0, 1, 2, 3, 0], str(tmp_path / 's.pth'),
                         search_space=custom)
    assert meta['search_space']['name'] == 'tiny'


def test_the_export_command_exits_with_the_error(supernet, tmp_path):
    out = run_tool(['tools/model_converters/export_subnet.py', supernet,
                    '3' + ',0' * 19, str(tmp_path / 'o.pth')], check=False)
    assert out.returncode == 1
    assert "search space '300M-kernel' has 3 choices" in out.stderr
    assert os.listdir(tmp_path) == ['supernet.pth']


# ------------------------------------------------------- detnas_to_mmdetnas
def test_a_torch_file_holding_a_tensor(tmp_path):
    """Probe 27: AttributeError: 'Tensor' object has no attribute
    'items'."""
    src = tmp_path / 'tensor.pth'
    torch.save(torch.zeros(3, 4), src)
    dst = tmp_path / 'out.pth'
    with pytest.raises(ValueError) as e:
        convert_reference_file(str(src), str(dst))
    msg = str(e.value)
    assert str(src) in msg and 'Tensor of shape (3, 4)' in msg
    assert 'expected a dict of named tensors' in msg
    assert not dst.exists()
    # the same under 'state_dict' of a dict, and from the command line
    torch.save(dict(state_dict=torch.zeros(2)), src)
    out = run_tool(['tools/model_converters/detnas_to_mmdetnas.py',
                    str(src), str(dst)], check=False)
    assert out.returncode == 1
    assert 'AttributeError' not in out.stderr
    assert 'Traceback' not in out.stderr  # one line
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith('detnas_to_mmdetnas.py: error: ')
    assert 'holds no state dict' in last and str(src) in last
    assert not dst.exists()


def test_a_text_file_ends_in_one_line(tmp_path):
    """Probe 26: the converter given a text file names it, in one line."""
    src = tmp_path / 'notes.txt'
    src.write_text('not a checkpoint\n')
    out = run_tool(['tools/model_converters/detnas_to_mmdetnas.py',
                    str(src), str(tmp_path / 'out.pth')], check=False)
    assert out.returncode == 1
    assert 'Traceback' not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith('detnas_to_mmdetnas.py: error: cannot read '
                           f"checkpoint '{src}' (17 bytes)"), last
    assert 'not a torch checkpoint' in last
    assert not (tmp_path / 'out.pth').exists()
