"""Subnet export: slice one path out of a supernet checkpoint (DetNAS
Sec. 3.3: the searched subnet starts re-training from its supernet weights,
or is re-trained from scratch). ``tools/model_converters/export_subnet.py``
is the command line over :func:`export_subnet`."""
import os
import os.path as osp

import torch

from mmdetnas.models.backbones import slice_supernet_state_dict
from mmdetnas.search.flops import arch_cost
from mmdetnas.spaces.arch import resolve_arch, save_arch_file
from mmdetnas.utils.checkpoint import load_local_checkpoint


def export_subnet(ckpt_path: str, arch, out_path: str,
                  prefix: str = 'backbone.', search_space=None) -> dict:
    """Write the sliced checkpoint; returns its ``meta``.

    Args:
        ckpt_path (str): Supernet checkpoint.
        arch (str | list): Anything :func:`mmdetnas.search.resolve_arch`
            accepts: comma-separated choice names/indices, an official
            name, an architecture file, or a list.
        out_path (str): Output checkpoint; ``<out>_arch.yaml`` is written
            beside it.
        prefix (str): Key prefix of the backbone in the checkpoint.
        search_space (str | dict, optional): Search space of ``arch``
            (default: the file's or official name's, ``'300M'`` for a list).

    Returns:
        dict: the ``meta`` of the written checkpoint.

    Raises:
        FileNotFoundError / RuntimeError: missing or corrupt checkpoint.
        ValueError / FileNotFoundError: an invalid ``arch`` (see
            :func:`mmdetnas.search.parse_arch`).
        KeyError: the checkpoint lacks a chosen block (wrong search space
            or prefix).
    """
    ckpt = load_local_checkpoint(ckpt_path, map_location='cpu')
    state = ckpt.get('state_dict', ckpt)
    space, arch = resolve_arch(arch, search_space)
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
