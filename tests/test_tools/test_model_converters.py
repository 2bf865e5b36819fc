"""Tests of tools/model_converters: export_subnet.py and
detnas_to_mmdetnas.py, through the library calls they make
(:func:`mmdetnas.search.export_subnet`,
:func:`mmdetnas.models.convert_reference_file`) and run as a user runs
them."""
import copy
import json
import os.path as osp
import random

import pytest
import torch

from mmdetnas.models import convert_reference_file
from mmdetnas.models.backbones import DetNASShuffleNetV2
from mmdetnas.search import arch_cost, export_subnet
from mmdetnas.spaces import (arch_to_indices, load_arch_file, OFFICIAL_ARCHS,
                             PRESETS)
from tests.e2e_utils import ROOT, run_tool

# the reference key layout (names and shapes of the official backbones and
# the 300M supernet, read from megvii-model/DetNAS checkpoints)
KEYS_JSON = osp.join(ROOT, 'tests', 'data',
                     'detnas_official_backbone_keys.json')
NAMES = ('shuffle_3x3', 'shuffle_5x5', 'shuffle_7x7', 'shuffle_xception')


def _read(path):
    return torch.load(path, map_location='cpu', weights_only=False)


# ------------------------------------------------------------ export_subnet
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


def test_export_subnet(tmp_path):
    src = str(tmp_path / 'supernet.pth')
    dst = str(tmp_path / 'out' / 'subnet.pth')
    state = _supernet_checkpoint(src)
    rng = random.Random(0)
    idx = [rng.randrange(4) for _ in range(20)]
    arch = tuple(NAMES[i] for i in idx)
    proc = run_tool(['tools/model_converters/export_subnet.py', src,
                     ','.join(map(str, idx)), dst])
    assert 'exported subnet' in proc.stdout

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


def test_export_official_name_and_names(tmp_path):
    src = str(tmp_path / 'supernet.pth')
    _supernet_checkpoint(src)
    dst = str(tmp_path / 'fpn.pth')
    export_subnet(src, 'COCO-FPN-300M', dst)
    arch = tuple(NAMES[i] for i in OFFICIAL_ARCHS['COCO-FPN-300M'][1])
    assert _read(dst)['meta']['arch'] == list(arch)
    dst2 = str(tmp_path / 'names.pth')
    export_subnet(src, ','.join(arch), dst2)
    a, b = _read(dst)['state_dict'], _read(dst2)['state_dict']
    assert set(a) == set(b)


def test_export_missing_block(tmp_path):
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
        export_subnet(src, ','.join(arch), str(tmp_path / 'x.pth'))
    assert not osp.exists(tmp_path / 'x.pth')
    # another prefix than the checkpoint's: nothing found
    _supernet_checkpoint(src)
    with pytest.raises(KeyError):
        export_subnet(src, ','.join(arch), str(tmp_path / 'y.pth'),
                      prefix='model.backbone.')


# ------------------------------------------------------- detnas_to_mmdetnas
REFERENCE_PREFIX = 'module.backbone.body.'


@pytest.fixture(scope='module')
def reference_keys():
    with open(KEYS_JSON) as f:
        return json.load(f)


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
def test_convert_reference_layouts(tmp_path, reference_keys, entry):
    layout = reference_keys[entry]
    ref = _synthesize(layout)
    src, dst = str(tmp_path / 'ref.pth'), str(tmp_path / 'out' / 'conv.pth')
    torch.save(
        dict(state_dict={
            REFERENCE_PREFIX + k: v
            for k, v in ref.items()
        }), src)
    res, _ = convert_reference_file(src, dst)
    out, space, arch = res.backbone, res.space, res.arch
    saved = _read(dst)['state_dict']
    # every reference tensor placed, plus the shuffle-order record
    assert set(saved) == set(out) | {'shuffle_order'}
    assert len(out) == len(ref)
    assert _read(dst)['meta']['shuffle_order'] == (
        'transpose' if entry.endswith('-search') else 'interleave')
    saved.pop('shuffle_order')

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


def test_convert_documented_mapping(tmp_path, reference_keys):
    ref = _synthesize(reference_keys['COCO-FPN-300M'], seed=1)
    src, dst = str(tmp_path / 'ref.pth'), str(tmp_path / 'conv.pth')
    torch.save({REFERENCE_PREFIX + k: v for k, v in ref.items()}, src)
    convert_reference_file(src, dst, prefix='backbone.')
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


def test_convert_unknown_key(tmp_path, reference_keys):
    ref = _synthesize(reference_keys['COCO-FPN-300M'])
    src = str(tmp_path / 'ref.pth')
    for extra in ('features.0.conv.0.interstellar1a_mystery_conv.weight',
                  'head.fc.weight'):
        state = {REFERENCE_PREFIX + k: v for k, v in ref.items()}
        state[REFERENCE_PREFIX + extra] = torch.zeros(2)
        torch.save(dict(state_dict=state), src)
        with pytest.raises(KeyError):
            convert_reference_file(src, str(tmp_path / 'x.pth'))
        assert not osp.exists(tmp_path / 'x.pth')


def test_convert_missing_key(tmp_path, reference_keys):
    ref = _synthesize(reference_keys['COCO-FPN-300M'])
    ref.pop('features.5.conv.1.interstellar2b_shufflenet_5x5_branch2b.weight')
    src = str(tmp_path / 'ref.pth')
    torch.save(ref, src)
    with pytest.raises(RuntimeError, match='Missing'):
        convert_reference_file(src, str(tmp_path / 'x.pth'))


# ------------------------------------------ whole reference checkpoints
HEAD = 256  # FPN / head width of the reference detectors
STAGES_300M = (64, 160, 320, 640)


def _bn(prefix, c, g):
    return {
        f'{prefix}.weight': torch.rand(c, generator=g) + 0.5,
        f'{prefix}.bias': torch.randn(c, generator=g),
        f'{prefix}.running_mean': torch.randn(c, generator=g),
        f'{prefix}.running_var': torch.rand(c, generator=g) + 0.5,
        f'{prefix}.num_batches_tracked': torch.tensor(7),
    }


def _conv(prefix, cout, cin, k, g):
    return {
        f'{prefix}.weight': torch.randn(cout, cin, k, k, generator=g) * 0.1,
        f'{prefix}.bias': torch.randn(cout, generator=g),
    }


def _reference_faster_rcnn(layout, g, num_classes=81):
    """A maskrcnn-benchmark Faster R-CNN FPN state dict as the DetNAS
    reference saves it (e2e_faster_rcnn_DETNAS_COCO_FPN_300M_1x.yaml):
    FPN convs with bias + SyncBN (``fpn_inner{i}.0/1``), RPN head, 4conv
    (bias + SyncBN, ReLU: indices 0,1,2 per conv) + fc6 box head."""
    state = {'module.backbone.body.' + k: v
             for k, v in _synthesize(layout).items()}
    for i, c in enumerate(STAGES_300M, 1):
        state.update(_conv(f'backbone.fpn.fpn_inner{i}.0', HEAD, c, 1, g))
        state.update(_bn(f'backbone.fpn.fpn_inner{i}.1', HEAD, g))
        state.update(_conv(f'backbone.fpn.fpn_layer{i}.0', HEAD, HEAD, 3, g))
        state.update(_bn(f'backbone.fpn.fpn_layer{i}.1', HEAD, g))
    state.update(_conv('rpn.head.conv', HEAD, HEAD, 3, g))
    state.update(_conv('rpn.head.cls_logits', 3, HEAD, 1, g))
    state.update(_conv('rpn.head.bbox_pred', 12, HEAD, 1, g))
    for lvl in range(5):
        state[f'rpn.anchor_generator.cell_anchors.{lvl}'] = torch.randn(3, 4)
    fe = 'roi_heads.box.feature_extractor'
    for j in range(4):
        state.update(_conv(f'{fe}.xconvs.{3 * j}', HEAD, HEAD, 3, g))
        state.update(_bn(f'{fe}.xconvs.{3 * j + 1}', HEAD, g))
    state[f'{fe}.fc6.weight'] = torch.randn(1024, HEAD * 49, generator=g)
    state[f'{fe}.fc6.bias'] = torch.randn(1024, generator=g)
    pred = 'roi_heads.box.predictor'
    state[f'{pred}.cls_score.weight'] = torch.randn(num_classes, 1024,
                                                    generator=g)
    state[f'{pred}.cls_score.bias'] = torch.randn(num_classes, generator=g)
    state[f'{pred}.bbox_pred.weight'] = torch.randn(num_classes * 4, 1024,
                                                    generator=g)
    state[f'{pred}.bbox_pred.bias'] = torch.randn(num_classes * 4,
                                                  generator=g)
    return {k if k.startswith('module.') else 'module.' + k: v
            for k, v in state.items()}


def _build(config):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmdet.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, config))
    init_default_scope('mmdet')
    return MODELS.build(cfg.model)


def _conv_bn_reference(conv, bn, x):
    """conv (with bias) then BN in eval mode, written out by hand."""
    y = torch.nn.functional.conv2d(x, conv['weight'], conv['bias'],
                                   padding=conv['weight'].shape[-1] // 2)
    shape = (1, -1, 1, 1)
    return ((y - bn['running_mean'].view(shape)) /
            torch.sqrt(bn['running_var'].view(shape) + 1e-5) *
            bn['weight'].view(shape) + bn['bias'].view(shape))


def _sub(state, prefix):
    return {k[len(prefix):]: v for k, v in state.items()
            if k.startswith(prefix) and '.' not in k[len(prefix):]}


OFFICIAL_FRCNN = 'configs/detnas/detnas_official_faster-rcnn_shufflenetv2-' \
    '300m_fpn_1x_coco.py'
OFFICIAL_RETINA = 'configs/detnas/detnas_official_retinanet_shufflenetv2-' \
    '300m_fpn_1x_coco.py'


def test_convert_reference_faster_rcnn(tmp_path, reference_keys):
    g = torch.Generator().manual_seed(3)
    ref = _reference_faster_rcnn(reference_keys['COCO-FPN-300M'], g)
    src, dst = str(tmp_path / 'ref.pth'), str(tmp_path / 'det.pth')
    torch.save({'model': ref}, src)  # what the reference saves
    _, printed = convert_reference_file(src, dst, config=OFFICIAL_FRCNN)
    assert 'whole detector' in printed and 'anchor_generator' in printed
    ckpt = _read(dst)
    meta, saved = ckpt['meta'], ckpt['state_dict']
    assert meta['shuffle_order'] == 'interleave'
    assert sorted(meta['dropped']) == sorted(
        f'rpn.anchor_generator.cell_anchors.{i}' for i in range(5))

    model = _build(OFFICIAL_FRCNN)
    model.load_state_dict(saved, strict=True)
    model.eval()
    r = lambda k: ref['module.' + k]  # noqa: E731
    # FPN lateral 0 and output conv 3: conv + bias + BN (reference) equals
    # mmdet's bias-free ConvModule with the bias folded into its BN
    for src_name, module in (('fpn_inner1', model.neck.lateral_convs[0]),
                             ('fpn_layer4', model.neck.fpn_convs[3])):
        conv = _sub(ref, f'module.backbone.fpn.{src_name}.0.')
        bn = _sub(ref, f'module.backbone.fpn.{src_name}.1.')
        x = torch.randn(2, conv['weight'].shape[1], 6, 6, generator=g)
        # in float64, with float32's tolerances: what is compared is the
        # converted (float32) weights, not the two float32 convolutions'
        # summation orders (which differed by 5e-5 on one install)
        with torch.no_grad():
            torch.testing.assert_close(
                copy.deepcopy(module).double()(x.double()),
                _conv_bn_reference({k: v.double() for k, v in conv.items()},
                                   {k: v.double() for k, v in bn.items()},
                                   x.double()), rtol=1.3e-6, atol=1e-5)
    # box head conv 2 (xconvs.6/7, then ReLU)
    fe = 'module.roi_heads.box.feature_extractor'
    x = torch.randn(2, HEAD, 7, 7, generator=g).double()
    with torch.no_grad():
        torch.testing.assert_close(
            copy.deepcopy(model.roi_head.bbox_head.shared_convs[2]).double()(
                x),
            _conv_bn_reference(
                {k: v.double() for k, v in
                 _sub(ref, f'{fe}.xconvs.6.').items()},
                {k: v.double() for k, v in
                 _sub(ref, f'{fe}.xconvs.7.').items()}, x).relu(),
            rtol=1.3e-6, atol=1e-5)
    # RPN head and fc6: copied
    assert torch.equal(saved['rpn_head.rpn_cls.weight'],
                       r('rpn.head.cls_logits.weight'))
    assert torch.equal(saved['rpn_head.rpn_conv.bias'],
                       r('rpn.head.conv.bias'))
    assert torch.equal(saved['roi_head.bbox_head.shared_fcs.0.weight'],
                       r('roi_heads.box.feature_extractor.fc6.weight'))
    # predictor: maskrcnn-benchmark class c+1 (0 = background) is mmdet
    # class c (background last); regression rows of the background dropped
    feat = torch.randn(5, 1024, generator=g)
    pred = 'roi_heads.box.predictor'
    ref_logits = feat @ r(f'{pred}.cls_score.weight').T + r(
        f'{pred}.cls_score.bias')
    ref_deltas = feat @ r(f'{pred}.bbox_pred.weight').T + r(
        f'{pred}.bbox_pred.bias')
    with torch.no_grad():
        logits = model.roi_head.bbox_head.fc_cls(feat)
        deltas = model.roi_head.bbox_head.fc_reg(feat)
    assert logits.shape == (5, 81) and deltas.shape == (5, 320)
    torch.testing.assert_close(logits[:, :80], ref_logits[:, 1:])
    torch.testing.assert_close(logits[:, 80], ref_logits[:, 0])
    torch.testing.assert_close(deltas, ref_deltas[:, 4:])

    # --backbone-only: bare backbone keys plus the shuffle-order record
    bdst = str(tmp_path / 'backbone.pth')
    convert_reference_file(src, bdst, backbone_only=True)
    bsaved = _read(bdst)['state_dict']
    assert not any(k.startswith(('neck', 'rpn', 'roi', 'backbone.'))
                   for k in bsaved)
    assert len(_read(bdst)['meta']['dropped']) == len(ref) - len(
        reference_keys['COCO-FPN-300M'])


def test_convert_reference_retinanet(tmp_path, reference_keys):
    """RetinaNet: FPN on C3-C5 without norms (fpn_inner2..4), P6 from P5,
    P7 from ReLU(P6); towers of conv + ReLU (indices 0, 2, 4, 6)."""
    g = torch.Generator().manual_seed(4)
    ref = {'backbone.body.' + k: v for k, v in _synthesize(
        reference_keys['COCO-RetinaNet-300M']).items()}
    for i, c in ((2, 160), (3, 320), (4, 640)):
        ref.update(_conv(f'backbone.fpn.fpn_inner{i}', HEAD, c, 1, g))
        ref.update(_conv(f'backbone.fpn.fpn_layer{i}', HEAD, HEAD, 3, g))
    ref.update(_conv('backbone.fpn.top_blocks.p6', HEAD, HEAD, 3, g))
    ref.update(_conv('backbone.fpn.top_blocks.p7', HEAD, HEAD, 3, g))
    for tower in ('cls_tower', 'bbox_tower'):
        for j in range(4):
            ref.update(_conv(f'rpn.head.{tower}.{2 * j}', HEAD, HEAD, 3, g))
    ref.update(_conv('rpn.head.cls_logits', 9 * 80, HEAD, 3, g))
    ref.update(_conv('rpn.head.bbox_pred', 9 * 4, HEAD, 3, g))
    ref['rpn.anchor_generator.cell_anchors.0'] = torch.randn(9, 4)
    src, dst = str(tmp_path / 'ref.pth'), str(tmp_path / 'det.pth')
    torch.save({'model': {'module.' + k: v for k, v in ref.items()}}, src)
    convert_reference_file(src, dst, config=OFFICIAL_RETINA)
    saved = _read(dst)['state_dict']
    model = _build(OFFICIAL_RETINA)
    model.load_state_dict(saved, strict=True)
    model.eval()

    # the reference FPN forward, written out (maskrcnn-benchmark FPN +
    # LastLevelP6P7 with in == out channels)
    def conv(name, x):
        p = _sub(ref, f'backbone.fpn.{name}.')
        return torch.nn.functional.conv2d(x, p['weight'], p['bias'],
                                          stride=2 if 'top' in name else 1,
                                          padding=p['weight'].shape[-1] // 2)

    feats = [torch.randn(1, c, s, s, generator=g)
             for c, s in zip(STAGES_300M, (32, 16, 8, 4))]
    last = conv('fpn_inner4', feats[3])
    outs = [conv('fpn_layer4', last)]
    for i in (3, 2):
        last = conv(f'fpn_inner{i}', feats[i - 1]) + \
            torch.nn.functional.interpolate(last, scale_factor=2)
        outs.insert(0, conv(f'fpn_layer{i}', last))
    p6 = conv('top_blocks.p6', outs[-1])
    outs += [p6, conv('top_blocks.p7', p6.relu())]
    with torch.no_grad():
        got = model.neck(feats)
    assert len(got) == 5
    for a, b in zip(got, outs):
        torch.testing.assert_close(a, b)
    # towers: conv j of the reference is mmdet conv j; heads copied
    assert torch.equal(saved['bbox_head.reg_convs.3.conv.weight'],
                       ref['rpn.head.bbox_tower.6.weight'])
    assert torch.equal(saved['bbox_head.retina_cls.bias'],
                       ref['rpn.head.cls_logits.bias'])


def test_convert_reference_imagenet(tmp_path, reference_keys):
    """The ImageNet network: last_conv (conv + bias, BN) and fc.fc."""
    from mmdetnas.models.classifiers import ImageClassifier
    g = torch.Generator().manual_seed(5)
    space = PRESETS['300M']
    ref = _synthesize(reference_keys['COCO-FPN-300M'])
    c = space.last_channels
    ref.update(_conv('last_conv.conv', c, STAGES_300M[-1], 1, g))
    ref.update(_bn('last_conv.bn', c, g))
    ref['fc.fc.weight'] = torch.randn(1000, c, generator=g)
    ref['fc.fc.bias'] = torch.randn(1000, generator=g)
    src, dst = str(tmp_path / 'ref.pth'), str(tmp_path / 'cls.pth')
    torch.save({'module.' + k: v for k, v in ref.items()}, src)
    convert_reference_file(src, dst)
    saved = _read(dst)['state_dict']
    model = ImageClassifier(
        backbone=dict(type='mmdetnas.DetNASShuffleNetV2',
                      arch='COCO-FPN-300M', shuffle_order='interleave',
                      out_indices=(3, ), with_last_conv=True),
        num_classes=1000)
    model.load_state_dict(saved, strict=True)
    model.eval()
    x = torch.randn(2, STAGES_300M[-1], 4, 4, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(
            model.backbone.last_conv(x),
            _conv_bn_reference(_sub(ref, 'last_conv.conv.'),
                               _sub(ref, 'last_conv.bn.'), x).relu())
    assert torch.equal(saved['head.fc.weight'], ref['fc.fc.weight'])


def test_shuffle_order_mismatch_fails(tmp_path, reference_keys):
    """Released weights ('interleave') into a backbone built by official name
    alone ('transpose' by default) must fail, naming both orders, on every
    loading path; the right order loads."""
    from mmengine.runner import load_checkpoint
    ref = _synthesize(reference_keys['COCO-FPN-300M'])
    src = str(tmp_path / 'ref.pth')
    torch.save({'module.backbone.body.' + k: v for k, v in ref.items()}, src)
    bare, prefixed = str(tmp_path / 'bare.pth'), str(tmp_path / 'pre.pth')
    convert_reference_file(src, bare)
    convert_reference_file(src, prefixed, prefix='backbone.')

    wrong = DetNASShuffleNetV2(arch='COCO-FPN-300M')
    with pytest.raises(RuntimeError, match="'interleave'.*'transpose'"):
        load_checkpoint(wrong, bare, map_location='cpu')
    with pytest.raises(RuntimeError, match="'interleave'.*'transpose'"):
        wrong.load_state_dict(_read(bare)['state_dict'])
    pretrained = DetNASShuffleNetV2(
        arch='COCO-FPN-300M',
        init_cfg=dict(type='Pretrained', checkpoint=prefixed,
                      prefix='backbone.'))
    with pytest.raises(RuntimeError, match="'interleave'.*'transpose'"):
        pretrained.init_weights()
    right = DetNASShuffleNetV2(arch='COCO-FPN-300M',
                               shuffle_order='interleave')
    load_checkpoint(right, bare, map_location='cpu', strict=True)
    for k, v in right.state_dict().items():
        if not k.endswith('num_batches_tracked'):
            assert torch.equal(v, _read(bare)['state_dict'][k]), k


def test_library_conversion_and_prefix_rule(tmp_path, reference_keys):
    """The library function behind the tool: a detector in memory, whole
    and backbone-only; a backbone prefix makes no sense for a whole
    detector (library: ValueError, command line: usage error)."""
    from mmdetnas.models import convert_reference_checkpoint
    g = torch.Generator().manual_seed(6)
    ref = _reference_faster_rcnn(reference_keys['COCO-FPN-300M'], g)
    res = convert_reference_checkpoint({'model': ref})
    assert res.what == 'detector' and res.shuffle_order == 'interleave'
    assert {k.split('.')[0] for k in res.state_dict} == {
        'backbone', 'neck', 'rpn_head', 'roi_head'}
    alone = convert_reference_checkpoint({'model': ref}, backbone_only=True,
                                         prefix='body.')
    assert alone.what == 'backbone'
    assert set(alone.state_dict) == {'body.' + k for k in alone.backbone} | {
        'body.shuffle_order'}
    with pytest.raises(ValueError, match="prefix='x.'"):
        convert_reference_checkpoint({'model': ref}, prefix='x.')
    src = str(tmp_path / 'ref.pth')
    torch.save({'model': ref}, src)
    proc = run_tool(['tools/model_converters/detnas_to_mmdetnas.py', src,
                     str(tmp_path / 'o.pth'), '--prefix', 'x.'], check=False)
    assert proc.returncode == 2 and not osp.exists(tmp_path / 'o.pth')
    assert "prefix='x.' applies to backbone-only results" in proc.stderr
    with pytest.raises(KeyError, match='no DetNAS backbone keys'):
        convert_reference_checkpoint({'state_dict': {'neck.w': ref[
            'module.rpn.head.conv.weight']}})
