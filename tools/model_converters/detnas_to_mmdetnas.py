"""Convert reference DetNAS checkpoints (megvii-model/DetNAS) to mmdet.

    python tools/model_converters/detnas_to_mmdetnas.py IN OUT
        [--backbone-only] [--prefix P] [--strip PREFIX ...] [--config CFG]

Accepts what the reference code saves: backbones (the four released single
models and the 300M supernet), whole detectors (``{'model': ...}`` with
``module.backbone.body.*``, ``module.backbone.fpn.*``, ``module.rpn.*``,
``module.roi_heads.*``: Faster R-CNN FPN, RetinaNet) and ImageNet networks
(``last_conv``, ``fc``). The backbone is always converted; by default the
FPN, RPN, box head, RetinaNet head and classifier are mapped onto mmdet's
modules too, and keys with no mmdet counterpart are listed as dropped
(:mod:`mmdetnas.models.reference_conversion` says how).
``--backbone-only`` writes the backbone alone (bare keys, or with
``--prefix``) for ``init_cfg=dict(type='Pretrained', ...)``.

The checkpoint's ``meta`` records the search space, the architecture, the
channel-shuffle order and the dropped keys; the state dict also carries
``<backbone prefix>shuffle_order``, so loading it into a backbone built with
the other order fails instead of giving wrong features. The released single
models use ``shuffle_order='interleave'``; the configs
``configs/detnas/detnas_official_*`` build the released detectors, and
``--config`` loads the result strictly into the model of a config.

The command line over
:func:`mmdetnas.models.reference_conversion.convert_reference_file`.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from mmdetnas.models.reference_conversion import (  # noqa: E402
    DEFAULT_STRIP, BackbonePrefixError, convert_reference_file)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='reference checkpoint')
    parser.add_argument('dst', help='output mmdetnas checkpoint')
    parser.add_argument(
        '--backbone-only', action='store_true',
        help='write only the backbone (a whole detector or classifier is '
        'mapped by default)')
    parser.add_argument(
        '--prefix', default=None,
        help="prefix of the backbone keys of a backbone-only output, e.g. "
        "'backbone.' for load_from; default '' (for init_cfg Pretrained "
        "with prefix=None). Whole detectors and classifiers always use "
        "'backbone.'")
    parser.add_argument(
        '--strip', nargs='*', default=list(DEFAULT_STRIP),
        help="wrapper prefixes removed from the input keys (default "
        "'module.'; backbone.body. and similar are recognised)")
    parser.add_argument(
        '--config', help='also load the result strictly into the model of '
        'this config (e.g. configs/detnas/detnas_official_*.py)')
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        res, msg = convert_reference_file(args.src, args.dst,
                                          args.backbone_only, args.prefix,
                                          args.strip, args.config)
    except BackbonePrefixError as e:
        parser.error(str(e))
    print(msg)
    return res.backbone, res.space, res.arch


if __name__ == '__main__':
    from tools.common import cli
    cli(main)
