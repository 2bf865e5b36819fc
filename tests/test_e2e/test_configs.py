"""Every config builds; a searched subnet plugs into stock mmdet configs."""
import glob
import os.path as osp
from argparse import Namespace

import pytest
import torch
from mmengine.config import Config

from mmdetnas.apis.tool_setup import prepare_cfg
from mmdetnas.models.backbones import (DetNASShuffleNetV2,
                                       slice_supernet_state_dict)
from mmdetnas.spaces import official_arch, OFFICIAL_ARCHS, save_arch_file
from mmdetnas.utils.setup_env import register_all_modules
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
    from mmengine.registry import DefaultScope
    cfg = Config.fromfile(path)
    # built under the config's default scope, as the Runner builds it (not
    # under whatever scope an earlier test left)
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmdet')):
        model = MODELS.build(cfg.model)
    algorithm, stage = osp.basename(path).split('_')[:2]
    assert algorithm in ('detnas', 'smnas'), path
    if algorithm == 'smnas':
        check_smnas_config(cfg, model, stage)
        return
    backbones = [
        m for m in model.modules() if isinstance(m, DetNASShuffleNetV2)
    ]
    assert len(backbones) == 1
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


def gn_ws_everywhere(model):
    """The from-scratch recipe's model checks: no BatchNorm anywhere, every
    norm a GroupNorm, every conv of backbone and neck and every conv
    followed by a norm in the heads a ConvWS (mmdet's RPNHead has no norm
    option, so its convs may stay plain), all parameters trainable."""
    from mmcv.cnn import ConvModule
    from mmcv.cnn.bricks.conv_ws import ConvWS2d
    norms = [m for m in model.modules()
             if isinstance(m, (torch.nn.GroupNorm,
                               torch.nn.modules.batchnorm._NormBase))]
    assert norms and all(isinstance(m, torch.nn.GroupNorm) for m in norms)
    for part in (model.backbone, model.neck):
        convs = [m for m in part.modules() if isinstance(m, torch.nn.Conv2d)]
        assert convs and all(isinstance(m, ConvWS2d) for m in convs)
    heads = [m for n, m in model.named_children()
             if n not in ('backbone', 'neck', 'data_preprocessor')]
    normed = [m for h in heads for m in h.modules()
              if isinstance(m, ConvModule) and m.with_norm]
    assert normed and all(isinstance(m.conv, ConvWS2d) for m in normed)
    assert all(p.requires_grad for p in model.parameters())


def no_decay_on_norms(model, cfg):
    """The optimizer built from the config gives norm weights and biases
    no weight decay and conv weights the configured decay."""
    from mmengine.optim import build_optim_wrapper
    wd = cfg.optim_wrapper.optimizer.weight_decay
    assert wd > 0
    groups = build_optim_wrapper(model, cfg.optim_wrapper).param_groups
    decay = {id(p): g['weight_decay'] for g in groups for p in g['params']}
    for m in model.modules():
        if isinstance(m, torch.nn.GroupNorm):
            assert decay[id(m.weight)] == 0 and decay[id(m.bias)] == 0
        elif isinstance(m, torch.nn.Conv2d):
            assert decay[id(m.weight)] == wd


def check_structural_space(cfg, n=4):
    """A few structures of the config's space build, and the neck's
    ``in_channels`` equal the backbone's real output channels."""
    import random

    from mmdet.registry import MODELS
    from mmdetnas.spaces.structural_space import StructuralSearchSpace
    space = StructuralSearchSpace.from_cfg(cfg.structural_space)
    rng = random.Random(0)
    for _ in range(n):
        c = space.build_config(cfg, space.random(rng))
        c.model.backbone.init_cfg = None
        model = MODELS.build(c.model).eval()
        with torch.no_grad():
            feats = model.backbone(torch.zeros(1, 3, 64, 64))
        assert [f.shape[1] for f in feats] == list(c.model.neck.in_channels)


def check_modular_space(cfg, n=3):
    """A few codes of the config's modular space build as detectors whose
    neck takes the backbone's real output channels, and the init codes are
    inside the space."""
    import random

    from mmdet.registry import MODELS
    from mmdetnas.engine.loops import ModularSearchLoop
    from mmdetnas.engine.loops.smnas_search_loops import \
        candidate_base_config
    base = candidate_base_config(cfg, cfg.train_cfg.candidate_train_cfg)
    space = ModularSearchLoop.build_space(cfg.modular_space, base)
    for code in cfg.train_cfg.get('init', ()):
        space.validate(code)
    rng = random.Random(0)
    for _ in range(n):
        built = space.build_config(base, space.random(rng))
        model = MODELS.build(built.model).eval()
        with torch.no_grad():
            feats = model.backbone(torch.zeros(1, 3, 64, 64))
        assert [f.shape[1] for f in feats] == list(
            built.model.neck.in_channels)


def check_smnas_config(cfg, model, stage):
    """SM-NAS configs train from scratch (SM-NAS Sec. 3): the structural
    search's base detector and the scratch recipe's detectors alike."""
    from mmdetnas.models.backbones import SMNASResNet
    assert stage in ('structural', 'scratch', 'modular')
    if stage == 'structural':
        check_structural_space(cfg)
        if 'coco' in cfg.filename:  # the original space: ImageNet weights
            return
    if stage in ('scratch', 'modular'):
        assert isinstance(model.backbone, SMNASResNet)
        assert list(cfg.model.neck.in_channels) == list(
            model.backbone.out_channels)
    if stage == 'modular':
        check_modular_space(cfg)
    if '-bn_' in osp.basename(cfg.filename):
        # the BatchNorm control of the from-scratch recipe: BN where the
        # recipe has GN, plain convs, still no pre-trained weights
        assert not any(isinstance(m, torch.nn.GroupNorm)
                       for m in model.modules())
        assert any(isinstance(m, torch.nn.BatchNorm2d)
                   for m in model.backbone.modules())
        assert any(isinstance(m, torch.nn.BatchNorm2d)
                   for m in model.neck.modules())
        assert cfg.model.backbone.init_cfg is None
        return
    # no pre-trained weights anywhere, no frozen stages
    assert cfg.model.backbone.init_cfg is None
    assert 'Pretrained' not in cfg.pretty_text
    assert cfg.get('load_from') is None
    assert cfg.model.backbone.frozen_stages == -1
    gn_ws_everywhere(model)
    no_decay_on_norms(model, cfg)


RECIPE = osp.join(ROOT, 'configs/_base_/recipes/scratch_gn-ws.py')
RECIPE_USES = [
    ('retinanet/retinanet_r50_fpn_1x_coco.py',
     'bbox_head={{_base_.scratch_dense_head}}'),
    ('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
     'bbox_head={{_base_.scratch_dense_head}}'),
    ('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
     'roi_head=dict(bbox_head={{_base_.scratch_roi_bbox_head}})'),
    ('mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
     'roi_head=dict(bbox_head={{_base_.scratch_roi_bbox_head}}, '
     'mask_head={{_base_.scratch_mask_head}})'),
]


@pytest.mark.parametrize('name,heads', RECIPE_USES,
                         ids=[r[0] for r in RECIPE_USES])
def test_scratch_recipe_applies_to_stock_mmdet_detectors(name, heads,
                                                         tmp_path):
    """The _base_ fragment on its own turns mmdet's own configs into
    from-scratch GN + WS ones, as its header shows."""
    from mmdet.registry import MODELS
    path = tmp_path / 'scratch.py'
    path.write_text(
        f"_base_ = ['mmdet::{name}', {RECIPE!r}]\n"
        'model = dict(backbone={{_base_.scratch_backbone}}, '
        f'neck={{{{_base_.scratch_neck}}}}, {heads})\n'
        'optim_wrapper = {{_base_.scratch_optim_wrapper}}\n')
    cfg = Config.fromfile(str(path))
    assert cfg.model.backbone.init_cfg is None
    assert cfg.model.backbone.frozen_stages == -1
    assert cfg.model.backbone.norm_eval is False
    model = MODELS.build(cfg.model)
    model.init_weights()
    gn_ws_everywhere(model)
    no_decay_on_norms(model, cfg)


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
