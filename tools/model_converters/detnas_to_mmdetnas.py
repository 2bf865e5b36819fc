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
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

import torch  # noqa: E402

from mmdetnas.models.reference_conversion import (  # noqa: E402
    DEFAULT_STRIP, convert_reference_checkpoint, verify_config)
from mmdetnas.spaces.arch import save_arch_file  # noqa: E402
from mmdetnas.utils.checkpoint import load_local_checkpoint  # noqa: E402


def main(argv=None):
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
    args = parser.parse_args(argv)
    ckpt = load_local_checkpoint(args.src, map_location='cpu')
    try:
        res = convert_reference_checkpoint(ckpt, args.backbone_only,
                                           args.prefix, tuple(args.strip))
    except TypeError as e:
        if 'holds no state dict' in str(e):  # name the file; bad input
            raise ValueError(f'{args.src!r}: {e}') from None
        raise
    except ValueError as e:
        if args.prefix is not None and 'prefix' in str(e):
            parser.error(str(e))
        raise
    if args.config:
        verify_config(res.state_dict, args.config)
    meta = dict(search_space=res.space.name, shuffle_order=res.shuffle_order,
                source=args.src, dropped=res.dropped, settings=res.settings)
    if res.arch is not None:
        meta['arch'] = list(res.arch)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(dict(state_dict=res.state_dict, meta=meta), args.dst)
    what = dict(detector='a whole detector', classifier='a classifier',
                backbone='the backbone')[res.what]
    msg = (f'converted {what} ({len(res.state_dict)} tensors, '
           f'{res.space.name}) to {args.dst}')
    if res.dropped:
        msg += (f'\ndropped {len(res.dropped)} key(s) with no mmdet '
                f'counterpart (kept out on purpose): {res.dropped[:8]}'
                + (' ...' if len(res.dropped) > 8 else ''))
    if res.arch is not None:
        path = save_arch_file(osp.splitext(args.dst)[0] + '_arch.yaml',
                              res.arch, res.space)
        msg += (f'\narchitecture written to {path}. Build the backbone with '
                f"arch='{path}', shuffle_order='interleave'")
    else:
        msg += '\na supernet: build it with arch=None'
    print(msg)
    return res.backbone, res.space, res.arch


if __name__ == '__main__':
    from tools.common import cli
    cli(main)
