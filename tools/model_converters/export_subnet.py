"""Slice a subnet out of a supernet checkpoint.

    python tools/model_converters/export_subnet.py SUPERNET_CKPT ARCH OUT_CKPT
        [--prefix backbone.] [--search-space 300M]

Keeps the chosen block of every searchable layer (and everything else of the
model, e.g. the detector's neck and heads, unchanged); drops optimizer state.
The result loads with ``strict=True`` into a config whose backbone has
``arch=ARCH`` (``load_from=OUT_CKPT``, or
``init_cfg=dict(type='Pretrained', checkpoint=OUT_CKPT, prefix='backbone.')``
for the backbone alone). ARCH is an architecture file, an official name or a
comma-separated list of choice names/indices; it is checked against the
search space of the checkpoint (recorded in its meta, or told from its keys:
number of layers, choices held, stem width), and an architecture of another
space is refused naming both. The command line over
:func:`mmdetnas.search.export_subnet`.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from mmdetnas.search.export import export_subnet  # noqa: E402
from mmdetnas.spaces.arch import arch_argument  # noqa: E402


def parse_args(argv=None):
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
        help="search space of the checkpoint (preset name): needed only "
        "when the checkpoint records none and its keys identify no preset "
        "(a custom space); otherwise it must be the checkpoint's")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    meta = export_subnet(args.checkpoint, args.arch, args.out, args.prefix,
                         args.search_space)
    print(f"exported subnet ({meta['flops'] / 1e6:.2f}M MACs backbone "
          f"FLOPs at 224x224, {meta['params'] / 1e6:.3f}M params) to "
          f'{args.out}')


if __name__ == '__main__':
    from tools.common import cli
    cli(main)
