"""Test a trained model with mmdet's evaluators (mmdet's flags).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]
        [--show-dir DIR] [--cfg-options k=v ...] [--launcher pytorch]
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmdetnas.apis.tool_setup import (  # noqa: E402
    build_runner, check_checkpoint_fits, finalize_dist, fit_checkpoint_arch,
    prepare_cfg)
from mmdetnas.utils.run_files import RunFiles  # noqa: E402
from mmdetnas.utils.setup_env import register_all_modules  # noqa: E402
from tools.common import cli, parse_tool_args  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out', type=str,
        help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument(
        '--show-dir', help='directory where painted images will be saved')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    return parse_tool_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    register_all_modules()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint!r}')
    cfg = prepare_cfg(args)
    # a subnet checkpoint tests with its own architecture; a conflicting
    # one is refused (mmengine would load it partly and test another
    # network)
    ckpt = fit_checkpoint_arch(cfg, args.checkpoint, args.cfg_options)
    cfg.load_from = args.checkpoint
    if args.show_dir:
        vis = cfg.default_hooks.get('visualization')
        if vis is None:
            raise RuntimeError('--show-dir needs a visualization hook in '
                               'default_hooks')
        vis.draw = True
        vis.test_out_dir = args.show_dir
        vis.wait_time = args.wait_time
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file, got {args.out!r}')
        # mmdet 3.x registers it from mmdet.evaluation (not mmdet.utils)
        from mmdet.evaluation import DumpDetResults  # noqa: F401
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(
            cfg.test_evaluator, dict) else list(cfg.test_evaluator)
        cfg.test_evaluator.append(
            dict(type='mmdet.DumpDetResults', out_file_path=args.out))
    files = RunFiles(cfg)
    # a model that does not build (e.g. a misspelt --cfg-options key) or
    # a refused checkpoint leaves nothing in the work dir
    with files.on_refusal():
        runner = files.track(build_runner(cfg))
        check_checkpoint_fits(runner, ckpt, args.checkpoint)
    del ckpt
    metrics = runner.test()
    finalize_dist()
    return metrics


if __name__ == '__main__':
    cli(main)
