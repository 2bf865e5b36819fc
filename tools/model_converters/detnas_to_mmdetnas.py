"""Convert a reference-implementation DetNAS backbone checkpoint to mmdetnas.

    python tools/model_converters/detnas_to_mmdetnas.py IN OUT
        [--prefix ''] [--strip PREFIX ...]

Accepts the official single models (COCO-FPN-300M, COCO-RetinaNet-300M,
COCO-FPN-1.3G, COCO-FPN-3.8G: ``first_conv.*``, ``features.{i}.conv.*``,
``features.{i}.proj_conv.*``) and the 300M supernet
(``features.{i}.{choice}.*``), with wrapper prefixes such as ``module.`` or
``backbone.body.`` stripped. The search space and (for single models) the
architecture are inferred from the keys; the result is checked by loading it
strictly into the mmdetnas backbone, and any key that cannot be placed is an
error. The released single models use the ``'interleave'`` channel-shuffle
order: build them with ``shuffle_order='interleave'``.
"""
import argparse
import os
import os.path as osp
import re
import sys
from typing import Dict, Optional, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

import torch  # noqa: E402

from mmdetnas.search.arch import save_arch_file  # noqa: E402
from mmdetnas.search.search_space import PRESETS, SearchSpace  # noqa: E402
from mmdetnas.utils.checkpoint import load_local_checkpoint  # noqa: E402

DEFAULT_STRIP = ('module.', 'backbone.body.', 'backbone.', 'body.')
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


def verify(state: Dict[str, torch.Tensor], space: SearchSpace, arch) -> None:
    """Load ``state`` strictly into the matching mmdetnas backbone.

    Raises:
        RuntimeError: missing/unexpected keys or shape mismatches.
    """
    from mmdetnas.models.backbones import DetNASShuffleNetV2
    model = DetNASShuffleNetV2(search_space=space, arch=arch)
    model.load_state_dict(state, strict=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='reference checkpoint')
    parser.add_argument('dst', help='output mmdetnas checkpoint')
    parser.add_argument(
        '--prefix', default='',
        help="prefix of the output keys, e.g. 'backbone.' for load_from of "
        "a whole detector; default '' (use with init_cfg Pretrained)")
    parser.add_argument(
        '--strip', nargs='*', default=list(DEFAULT_STRIP),
        help='wrapper prefixes removed from the input keys')
    args = parser.parse_args(argv)
    ckpt = load_local_checkpoint(args.src, map_location='cpu')
    state = ckpt.get('state_dict', ckpt.get('model', ckpt))
    state = strip_prefixes(state, tuple(args.strip))
    # heads or other non-backbone entries are not ours to place
    foreign = [k for k in state
               if not k.startswith(('first_conv.', 'features.'))]
    if foreign:
        raise KeyError(f'{len(foreign)} key(s) are not backbone keys, e.g. '
                       f'{foreign[:5]}; strip their prefix with --strip')
    out, space, arch = convert(state)
    verify(out, space, arch)
    meta = dict(search_space=space.name, shuffle_order='interleave'
                if arch is not None else 'transpose', source=args.src)
    if arch is not None:
        meta['arch'] = list(arch)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(dict(state_dict={args.prefix + k: v for k, v in out.items()},
                    meta=meta), args.dst)
    msg = f'converted {len(out)} tensors ({space.name}) to {args.dst}'
    if arch is not None:
        path = save_arch_file(osp.splitext(args.dst)[0] + '_arch.yaml',
                              arch, space)
        msg += (f'; architecture written to {path}. Build the backbone with '
                f"arch='{path}', shuffle_order='interleave'")
    else:
        msg += '; a supernet: build it with arch=None'
    print(msg)
    return out, space, arch


if __name__ == '__main__':
    main()
