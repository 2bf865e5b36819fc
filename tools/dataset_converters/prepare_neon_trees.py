# Copyright (c) OpenMMLab. All rights reserved.
"""Build a small real detection set of tree crowns (NEON / DeepForest).

    python tools/dataset_converters/prepare_neon_trees.py \\
        [--out-dir data/neon_trees] [--wheel WHEEL] [--tile 400] [--seed 0]

Tiles the NEON aerial orthophotos and the DeepForest tree-crown boxes shipped
as example data in the ``deepforest==2.1.0`` wheel (read with zipfile, not
installed; downloaded with pip unless ``--wheel``) into the COCO and Pascal
VOC splits ``supernet_train``, ``search_val`` and ``test``. Origin, licence,
tiling, box conventions and the output layout: the library module
:mod:`mmdetnas.datasets.converters.neon_trees`, whose
:func:`prepare_neon_trees` this command line calls.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from mmdetnas.datasets.converters.neon_trees import (  # noqa: E402
    MIN_SIZE, PIP_SPEC, WHEEL_NAME, SourceError, prepare_neon_trees)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Tile the NEON tree-crown images shipped in the '
        f'{PIP_SPEC} wheel into a small COCO + VOC detection set.')
    parser.add_argument(
        '--out-dir',
        default='data/neon_trees',
        help='output folder (default: data/neon_trees)')
    parser.add_argument(
        '--wheel',
        default=None,
        help=f'path of {WHEEL_NAME}; default: download it with pip into '
        'OUT_DIR/downloads (reused when already there)')
    parser.add_argument(
        '--tile', type=int, default=400, help='tile size in px (default 400)')
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='seed of the supernet_train/search_val split (default 0)')
    return parser, parser.parse_args(argv)


def main(argv=None):
    """Command-line entry point; ``argv`` defaults to ``sys.argv[1:]``.

    Returns:
        dict[str, dict]: The COCO dict written for each split.
    """
    parser, args = parse_args(argv)
    if args.tile < 2 * MIN_SIZE:
        parser.error(f'--tile must be >= {2 * MIN_SIZE} px, got {args.tile}')
    try:
        return prepare_neon_trees(args.out_dir, args.wheel, args.tile,
                                  args.seed)
    except SourceError as e:
        parser.error(str(e))


if __name__ == '__main__':
    main()
