"""Every config builds; a searched subnet plugs into stock mmdet configs."""
import glob
import os.path as osp
from argparse import Namespace

import pytest
import torch
from mmengine.config import Config

from mmdetnas.models.backbones import (DetNASShuffleNetV2,
                                       slice_supernet_state_dict)
from mmdetnas.search import OFFICIAL_ARCHS, official_arch, save_arch_file
from mmdetnas.utils.setup_env import prepare_cfg, register_all_modules
from tests.e2e_utils import ROOT

CONFIGS = sorted(
    p for p in glob.glob(
        osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p and not osp.basename(p).startswith('neon-trees'))


@pytest.fixture(scope='module', autouse=True)
def registered():
    register_all_modules()


def test_config_folder_is_not_empty():
    names = {osp.basename(p) for p in CONFIGS}
    for stage in ('supernet', 'search', 'subnet'):
        assert any(f'detnas_{stage}_' in n for n in names), stage
    assert len(CONFIGS) >= 20


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_every_config_builds(path):
    from mmdet.registry import MODELS
    cfg = Config.fromfile(path)
    model = MODELS.build(cfg.model)
    backbones = [
        m for m in model.modules() if isinstance(m, DetNASShuffleNetV2)
    ]
    assert len(backbones) == 1
    stage = osp.basename(path).split('_')[1]
    # supernet and search configs search; subnet configs are fixed
    assert backbones[0].is_supernet == (stage in ('supernet', 'search'))
    if stage == 'search':
        assert cfg.train_cfg.type == 'mmdetnas.EvolutionSearchLoop'
        assert cfg.custom_hooks == []
    if stage == 'supernet':
        assert any(h.type == 'mmdetnas.PathSamplerHook'
                   for h in cfg.custom_hooks)
        assert cfg.find_unused_parameters
    # the reference trains fixed networks with BN momentum 0.01 (its
    # DistributedSyncBN default) and supernets with 0.1; the quickstart's
    # short schedules keep 0.1 throughout
    bn_momenta = {m.momentum for m in model.modules()
                  if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
    fixed = stage in ('subnet', 'official')
    assert bn_momenta == ({0.01} if fixed and '/detnas/' in path else {0.1})
    neck = cfg.model.get('neck')
    if neck is not None:
        assert list(neck.in_channels) == list(
            backbones[0].search_space.stage_channels)


def test_sync_bn_becomes_bn_only_where_it_cannot_work(tmp_path):
    path = osp.join(
        ROOT, 'configs/detnas/'
        'detnas_supernet_faster-rcnn_shufflenetv2-300m_fpn_1x_coco.py')
    args = Namespace(
        config=path,
        launcher='none',
        cfg_options=None,
        work_dir=str(tmp_path),
        amp=False)
    cfg = prepare_cfg(args)
    text = cfg.pretty_text
    assert 'SyncBN' not in text and "type='BN'" in text
    cfg = Config.fromfile(path)
    assert cfg.model.backbone.norm_cfg.type == 'SyncBN'


STOCK = [
    ('retinanet/retinanet_r50_fpn_1x_coco.py', None),
    ('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', None),
    ('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', None),
    ('atss/atss_r50_fpn_1x_coco.py', None),
    ('mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', None),
]


@pytest.mark.parametrize('name,_', STOCK, ids=[s[0] for s in STOCK])
def test_exported_subnet_in_stock_mmdet_configs(name, _, tmp_path):
    """Only ``backbone`` and the neck's ``in_channels`` are overridden in
    mmdet's own config; weights sliced from a supernet load strictly."""
    import mmdet
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    space, arch = official_arch('COCO-FPN-300M')
    arch_file = save_arch_file(str(tmp_path / 'arch.yaml'), arch, space)
    supernet = DetNASShuffleNetV2(search_space='300M')
    sliced = slice_supernet_state_dict(
        {
            'backbone.' + k: v
            for k, v in supernet.state_dict().items()
        },
        arch,
        prefix='backbone.')
    ckpt = str(tmp_path / 'subnet.pth')
    torch.save(dict(state_dict=sliced), ckpt)

    cfg = Config.fromfile(
        osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', name))
    cfg.model.backbone = dict(
        type='mmdetnas.DetNASShuffleNetV2',
        arch=arch_file,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=ckpt, prefix='backbone.'))
    cfg.model.neck.in_channels = list(space.stage_channels)
    model = MODELS.build(cfg.model)
    model.init_weights()
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, sliced['backbone.' + k]), k
    model.eval()
    x = torch.rand(1, 3, 96, 128) * 255
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(96, 128),
            ori_shape=(96, 128),
            pad_shape=(96, 128),
            batch_input_shape=(96, 128),
            scale_factor=(1.0, 1.0)))
    with torch.no_grad():
        data = model.data_preprocessor(
            dict(inputs=[x[0].byte()], data_samples=[sample]), False)
        results = model(**data, mode='predict')
    assert len(results) == 1 and hasattr(results[0], 'pred_instances')


def test_official_names_all_resolve():
    for name in OFFICIAL_ARCHS:
        space, arch = official_arch(name)
        assert len(arch) == space.num_layers
