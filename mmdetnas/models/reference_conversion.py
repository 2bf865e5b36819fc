"""Conversion of reference DetNAS checkpoints (megvii-model/DetNAS,
maskrcnn-benchmark layout) to mmdetnas backbones and mmdet detectors.

:func:`convert_reference_checkpoint` is the entry point, and
:func:`convert_reference_file` converts a file into a checkpoint file (its
command line is ``tools/model_converters/detnas_to_mmdetnas.py``). It
accepts what the reference code saves: backbones (the official single
models COCO-FPN-300M, COCO-RetinaNet-300M, COCO-FPN-1.3G, COCO-FPN-3.8G and
the 300M supernet), whole detectors (``{'model': ...}`` with
``module.backbone.body.*``, ``module.backbone.fpn.*``, ``module.rpn.*``,
``module.roi_heads.*``: Faster R-CNN FPN with a 4conv-1fc or 2fc box head,
RetinaNet) and ImageNet networks (``last_conv``, ``fc``).

The backbone is always converted: the search space and, for single models,
the architecture are inferred from the keys and checked by a strict load.
Unless ``backbone_only``, the rest is mapped onto mmdet's modules: the FPN
onto ``mmdet.FPN`` (``neck.*``; RetinaNet's P6/P7 onto its extra convs),
the RPN onto ``RPNHead`` (``rpn_head.*``), the box head onto
``Shared4Conv1FCBBoxHead``/``Shared2FCBBoxHead`` (``roi_head.bbox_head.*``;
the background logit moves from first to last, its box rows are dropped),
the RetinaNet head onto ``RetinaHead`` (``bbox_head.*``), and
``last_conv``/``fc`` onto :class:`mmdetnas.models.ImageClassifier`
(``backbone.last_conv.*``, ``head.fc.*``). A conv bias followed by BN is
folded into the BN's running mean (exact: BN removes any constant shift).
Keys with no mmdet counterpart (anchor buffers, which mmdet's
``AnchorGenerator`` recomputes; mask or keypoint heads) are dropped and
listed. The released single models use the ``'interleave'`` channel
shuffle; the converted state dict records it under
``<backbone prefix>shuffle_order``, so loading it into a backbone built
with the other order fails.
"""
import re
from typing import Dict, List, NamedTuple, Optional, Tuple

import torch

from mmdetnas.spaces.search_space import PRESETS, SearchSpace
from .backbones.detnas_shufflenetv2 import (SHUFFLE_ORDER_KEY,
                                            shuffle_order_tensor)

DEFAULT_STRIP = ('module.', )
# wrappers of the backbone in the reference detectors and classifiers
BACKBONE_PREFIXES = ('backbone.body.', 'backbone.', 'body.')
_BLOCK = {'shufflenet_3x3': 'shuffle_3x3', 'shufflenet_5x5': 'shuffle_5x5',
          'shufflenet_7x7': 'shuffle_7x7', 'xception_3x3': 'shuffle_xception'}
_KEY = re.compile(
    r'^features\.(?P<layer>\d+)\.(?:(?P<choice>\d+)\.)?'
    r'(?P<branch>conv\.(?P<round>\d)|proj_conv)\.'
    r'(?P<kind>interstellar|bn)\d+[a-z]+_'
    r'(?:(?P<block>shufflenet_\dx\d|xception_3x3)_branch2(?P<letter>[abc])'
    r'|proj)(?P<dw>_s)?(?P<dwbn>_bn)?\.(?P<param>\w+)$')
_STEM = re.compile(r'^first_conv\.(?P<mod>conv|bn)\.(?P<param>\w+)$')


def strip_prefixes(state: Dict[str, torch.Tensor],
                   prefixes=DEFAULT_STRIP) -> Dict[str, torch.Tensor]:
    """Remove wrapper prefixes (repeatedly, e.g. ``module.backbone.body.``)
    from every key."""
    out = {}
    for k, v in state.items():
        stripped = True
        while stripped:
            stripped = False
            for p in prefixes:
                if k.startswith(p):
                    k, stripped = k[len(p):], True
                    break
        out[k] = v
    return out


def convert_key(key: str) -> Tuple[str, Optional[int], Optional[str],
                                   Optional[int]]:
    """Map one reference key to ``(mmdetnas key, layer, choice name,
    supernet choice index)``.

    Raises:
        KeyError: a key that matches no known pattern.
    """
    m = _STEM.match(key)
    if m:
        return f"stem.{m['mod']}.{m['param']}", None, None, None
    m = _KEY.match(key)
    if m is None:
        raise KeyError(f'cannot place reference key {key!r}: it is neither '
                       'first_conv.* nor a features.* block key')
    is_dw = m['dw'] is not None
    is_bn = m['kind'] == 'bn' or m['dwbn'] is not None
    if m['branch'] == 'proj_conv':
        if m['block'] is not None:
            raise KeyError(f'unexpected block name in projection key {key!r}')
        # the projection branch's kernel follows the block of its layer
        branch, slot, block = 'branch_proj', 0 if is_dw else 1, None
    else:
        block = m['block']
        rnd, letter = int(m['round']), m['letter']
        if block == 'xception_3x3':
            if 'abc'.index(letter) != rnd:
                raise KeyError(f'xception round/letter mismatch in {key!r}')
            slot = 2 * rnd + (0 if is_dw else 1)
        else:
            slot = {('a', False): 0, ('b', True): 1, ('b', False): 2}.get(
                (letter, is_dw))
            if slot is None or (rnd, letter) not in ((0, 'a'), (1, 'b')):
                raise KeyError(f'unexpected shuffle-block key {key!r}')
        branch = 'branch_main'
    mod = 'bn' if is_bn else 'conv'
    choice = None if block is None else _BLOCK[block]
    idx = None if m['choice'] is None else int(m['choice'])
    return (f"layers.{m['layer']}.{{choice}}.{branch}.{slot}.{mod}."
            f"{m['param']}", int(m['layer']), choice, idx)


def infer_space(state: Dict[str, torch.Tensor]) -> SearchSpace:
    """The preset whose stem width and depth match the checkpoint."""
    stem = state['first_conv.conv.weight'].shape[0] \
        if 'first_conv.conv.weight' in state else None
    layers = {int(k.split('.')[1]) for k in state
              if k.startswith('features.')}
    for space in PRESETS.values():
        if space.stem_channels == stem and len(layers) == space.num_layers:
            return space
    raise ValueError(
        f'no search space preset has stem width {stem} and '
        f'{len(layers)} layers; expected one of '
        f'{[(s.name, s.stem_channels, s.num_layers) for s in PRESETS.values()]}'  # noqa: E501
    )


def convert(state: Dict[str, torch.Tensor]):
    """Convert a (prefix-stripped) reference state dict.

    Returns:
        (dict, SearchSpace, tuple | None): the mmdetnas backbone state dict
        (bare backbone keys), its search space and, for a single model, its
        architecture (``None`` for a supernet).

    Raises:
        KeyError: a key that cannot be placed, or a layer whose choice cannot
            be determined.
    """
    state = {k: v for k, v in state.items()}
    space = infer_space(state)
    converted = [(k, v, *convert_key(k)) for k, v in state.items()]
    supernet = any(idx is not None for *_, idx in converted)
    layer_choice: Dict[int, str] = {}
    if not supernet:
        for _, _, _, layer, choice, _ in converted:
            if choice is not None:
                old = layer_choice.setdefault(layer, choice)
                if old != choice:
                    raise KeyError(f'layer {layer} mixes blocks {old} and '
                                   f'{choice}')
    out = {}
    for key, value, new, layer, choice, idx in converted:
        if layer is not None:
            if supernet:
                if idx is None or idx >= space.num_choices:
                    raise KeyError(f'supernet key {key!r} has no valid choice'
                                   f' index (expected 0..'
                                   f'{space.num_choices - 1})')
                name = space.choices[idx]
                if choice is not None and choice != name:
                    raise KeyError(f'{key!r}: block {choice} at choice index '
                                   f'{idx}, expected {name}')
                choice = name
            else:
                if layer not in layer_choice:
                    raise KeyError(f'cannot tell the block of layer {layer} '
                                   f'from {key!r}')
                choice = layer_choice[layer]
            new = new.format(choice=choice)
        if new in out:
            raise KeyError(f'two reference keys map to {new!r}')
        out[new] = value
    arch = None if supernet else tuple(
        layer_choice[i] for i in range(space.num_layers))
    return out, space, arch


def verify(state: Dict[str, torch.Tensor], space: SearchSpace, arch,
           shuffle_order: str = 'transpose') -> None:
    """Load ``state`` strictly into the matching mmdetnas backbone.

    Raises:
        RuntimeError: missing/unexpected keys or shape mismatches.
    """
    from .backbones import DetNASShuffleNetV2
    model = DetNASShuffleNetV2(search_space=space, arch=arch,
                               shuffle_order=shuffle_order,
                               with_last_conv=any(
                                   k.startswith('last_conv.') for k in state))
    model.load_state_dict(state, strict=True)


# ---------------------------------------------------------------- the rest
def split_parts(state: Dict[str, torch.Tensor]):
    """Sort the (wrapper-stripped) keys of a reference checkpoint by part.

    Returns:
        dict: ``{'backbone', 'fpn', 'rpn', 'roi', 'cls'}`` -> sub state dict
        with the part's own prefix removed (``cls``: ``last_conv.*`` and
        ``fc.*`` of an ImageNet network), and ``'other'``: keys of no part.
        Every ``backbone.body.*`` key is a backbone key (one that cannot be
        placed is an error in :func:`convert`).
    """
    parts = {n: {} for n in ('backbone', 'fpn', 'rpn', 'roi', 'cls',
                             'other')}
    for key, value in state.items():
        if key.startswith('backbone.fpn.'):
            parts['fpn'][key[len('backbone.fpn.'):]] = value
            continue
        for part, prefix in (('rpn', 'rpn.'), ('roi', 'roi_heads.')):
            if key.startswith(prefix):
                parts[part][key[len(prefix):]] = value
                break
        else:
            bare = strip_prefixes({key: None}, BACKBONE_PREFIXES).popitem()[0]
            # everything of the reference's backbone body must be placed
            if key.startswith('backbone.body.') or bare.startswith(
                    ('first_conv.', 'features.')):
                parts['backbone'][bare] = value
            elif bare.startswith(('last_conv.', 'fc.')):
                parts['cls'][bare] = value
            else:
                parts['other'][key] = value
    return parts


def _modules(state: Dict[str, torch.Tensor]) -> Dict[str, Dict]:
    """``{'a.b': {'weight': t, ...}}`` from ``{'a.b.weight': t, ...}``."""
    out: Dict[str, Dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        mod, _, param = key.rpartition('.')
        out.setdefault(mod, {})[param] = value
    return out


def _conv_module(dst: str, conv: Dict, norm: Optional[Dict]) -> Dict:
    """mmcv ``ConvModule`` keys of a conv (with bias) and optional norm.

    With a norm, ConvModule's conv has no bias; the reference conv's bias
    is folded into the norm: BN(x + b) with running mean m equals BN(x) with
    running mean m - b (batch statistics shift by b as well, so training is
    unchanged too). GroupNorm cannot absorb it: that case is an error.

    Raises:
        KeyError: a bias before a norm without running statistics.
    """
    out = {f'{dst}.conv.weight': conv['weight']}
    if norm is None:
        if 'bias' in conv:
            out[f'{dst}.conv.bias'] = conv['bias']
        return out
    kind = 'bn' if 'running_mean' in norm else 'gn'
    norm = dict(norm)
    if 'bias' in conv:
        if kind != 'bn':
            raise KeyError(f'{dst}: a conv bias before GroupNorm cannot be '
                           'folded')
        norm['running_mean'] = norm['running_mean'] - conv['bias']
    out.update({f'{dst}.{kind}.{k}': v for k, v in norm.items()})
    return out


def _conv_norm(mods: Dict[str, Dict], name: str):
    """A reference conv block ``name``: a bare conv (``name.weight``) or a
    ``Sequential(conv, norm[, relu])`` (``name.0.*``, ``name.1.*``).

    Returns:
        (dict, dict | None) | None: the conv's and the norm's parameters;
        ``None`` when there is no such block.
    """
    if name in mods:
        return mods[name], None
    if f'{name}.0' in mods:
        return mods[f'{name}.0'], mods.get(f'{name}.1')
    return None


def _tower(mods: Dict[str, Dict], name: str):
    """The (conv, norm) pairs of a ``Sequential`` of convs, each optionally
    followed by a norm and an activation (the reference box head's
    ``xconvs`` and RetinaNet's towers): a 4-d weight starts a conv, a 1-d
    weight is the norm of the conv before it."""
    idx = sorted(int(m[len(name) + 1:]) for m in mods
                 if m.startswith(name + '.') and m[len(name) + 1:].isdigit())
    pairs = []
    for i in idx:
        params = mods[f'{name}.{i}']
        if params['weight'].dim() == 4:
            pairs.append([params, None])
        elif pairs and pairs[-1][1] is None:
            pairs[-1][1] = params
        else:
            raise KeyError(f'{name}.{i}: a norm without a conv before it')
    return pairs


def convert_fpn(fpn: Dict[str, torch.Tensor]):
    """Reference FPN (``fpn_inner{i}``, ``fpn_layer{i}``, ``top_blocks``)
    -> ``mmdet.FPN`` keys (``lateral_convs.{j}``, ``fpn_convs.{j}``, the
    P6/P7 convs as ``fpn_convs`` after the levels).

    Returns:
        (dict, dict): mmdet keys (without ``neck.``), and the FPN settings
        the weights need: ``start_level`` (the first backbone level the
        reference FPN reads; its ``fpn_inner`` indices start at 1),
        ``num_outs``, ``add_extra_convs`` and ``norm`` (``'bn'``,
        ``'gn'`` or ``None``).
    """
    mods = _modules(fpn)
    levels = sorted(int(m[len('fpn_inner'):].split('.')[0]) for m in mods
                    if m.startswith('fpn_inner'))
    levels = sorted(set(levels))
    out, norms = {}, set()
    for j, lvl in enumerate(levels):
        for src, dst in (('fpn_inner', 'lateral_convs'),
                         ('fpn_layer', 'fpn_convs')):
            conv, norm = _conv_norm(mods, f'{src}{lvl}')
            norms.add(None if norm is None else
                      ('bn' if 'running_mean' in norm else 'gn'))
            out.update(_conv_module(f'{dst}.{j}', conv, norm))
    extra = 0
    for name in ('top_blocks.p6', 'top_blocks.p7'):
        block = _conv_norm(mods, name)
        if block is not None:
            out.update(_conv_module(f'fpn_convs.{len(levels) + extra}',
                                    *block))
            extra += 1
    if len(norms) > 1:
        raise KeyError(f'the reference FPN mixes norms {norms}')
    info = dict(start_level=levels[0] - 1 if levels else 0,
                num_outs=len(levels) + (extra or 1),
                add_extra_convs='on_output' if extra else False,
                norm=norms.pop() if norms else None)
    return out, info


def convert_rpn(rpn: Dict[str, torch.Tensor]):
    """Reference ``rpn.*``: the RPN head of Faster R-CNN -> ``RPNHead``
    (``rpn_head.*``) or the RetinaNet head -> ``RetinaHead``
    (``bbox_head.*``). Anchors are kept in the same order by both
    (ratio-major, then scale), as are the logit and box channels (anchor
    -major).

    Returns:
        (dict, list): mmdet keys with their head prefix, dropped keys.
    """
    mods = _modules(rpn)
    out, dropped = {}, []
    if 'head.cls_tower.0' in mods:  # RetinaNet
        for src, dst in (('cls_tower', 'cls_convs'),
                         ('bbox_tower', 'reg_convs')):
            for j, (conv, norm) in enumerate(_tower(mods, f'head.{src}')):
                out.update(_conv_module(f'bbox_head.{dst}.{j}', conv, norm))
        pairs = (('head.cls_logits', 'bbox_head.retina_cls'),
                 ('head.bbox_pred', 'bbox_head.retina_reg'))
        used = ('head.cls_tower', 'head.bbox_tower', 'head.cls_logits',
                'head.bbox_pred')
    else:
        pairs = (('head.conv', 'rpn_head.rpn_conv'),
                 ('head.cls_logits', 'rpn_head.rpn_cls'),
                 ('head.bbox_pred', 'rpn_head.rpn_reg'))
        used = tuple(p[0] for p in pairs)
    for src, dst in pairs:
        if src in mods:
            out.update({f'{dst}.{k}': v for k, v in mods[src].items()})
    for key in rpn:
        if not key.startswith(used):
            dropped.append('rpn.' + key)
    return out, dropped


def convert_roi(roi: Dict[str, torch.Tensor]):
    """Reference ``roi_heads.box.*`` -> mmdet ``roi_head.bbox_head.*``.

    ``feature_extractor.xconvs`` + ``fc6`` (FPNXconv1fcFeatureExtractor)
    -> ``shared_convs.{j}`` + ``shared_fcs.0`` of
    ``Shared{n}Conv1FCBBoxHead``; ``fc6``/``fc7`` (FPN2MLPFeatureExtractor)
    -> ``shared_fcs.0/1`` of ``Shared2FCBBoxHead``. The predictor's
    ``cls_score`` has the background first (maskrcnn-benchmark), mmdet's
    ``fc_cls`` last: its rows are rotated. ``bbox_pred`` has 4 rows per
    class including the background, mmdet's ``fc_reg`` none for the
    background: those are dropped (class-agnostic: 2 x 4 rows -> the
    foreground 4).

    Returns:
        (dict, dict, list): mmdet keys, settings (``num_shared_convs``,
        ``num_shared_fcs``, ``num_classes`` without background,
        ``reg_class_agnostic``, ``conv_norm``), dropped keys.
    """
    mods = _modules(roi)
    out, dropped = {}, []
    fe, pred = 'box.feature_extractor', 'box.predictor'
    convs = _tower(mods, f'{fe}.xconvs')
    dst = 'roi_head.bbox_head'
    for j, (conv, norm) in enumerate(convs):
        out.update(_conv_module(f'{dst}.shared_convs.{j}', conv, norm))
    fcs = [n for n in ('fc6', 'fc7') if f'{fe}.{n}' in mods]
    for j, n in enumerate(fcs):
        out.update({f'{dst}.shared_fcs.{j}.{k}': v
                    for k, v in mods[f'{fe}.{n}'].items()})
    info = dict(num_shared_convs=len(convs), num_shared_fcs=len(fcs),
                conv_norm=None if not convs or convs[0][1] is None else
                ('bn' if 'running_mean' in convs[0][1] else 'gn'))
    if f'{pred}.cls_score' in mods:
        cls = mods[f'{pred}.cls_score']
        order = list(range(1, cls['weight'].shape[0])) + [0]
        out.update({f'{dst}.fc_cls.{k}': v[order] for k, v in cls.items()})
        info['num_classes'] = cls['weight'].shape[0] - 1
    if f'{pred}.bbox_pred' in mods:
        reg = mods[f'{pred}.bbox_pred']
        rows = reg['weight'].shape[0]
        info['reg_class_agnostic'] = rows == 8
        out.update({f'{dst}.fc_reg.{k}': v[4:] for k, v in reg.items()})
    for key in roi:
        if not key.startswith((f'{fe}.xconvs.', f'{fe}.fc6.', f'{fe}.fc7.',
                               f'{pred}.cls_score.', f'{pred}.bbox_pred.')):
            dropped.append('roi_heads.' + key)
    return out, info, dropped


def convert_classifier(cls: Dict[str, torch.Tensor]):
    """ImageNet ``last_conv`` (conv with bias, BN) and ``fc.fc`` -> this
    toolkit's ``ImageClassifier``: ``backbone.last_conv`` (ConvModule, bias
    folded into BN) and ``head.fc``.

    Returns:
        (dict, dict): backbone keys (bare, ``last_conv.*``), head keys
        (``head.fc.*``).
    """
    mods = _modules(cls)
    backbone = {}
    if 'last_conv.conv' in mods:
        backbone = _conv_module('last_conv', mods['last_conv.conv'],
                                mods.get('last_conv.bn'))
    head = {f'head.fc.{k}': v for k, v in mods.get('fc.fc', {}).items()}
    head.update({f'head.fc.{k}': v for k, v in mods.get('fc', {}).items()})
    return backbone, head


def verify_config(state: Dict[str, torch.Tensor], config: str) -> None:
    """Build the model of an mmdet config and load ``state`` strictly.

    Raises:
        RuntimeError: missing/unexpected keys or shape mismatches.
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmdet.registry import MODELS
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    cfg.model.get('backbone', {}).pop('init_cfg', None)
    model = MODELS.build(cfg.model)
    model.load_state_dict(state, strict=True)


class BackbonePrefixError(ValueError):
    """A backbone prefix given for a whole detector or classifier (their
    backbone keys always start with ``'backbone.'``)."""


class ConvertedCheckpoint(NamedTuple):
    """The result of :func:`convert_reference_checkpoint`.

    Attributes:
        state_dict (dict): mmdet/mmdetnas keys to tensors (with the
            shuffle-order record).
        backbone (dict): the backbone's converted tensors, bare keys.
        space (SearchSpace): the inferred search space.
        arch (tuple | None): the architecture of a single model, ``None``
            for a supernet.
        shuffle_order (str): ``'interleave'`` (single models) or
            ``'transpose'`` (the supernet).
        what (str): ``'detector'``, ``'classifier'`` or ``'backbone'``.
        dropped (list[str]): reference keys not placed, on purpose.
        settings (dict): the FPN / RoI head settings the weights need.
    """
    state_dict: Dict[str, torch.Tensor]
    backbone: Dict[str, torch.Tensor]
    space: SearchSpace
    arch: Optional[tuple]
    shuffle_order: str
    what: str
    dropped: List[str]
    settings: dict


def convert_reference_checkpoint(
        ckpt: dict,
        backbone_only: bool = False,
        prefix: Optional[str] = None,
        strip=DEFAULT_STRIP) -> ConvertedCheckpoint:
    """Convert a loaded reference checkpoint (see the module docstring).

    Args:
        ckpt (dict): the loaded file: a state dict, or a dict holding it
            under ``'state_dict'`` or ``'model'``.
        backbone_only (bool): Convert only the backbone.
        prefix (str, optional): Prefix of the backbone keys of a
            backbone-only result (default ``''``); whole detectors and
            classifiers always use ``'backbone.'``.
        strip (tuple[str]): Wrapper prefixes removed from every key first
            (``backbone.body.`` and similar are recognised anyway).

    Returns:
        ConvertedCheckpoint

    Raises:
        TypeError: ``ckpt`` holds no state dict (e.g. a plain tensor).
        KeyError: no backbone key, a backbone key that cannot be placed, a
            layer whose block cannot be determined, or a norm layout that
            cannot be mapped.
        BackbonePrefixError: (a ValueError) ``prefix`` given for a whole
            detector or classifier.
        ValueError: no search-space preset matches the checkpoint.
        RuntimeError: the converted backbone does not load strictly.
    """
    state, where = ckpt, ''
    for field in ('state_dict', 'model'):
        if isinstance(state, dict) and field in state:
            state, where = state[field], f" under {field!r}"
            break
    if not isinstance(state, dict) or not all(
            isinstance(k, str) for k in state):
        got = ('a dict with non-string keys' if isinstance(state, dict)
               else f'a {type(state).__name__}' + (
                   f' of shape {tuple(state.shape)}'
                   if isinstance(state, torch.Tensor) else ''))
        raise TypeError(
            f'the checkpoint holds no state dict: got {got}{where}; '
            "expected a dict of named tensors (or one under 'state_dict' "
            "or 'model'), as the DetNAS reference code saves")
    state = strip_prefixes(state, tuple(strip))
    parts = split_parts(state)
    if not parts['backbone']:
        raise KeyError(
            'no DetNAS backbone keys (first_conv.*, features.*, possibly '
            f'under backbone.body.); first keys: {list(state)[:5]}')
    backbone, space, arch = convert(parts['backbone'])
    order = 'interleave' if arch is not None else 'transpose'
    rest = any(parts[p] for p in ('fpn', 'rpn', 'roi', 'cls'))
    whole = rest and not backbone_only
    if whole and prefix is not None:
        raise BackbonePrefixError(
            f'prefix={prefix!r} applies to backbone-only results; a whole '
            "detector or classifier uses 'backbone.'")
    prefix = 'backbone.' if whole else (prefix or '')
    dropped = sorted(parts['other'])
    if not whole:
        dropped += sorted(k for p in ('fpn', 'rpn', 'roi', 'cls')
                          for k in parts[p])
    result, settings = {}, {}
    if whole:
        cls_backbone, head = convert_classifier(parts['cls'])
        backbone.update(cls_backbone)
        result.update(head)
        if parts['fpn']:
            neck, settings['neck'] = convert_fpn(parts['fpn'])
            result.update({'neck.' + k: v for k, v in neck.items()})
        if parts['rpn']:
            heads, lost = convert_rpn(parts['rpn'])
            result.update(heads)
            dropped += lost
        if parts['roi']:
            heads, settings['roi_head'], lost = convert_roi(parts['roi'])
            result.update(heads)
            dropped += lost
    verify(backbone, space, arch, order)
    result.update({prefix + k: v for k, v in backbone.items()})
    result[prefix + SHUFFLE_ORDER_KEY] = shuffle_order_tensor(order)
    what = ('detector' if parts['fpn'] or parts['rpn'] or parts['roi'] else
            'classifier') if whole else 'backbone'
    return ConvertedCheckpoint(result, backbone, space, arch, order, what,
                               dropped, settings)


def convert_reference_file(src: str,
                           dst: str,
                           backbone_only: bool = False,
                           prefix: Optional[str] = None,
                           strip=DEFAULT_STRIP,
                           config: Optional[str] = None
                           ) -> Tuple[ConvertedCheckpoint, str]:
    """Convert the reference checkpoint file ``src``
    (:func:`convert_reference_checkpoint`) and write the result to ``dst``
    (``state_dict`` and a ``meta`` recording the search space, the
    shuffle order, the source, the dropped keys, the settings and, for a
    single model, the architecture, which also goes to
    ``<dst without extension>_arch.yaml``).

    Args:
        src (str): The reference checkpoint.
        dst (str): The output checkpoint (its folder is created).
        backbone_only, prefix, strip: see
            :func:`convert_reference_checkpoint`.
        config (str, optional): Also load the result strictly into the
            model of this config (:func:`verify_config`) before writing.

    Returns:
        tuple: the :class:`ConvertedCheckpoint` and a message for the user
        (what was converted, the dropped keys, the architecture file or
        how to build the supernet).

    Raises:
        FileNotFoundError / CheckpointReadError: ``src`` is missing or
            unreadable (:func:`mmdetnas.utils.load_local_checkpoint`).
        ValueError: ``src`` holds no state dict (named in the message).
        BackbonePrefixError: see :func:`convert_reference_checkpoint`, which
            also raises the other errors; nothing is written then.
        RuntimeError: the result does not load into ``config``'s model.
    """
    import os
    import os.path as osp

    from mmdetnas.spaces.arch import save_arch_file
    from mmdetnas.utils.checkpoint import load_local_checkpoint
    ckpt = load_local_checkpoint(src, map_location='cpu')
    try:
        res = convert_reference_checkpoint(ckpt, backbone_only, prefix,
                                           tuple(strip))
    except TypeError as e:
        if 'holds no state dict' in str(e):  # name the file; bad input
            raise ValueError(f'{src!r}: {e}') from None
        raise
    if config:
        verify_config(res.state_dict, config)
    meta = dict(search_space=res.space.name, shuffle_order=res.shuffle_order,
                source=src, dropped=res.dropped, settings=res.settings)
    if res.arch is not None:
        meta['arch'] = list(res.arch)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(dict(state_dict=res.state_dict, meta=meta), dst)
    what = dict(detector='a whole detector', classifier='a classifier',
                backbone='the backbone')[res.what]
    msg = (f'converted {what} ({len(res.state_dict)} tensors, '
           f'{res.space.name}) to {dst}')
    if res.dropped:
        msg += (f'\ndropped {len(res.dropped)} key(s) with no mmdet '
                f'counterpart (kept out on purpose): {res.dropped[:8]}'
                + (' ...' if len(res.dropped) > 8 else ''))
    if res.arch is not None:
        path = save_arch_file(osp.splitext(dst)[0] + '_arch.yaml',
                              res.arch, res.space)
        msg += (f'\narchitecture written to {path}. Build the backbone with '
                f"arch='{path}', shuffle_order='interleave'")
    else:
        msg += '\na supernet: build it with arch=None'
    return res, msg
