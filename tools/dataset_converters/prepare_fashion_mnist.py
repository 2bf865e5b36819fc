"""Write Fashion-MNIST in the ImageNet layout (the quickstart's stand-in for
ImageNet supernet pre-training).

    python tools/dataset_converters/prepare_fashion_mnist.py \\
        --out-dir data/fashion_mnist [--src /usr/share/datasets/fashion-mnist]
        [--num-train N] [--num-val M] [--size 64] [--seed 0]

Reads the four ``*-ubyte.gz`` files of the Debian package
``dataset-fashion-mnist`` (or ``--src``) and writes
``OUT/{train,val}/<class>/<index>.png`` and ``OUT/meta/*.txt``, what
:class:`mmdetnas.datasets.ImageNetDataset` reads. The command line over
:func:`mmdetnas.datasets.converters.fashion_mnist.prepare_fashion_mnist`
(its module describes the source, licence and layout).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from mmdetnas.datasets.converters.fashion_mnist import (  # noqa: E402
    DEFAULT_SRC, prepare_fashion_mnist)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--src', default=DEFAULT_SRC,
                        help='folder with the four *-ubyte.gz files')
    parser.add_argument('--out-dir', default='data/fashion_mnist')
    parser.add_argument('--num-train', type=int, default=None)
    parser.add_argument('--num-val', type=int, default=None)
    parser.add_argument('--size', type=int, default=64,
                        help='output side in pixels (upsampled from 28)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    """Command-line entry point; returns the images written per split. An
    input error ends the program with its message (exit status 1)."""
    args = parse_args(argv)
    try:
        return prepare_fashion_mnist(args.src, args.out_dir, args.num_train,
                                     args.num_val, args.size, args.seed)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(str(e))


if __name__ == '__main__':
    main()
