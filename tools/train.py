"""Train a detector or classifier with mmdetnas modules (mmdet's flags).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--auto-scale-lr] [--cfg-options k=v ...] [--launcher pytorch]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmdetnas.apis.tool_setup import (  # noqa: E402
    build_runner, check_checkpoint_fits, finalize_dist, fit_checkpoint_arch,
    prepare_cfg)
from mmdetnas.utils.run_files import RunFiles  # noqa: E402
from mmdetnas.utils.setup_env import register_all_modules  # noqa: E402
from tools.common import cli, parse_tool_args  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--amp', action='store_true',
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='enable automatically scaling LR by the batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or from the latest '
        'checkpoint in the work dir when no path is given')
    return parse_tool_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    register_all_modules()
    cfg = prepare_cfg(args)
    if args.auto_scale_lr:
        if cfg.get('auto_scale_lr', {}).get('base_batch_size') is None:
            raise RuntimeError('--auto-scale-lr needs auto_scale_lr.'
                               'base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not os.path.isfile(args.resume):
            raise FileNotFoundError(f'--resume checkpoint not found: '
                                    f'{args.resume!r}')
        cfg.resume = True
        cfg.load_from = args.resume
    ckpt = None
    if cfg.get('load_from') and not cfg.get('resume', False):
        # fine-tuning a subnet checkpoint: its architecture, or a refusal
        ckpt = fit_checkpoint_arch(cfg, cfg.load_from, args.cfg_options)
    files = RunFiles(cfg)
    # a model that does not build or a refused checkpoint leaves nothing
    # in the work dir (a resumed run's files are older than this Runner)
    with files.on_refusal():
        runner = files.track(build_runner(cfg))
        if ckpt is not None:
            check_checkpoint_fits(runner, ckpt, cfg.load_from)
    del ckpt
    runner.train()
    finalize_dist()


if __name__ == '__main__':
    cli(main)
