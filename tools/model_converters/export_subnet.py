"""Slice a subnet out of a supernet checkpoint.

    python tools/model_converters/export_subnet.py SUPERNET_CKPT ARCH OUT_CKPT
        [--prefix backbone.] [--search-space 300M]

Keeps the chosen block of every searchable layer (and everything else of the
model, e.g. the detector's neck and heads, unchanged); drops optimizer state.
The result loads with ``strict=True`` into a config whose backbone has
``arch=ARCH`` (``load_from=OUT_CKPT``, or
``init_cfg=dict(type='Pretrained', checkpoint=OUT_CKPT, prefix='backbone.')``
for the backbone alone). ARCH is an architecture file, an official name or a
comma-separated list of choice names/indices.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

import torch  # noqa: E402

from mmdetnas.models.backbones import slice_supernet_state_dict  # noqa: E402
from mmdetnas.spaces.arch import (arch_argument, resolve_arch,  # noqa: E402
                                  save_arch_file)
from mmdetnas.search.flops import arch_cost  # noqa: E402
from mmdetnas.utils.checkpoint import load_local_checkpoint  # noqa: E402


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('checkpoint', help='supernet checkpoint')
    parser.add_argument(
        'arch', type=arch_argument,
        help='architecture: comma-separated choice names or indices (one '
        'per layer), an official name or an architecture file')
    parser.add_argument('out', help='output checkpoint')
    parser.add_argument(
        '--prefix', default='backbone.',
        help="key prefix of the backbone ('' for a bare backbone)")
    parser.add_argument(
        '--search-space',
        help="search space of a comma-separated ARCH (preset name, default "
        "'300M'; a file or official name carries its own)")
    args = parser.parse_args(argv)
    meta = export_subnet(args.checkpoint, args.arch, args.out, args.prefix,
                         args.search_space)
    print(f"exported subnet ({meta['flops'] / 1e6:.2f}M MACs backbone "
          f"FLOPs at 224x224, {meta['params'] / 1e6:.3f}M params) to "
          f'{args.out}')


if __name__ == '__main__':
    main()
