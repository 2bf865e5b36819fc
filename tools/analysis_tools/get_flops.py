"""FLOPs of a config's model, under both conventions, clearly labelled.

    python tools/analysis_tools/get_flops.py CONFIG [--arch ARCH]
        [--shape H W] [--cfg-options k=v ...]

1. Backbone FLOPs, DetNAS convention: backbone only (stem + searchable
   layers, no last conv), 1x3x224x224, Conv2d+Linear MACs only. This is the
   number the search constrains and the paper reports (0.3G, 1.3G, 3.8G).
2. Whole-model FLOPs at the given input size (default 800x1333 for
   detectors, 224x224 for classifiers): every operator mmengine.analysis
   counts, backbone to raw head outputs, no post-processing.
All FLOPs are multiply-accumulates (MACs), counted by mmengine.analysis.

The command line over :func:`mmdetnas.search.model_cost.config_flops`.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from mmengine.config import Config, DictAction  # noqa: E402

from mmdetnas.search.model_cost import config_flops  # noqa: E402
from mmdetnas.spaces.arch import arch_argument  # noqa: E402
from mmdetnas.utils.setup_env import register_all_modules  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Count FLOPs (MACs)')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--arch', type=arch_argument,
        help='architecture: comma-separated choice names or indices (one '
        'per layer), an official name or an architecture file; required for '
        'a supernet config')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='whole-model input size')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    r = config_flops(cfg, args.arch, args.shape)
    h, w = r['shape']
    line = '=' * 72
    print(f"{line}\narchitecture: {r['arch']}\n"
          f"backbone FLOPs (DetNAS convention: backbone only, 1x3x224x224, "
          f"Conv2d+Linear MACs): {r['backbone_flops'] / 1e9:.4f} GMACs\n"
          f"backbone params: {r['backbone_params'] / 1e6:.3f} M\n"
          f"whole-model FLOPs at input 1x3x{h}x{w} (all operators, MACs): "
          f"{r['model_flops'] / 1e9:.4f} GMACs\n"
          f"whole-model params: {r['model_params'] / 1e6:.3f} M\n{line}")
    return r


if __name__ == '__main__':
    from tools.common import cli
    cli(main)
