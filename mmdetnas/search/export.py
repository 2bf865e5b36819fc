"""Subnet export: slice one path out of a supernet checkpoint (DetNAS
Sec. 3.3: the searched subnet starts re-training from its supernet weights,
or is re-trained from scratch). ``tools/model_converters/export_subnet.py``
is the command line over :func:`export_subnet`.

The architecture is checked against the search space of the checkpoint, not
a default one: the space recorded in the checkpoint's ``meta`` (written by
the toolkit's trainings and exports), or, for a checkpoint without it, the
preset that its keys ``<prefix>layers.<i>.<choice>.`` (number of layers,
choices held) and stem width identify (:func:`checkpoint_search_space`).
"""
import os
import os.path as osp
import re
from typing import Optional, Tuple

import torch

from mmdetnas.models.backbones import slice_supernet_state_dict
from mmdetnas.search.flops import arch_cost
from mmdetnas.spaces.arch import (OFFICIAL_ARCHS, Arch, _validate,
                                  parse_arch, parse_arch_text,
                                  save_arch_file)
from mmdetnas.spaces.search_space import (CHOICE_KERNELS, CHOICES, PRESETS,
                                          SearchSpace, build_search_space)
from mmdetnas.utils.checkpoint import load_local_checkpoint

_LAYER_KEY = re.compile(r'^(?P<prefix>.*?)layers\.(?P<i>\d+)\.(?P<c>\w+?)\.')


def _label(space: SearchSpace) -> str:
    return f'{space.num_layers} layers / {space.name}'


def checkpoint_search_space(state: dict, prefix: str = 'backbone.',
                            meta: Optional[dict] = None
                            ) -> Tuple[Optional[SearchSpace], dict]:
    """The search space of a supernet checkpoint.

    Args:
        state (dict): its state dict.
        prefix (str): prefix of the backbone keys.
        meta (dict, optional): its ``meta``; a ``search_space`` there (a
            preset name or a space's ``to_dict()``) is the answer.

    Returns:
        (SearchSpace | None, dict): the space (``None`` when it cannot be
        told) and what was seen: ``source`` (``'meta'``, ``'keys'`` or
        ``'none'``), ``num_layers``, ``held`` (choices with weights of
        their own), ``choices`` (the choices those weights serve: with
        kernel weight sharing every layer holds only its largest ``k x k``
        block, which serves the smaller kernels too) and ``candidates``
        (the presets that fit the keys).

    Raises:
        ValueError: the ``meta`` records a search space that cannot be
            built.
    """
    layers = {}
    stem = None
    for k, v in state.items():
        m = _LAYER_KEY.match(k)
        if m and m.group('prefix') == prefix:
            layers.setdefault(int(m.group('i')), set()).add(m.group('c'))
        elif k == f'{prefix}stem.conv.weight' and hasattr(v, 'shape'):
            stem = int(v.shape[0])
    held = set().union(*layers.values()) if layers else set()
    entangled = bool(layers) and all(
        sum(c != 'shuffle_xception' for c in cs) <= 1
        for cs in layers.values())
    served = set(held)
    kernels = [CHOICE_KERNELS[c] for c in held
               if c in CHOICE_KERNELS and c != 'shuffle_xception']
    if entangled and kernels:
        served |= {c for c, k in CHOICE_KERNELS.items()
                   if c != 'shuffle_xception' and k <= max(kernels)}
    info = dict(
        num_layers=max(layers) + 1 if layers else 0,
        held=[c for c in CHOICES if c in held] + sorted(held - set(CHOICES)),
        choices=[c for c in CHOICES if c in served])
    info['candidates'] = [
        p.name for p in PRESETS.values()
        if p.num_layers == info['num_layers'] and set(p.choices) == served
        and (stem is None or p.stem_channels == stem)
    ]
    recorded = (meta or {}).get('search_space') if isinstance(
        meta, dict) else None
    if recorded is not None:
        try:
            space = build_search_space(recorded)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(
                f'the checkpoint records a search space that cannot be '
                f'built ({recorded!r:.200}): {e}') from e
        return space, dict(info, source='meta')
    if len(info['candidates']) == 1:
        return PRESETS[info['candidates'][0]], dict(info, source='keys')
    return None, dict(info, source='none')


def _describe_checkpoint(space: Optional[SearchSpace], info: dict) -> str:
    if space is not None:
        return _label(space)
    return (f"{info['num_layers']} layers / unknown space (choices "
            f"{info['choices']})")


def resolve_checkpoint_arch(arch, ckpt_space: Optional[SearchSpace],
                            info: dict, ckpt_path: str,
                            search_space=None) -> Tuple[SearchSpace, Arch]:
    """Validate ``arch`` against the search space of a checkpoint.

    Args:
        arch (str | list): anything :func:`resolve_arch` accepts.
        ckpt_space (SearchSpace | None): the checkpoint's space
            (:func:`checkpoint_search_space`), ``None`` when unknown.
        info (dict): what :func:`checkpoint_search_space` saw.
        ckpt_path (str): the checkpoint (for the messages).
        search_space (str | dict, optional): the space the user named; it
            must be the checkpoint's when that is known.

    Returns:
        (SearchSpace, Arch)

    Raises:
        ValueError: ``search_space`` or the space of an architecture file
            or official name is not the checkpoint's; a list of another
            length, an unknown choice or an index out of range for the
            checkpoint's space; the checkpoint's space cannot be told and
            none was given for a list of choices.
    """
    given = (build_search_space(search_space)
             if search_space is not None else None)
    where = f'checkpoint {ckpt_path!r}'
    if ckpt_space is not None and given is not None and given != ckpt_space:
        raise ValueError(
            f'search space {given.name!r} ({_label(given)}) is not the '
            f'search space of {where} '
            f'({_describe_checkpoint(ckpt_space, info)}); drop '
            '--search-space or use a supernet of that space')
    space = ckpt_space or given
    form = parse_arch_text(arch) if isinstance(arch, str) else arch
    if not isinstance(form, str):  # a list of choices
        if space is None:
            raise ValueError(
                f'cannot tell the search space of {where}: '
                f'{_describe_checkpoint(None, info)}, presets that fit '
                f"{info['candidates'] or 'none'}; pass --search-space "
                f'(one of {list(PRESETS)}) or an architecture file')
        source = (f'architecture {arch!r}' if isinstance(arch, str)
                  else 'arch')
        return space, _validate(
            form, space, f"{source} (the checkpoint's search space "
            f'{space.name!r})')
    kind = ('official architecture' if form in OFFICIAL_ARCHS
            else 'architecture file')
    which = 'file' if kind == 'architecture file' else 'official name'
    fspace, farch = parse_arch(form)
    if space is not None and fspace != space:
        raise ValueError(
            f'{kind} {arch!r} belongs to another search space ({which}: '
            f'{_label(fspace)}, checkpoint: '
            f'{_describe_checkpoint(space, info)}); export it from a '
            f'supernet of {fspace.name!r}, or use an architecture of '
            f'{space.name!r}')
    if space is None and info['num_layers'] and (
            fspace.num_layers != info['num_layers']
            or not set(fspace.choices) <= set(info['choices'])):
        raise ValueError(
            f'{kind} {arch!r} belongs to another search space ({which}: '
            f'{_label(fspace)}, checkpoint: '
            f'{_describe_checkpoint(None, info)})')
    return fspace, farch


def export_subnet(ckpt_path: str, arch, out_path: str,
                  prefix: str = 'backbone.', search_space=None) -> dict:
    """Write the sliced checkpoint; returns its ``meta``.

    Args:
        ckpt_path (str): Supernet checkpoint.
        arch (str | list): Anything :func:`mmdetnas.search.resolve_arch`
            accepts: comma-separated choice names/indices, an official
            name, an architecture file, or a list; checked against the
            checkpoint's search space (:func:`checkpoint_search_space`).
        out_path (str): Output checkpoint; ``<out>_arch.yaml`` is written
            beside it.
        prefix (str): Key prefix of the backbone in the checkpoint.
        search_space (str | dict, optional): Search space of ``arch``: must
            be the checkpoint's when its ``meta`` records one or its keys
            identify a preset; needed for a list of choices otherwise.

    Returns:
        dict: the ``meta`` of the written checkpoint.

    Raises:
        FileNotFoundError / RuntimeError: missing or corrupt checkpoint.
        ValueError: a checkpoint that holds no state dict; an invalid
            ``arch`` (see :func:`resolve_checkpoint_arch`: wrong length,
            unknown choice, index out of range, another search space than
            the checkpoint's, the message names both).
        FileNotFoundError: an ``arch`` text that is no list, official name
            nor existing file.
        KeyError: no searchable layer under ``prefix`` in the checkpoint,
            or it lacks a chosen block.
    """
    ckpt = load_local_checkpoint(ckpt_path, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    if not isinstance(state, dict):
        raise ValueError(
            f'checkpoint {ckpt_path!r} holds no state dict (got a '
            f'{type(state).__name__}); expected a supernet checkpoint')
    meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else None
    ckpt_space, info = checkpoint_search_space(state, prefix, meta)
    if not info['num_layers']:
        found = sorted({m.group('prefix') for m in map(
            _LAYER_KEY.match, state) if m})
        raise KeyError(
            f'checkpoint {ckpt_path!r} has no searchable layer under the '
            f'prefix {prefix!r} (keys {prefix}layers.<i>.<choice>.*); '
            + (f'prefixes found: {found} (--prefix)' if found else
               'is it a DetNAS supernet checkpoint?'))
    space, arch = resolve_checkpoint_arch(arch, ckpt_space, info, ckpt_path,
                                          search_space)
    sliced = slice_supernet_state_dict(state, arch, prefix=prefix)
    flops, params = arch_cost(space, arch)
    meta = dict(ckpt.get('meta', {}) or {})
    meta.update(
        arch=list(arch), search_space=space.to_dict(), flops=flops,
        params=params, source_checkpoint=osp.abspath(ckpt_path))
    os.makedirs(osp.dirname(osp.abspath(out_path)), exist_ok=True)
    torch.save(dict(state_dict=sliced, meta=meta), out_path)
    save_arch_file(osp.splitext(out_path)[0] + '_arch.yaml', arch, space,
                   meta=dict(flops=flops, params=params))
    return meta
