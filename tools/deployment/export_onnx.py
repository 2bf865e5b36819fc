"""Export a searched network to ONNX and check it against PyTorch.

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT [--arch ARCH]
        [--shape H W] --out FILE [--backend {onnxruntime,openvino}]
        [--cfg-options k=v ...]

Exports the backbone and neck, plus the dense head of a one-stage detector
(RetinaNet, FCOS, ...), from a ``1 x 3 x H x W`` image to raw outputs. The
RPN, RoI heads, box decoding and NMS stay in PyTorch (mmdet's
post-processing). The file holds standard ONNX operators only: it runs with
ONNX Runtime or OpenVINO without torch or mmdetnas installed. The tool
prints the largest absolute difference between the backend's outputs and
PyTorch's and fails beyond float tolerance.

The command line over :func:`mmdetnas.apis.deploy.export_checkpoint`.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from mmengine.config import Config, DictAction  # noqa: E402

from mmdetnas.spaces.arch import arch_argument  # noqa: E402
from mmdetnas.utils.setup_env import register_all_modules  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export a searched network to ONNX')
    parser.add_argument('config', help='config file (supernet or subnet)')
    parser.add_argument('checkpoint', help='subnet or supernet checkpoint')
    parser.add_argument(
        '--arch', type=arch_argument,
        help='architecture: comma-separated choice names or indices, an '
        'official name or an architecture file (e.g. best_arch.yaml); '
        'default: the one the checkpoint records')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size (default 800 1333 for detectors, '
                        '224 224 otherwise)')
    parser.add_argument('--out', required=True, help='the .onnx file')
    parser.add_argument('--backend', default='onnxruntime',
                        choices=['onnxruntime', 'openvino'],
                        help='backend that checks the exported outputs')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None):
    from mmdetnas.apis.deploy import export_checkpoint
    args = parse_args(argv)
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    r = export_checkpoint(cfg, args.checkpoint, args.out, args.arch,
                          args.shape, args.backend)
    print(f"wrote {r['out']}: {' + '.join(r['parts'])} of architecture "
          f"{','.join(r['arch'])}, input 1x3x{r['shape'][0]}x{r['shape'][1]}"
          f", {len(r['outputs'])} outputs\n"
          f"{args.backend} vs PyTorch: max abs difference "
          f"{r['max_abs_diff']:.3g}")
    return r


if __name__ == '__main__':
    from tools.common import cli
    cli(main)
