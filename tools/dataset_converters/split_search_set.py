# Copyright (c) OpenMMLab. All rights reserved.
"""Carve the DetNAS search split out of a detection training set.

    python tools/dataset_converters/split_search_set.py ANN_FILE \\
        [--num 5000] [--seed 0] [--out-dir DIR]

DetNAS searches on a random held-out subset of the *training* images
(``search_val``, 5k of COCO ``train2017``) and trains the supernet on the
rest (``supernet_train``). ANN_FILE is a COCO json or a Pascal VOC
image-set list (.txt); the two parts are written beside it (or into
``--out-dir``) as ``<stem>_supernet_train`` and ``<stem>_search_val``. The
command line over
:func:`mmdetnas.datasets.converters.search_split.split_search_set` (its
module says how each format is split).

Example::

    python tools/dataset_converters/split_search_set.py \\
        data/coco/annotations/instances_train2017.json \\
        --num 5000 --seed 0 --out-dir data/coco/annotations
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from mmdetnas.datasets.converters.search_split import (  # noqa: E402
    split_search_set)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Split a detection training set into the DetNAS '
        'supernet_train / search_val subsets.')
    parser.add_argument(
        'ann_file',
        help='COCO annotation json or VOC image-set list (.txt) of the '
        'training set')
    parser.add_argument(
        '--num',
        type=int,
        default=5000,
        help='number of images put in search_val (default: 5000)')
    parser.add_argument(
        '--seed', type=int, default=0, help='random seed (default: 0)')
    parser.add_argument(
        '--out-dir',
        default=None,
        help='output folder (default: the folder of ANN_FILE)')
    return parser, parser.parse_args(argv)


def main(argv=None):
    """Command-line entry point; ``argv`` defaults to ``sys.argv[1:]``.

    Returns:
        tuple[str, str]: Paths of the written supernet_train and search_val
        files.
    """
    parser, args = parse_args(argv)
    try:
        return split_search_set(args.ann_file, args.num, args.seed,
                                args.out_dir)
    except (ValueError, FileNotFoundError) as e:
        parser.error(str(e))


if __name__ == '__main__':
    main()
