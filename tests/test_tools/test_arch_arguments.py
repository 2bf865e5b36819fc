"""The architecture argument of every tool that takes one: get_flops.py,
export_subnet.py, ranking_correlation.py (one parser: mmdetnas.spaces.arch).

get_flops.py's numbers (:func:`mmdetnas.search.model_cost.config_flops`) are
checked against counts made here: the DetNAS table (``arch_cost``, itself
checked against a forward-hook count in tests/test_search/test_flops.py) and
parameter sums of the built models. The tools' parsers are loaded from their
files (``load_tool``); what they do is run by ``run_tool`` or called in the
library.
"""
import re

import pytest
import torch
from mmengine.config import Config

from mmdetnas.models.backbones import DetNASShuffleNetV2
from mmdetnas.search import arch_cost, export_subnet, ranking_study
from mmdetnas.search.model_cost import config_flops
from mmdetnas.spaces import official_arch, PRESETS
from mmdetnas.utils.setup_env import register_all_modules
from tests.e2e_utils import ROOT, load_tool, run_tool

QS = 'configs/quickstart'
DET_SUPERNET = (
    f'{QS}/'
    f'detnas_supernet_faster-rcnn_shufflenetv2-300m_fpn_quick_neon-trees.py')
SUBNET = (
    f'{QS}/'
    f'detnas_subnet_faster-rcnn_shufflenetv2-300m_fpn_quick_neon-trees.py')
# the quickstart supernet's space: 300M widths, choices 3x3/5x5/7x7
KSPACE = PRESETS['300M-kernel']
IDX = [2, 1, 0, 0, 1, 2, 2, 1, 0, 1, 2, 0, 0, 2, 1, 1, 0, 2, 1, 0]
ARCH = tuple(KSPACE.choices[i] for i in IDX)


@pytest.fixture(scope='module')
def get_flops():
    register_all_modules()
    return config_flops


def _params(module):
    return sum(p.numel() for p in module.parameters())


def _expected_det():
    """Params of the quickstart detector with backbone ARCH, derived from
    the supernet: its neck and heads plus the DetNAS count of the chosen
    blocks (no unchosen block)."""
    from mmdet.registry import MODELS
    cfg = Config.fromfile(f'{ROOT}/{DET_SUPERNET}')
    cfg.model.backbone.init_cfg = None
    supernet = MODELS.build(cfg.model)
    heads = _params(supernet) - _params(supernet.backbone)
    flops, params = arch_cost(KSPACE, ARCH)
    return flops, params, heads + params


# ---------------------------------------------------------- get_flops.py
def test_get_flops_cli_comma_separated_arch():
    """The documented ``--arch 2,1,0,...`` works (it was read as a file
    name) and prints the numbers of that path."""
    out = run_tool([
        'tools/analysis_tools/get_flops.py', DET_SUPERNET, '--arch',
        ','.join(map(str, IDX)), '--shape', '96', '128'
    ]).stdout
    flops, params, model_params = _expected_det()
    assert f'architecture: {list(ARCH)}' in out
    m = re.search(r'backbone FLOPs \(DetNAS convention.*\): ([\d.]+) GMACs',
                  out)
    assert m and m.group(1) == f'{flops / 1e9:.4f}', out
    assert f'backbone params: {params / 1e6:.3f} M' in out
    assert 'whole-model FLOPs at input 1x3x96x128' in out
    assert f'whole-model params: {model_params / 1e6:.3f} M' in out


def test_get_flops_numbers(get_flops):
    cfg = Config.fromfile(f'{ROOT}/{DET_SUPERNET}')
    names = ','.join(ARCH)
    r = get_flops(cfg, names, (96, 128))
    flops, params, model_params = _expected_det()
    assert r['arch'] == list(ARCH)
    assert (r['backbone_flops'], r['backbone_params']) == (flops, params)
    # the subnet's params: the supernet's unchosen blocks are not counted
    assert r['model_params'] == model_params
    assert r['shape'] == (96, 128)
    # the whole model at least does the backbone's convs (at 224x224 the
    # DetNAS count; at a larger input strictly more)
    big = get_flops(cfg, names, (224, 224))
    assert big['model_flops'] > flops
    assert big['model_flops'] > r['model_flops'] > 0
    # the config is left as it was (a supernet)
    assert cfg.model.backbone.get('arch') is None
    # the same path in any form gives the same numbers
    same = get_flops(cfg, IDX, (96, 128))
    assert same == r


def test_get_flops_subnet_config(get_flops):
    """A fixed-arch config needs no --arch; its backbone is counted as
    built (independent of the table: a plain parameter sum)."""
    from mmdet.registry import MODELS
    cfg = Config.fromfile(f'{ROOT}/{SUBNET}')
    space, arch = official_arch('COCO-FPN-300M')
    r = get_flops(cfg, None, (64, 64))
    assert r['arch'] == list(arch)
    assert r['backbone_flops'] == arch_cost(space, arch)[0]
    backbone = DetNASShuffleNetV2(arch=arch)
    assert r['backbone_params'] == _params(backbone)
    cfg.model.backbone.init_cfg = None
    assert r['model_params'] == _params(MODELS.build(cfg.model))
    assert get_flops(cfg, 'COCO-FPN-300M', (64, 64)) == r
    with pytest.raises(ValueError, match='differs from the fixed arch'):
        get_flops(cfg, 'COCO-RetinaNet-300M', (64, 64))


def test_get_flops_bad_arch(get_flops, capsys):
    for bad in ('not-an-arch', '0,,1'):
        with pytest.raises(SystemExit) as e:
            load_tool('tools/analysis_tools/get_flops.py').parse_args(
                [DET_SUPERNET, '--arch', bad])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert 'argument --arch' in err and repr(bad) in err
        assert 'comma-separated' in err  # what was expected
    cfg = Config.fromfile(f'{ROOT}/{DET_SUPERNET}')
    with pytest.raises(ValueError) as e:
        get_flops(cfg, '0,1,2', (64, 64))
    assert "'0,1,2'" in str(e.value) and '20' in str(e.value)
    # shuffle_xception is no choice of the 300M-kernel space
    bad = ','.join(['shuffle_xception'] + list(ARCH[1:]))
    with pytest.raises(ValueError) as e:
        get_flops(cfg, bad, (64, 64))
    assert 'layer 0' in str(e.value) and 'shuffle_xception' in str(e.value)
    with pytest.raises(ValueError, match='pass --arch'):
        get_flops(cfg, None, (64, 64))


# ------------------------------------------------------ export_subnet.py
def test_export_subnet_comma_separated_arch(tmp_path, capsys):
    tool = load_tool('tools/model_converters/export_subnet.py')
    supernet = DetNASShuffleNetV2()
    ckpt = tmp_path / 'supernet.pth'
    torch.save(dict(state_dict=supernet.state_dict()), ckpt)
    space, arch = official_arch('COCO-FPN-300M')
    idx = [space.choices.index(c) for c in arch]
    out = tmp_path / 'sub.pth'
    run_tool(['tools/model_converters/export_subnet.py', str(ckpt),
              ','.join(map(str, idx)), str(out), '--prefix', ''])
    saved = torch.load(out, map_location='cpu', weights_only=False)
    assert saved['meta']['arch'] == list(arch)
    DetNASShuffleNetV2(arch=arch).load_state_dict(saved['state_dict'])
    with pytest.raises(SystemExit) as e:
        tool.parse_args([str(ckpt), 'not-an-arch', str(out)])
    assert e.value.code == 2
    assert "'not-an-arch'" in capsys.readouterr().err
    # --search-space: the list is read against that space (40 layers)
    args = tool.parse_args([str(ckpt), ','.join(map(str, idx)), str(out),
                            '--prefix', '', '--search-space', '1.3G'])
    with pytest.raises(ValueError, match='40'):
        export_subnet(args.checkpoint, args.arch, args.out, args.prefix,
                      args.search_space)


# ------------------------------------------------ ranking_correlation.py
def test_ranking_tool_arch_arguments(capsys):
    tool = load_tool('tools/analysis_tools/ranking_correlation.py')
    space = PRESETS['300M']
    retina = official_arch('COCO-RetinaNet-300M')[1]
    text = ','.join(str(space.choices.index(c)) for c in retina)
    base = ['search.py', 'super.pth', '--subnet-config', 'sub.py',
            '--work-dir', 'wd']
    for flag in ('--arch', '--arch-file'):
        args = tool.parse_args(base + [flag, 'COCO-FPN-300M', text])
        assert args.arch_file == ['COCO-FPN-300M', text]
        assert ranking_study.select_archs(args, None, space) == [
            official_arch('COCO-FPN-300M')[1], retina]
    with pytest.raises(SystemExit) as e:
        tool.parse_args(base + ['--arch', 'COCO-FPN-300M', 'nope'])
    assert e.value.code == 2
    assert "'nope'" in capsys.readouterr().err
