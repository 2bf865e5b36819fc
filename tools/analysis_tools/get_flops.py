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
"""
import argparse
import copy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from mmengine.config import Config, DictAction  # noqa: E402

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


def get_flops(cfg: Config, arch=None, shape=None) -> dict:
    """Both FLOPs counts of ``cfg.model`` with path ``arch``.

    Args:
        cfg (Config): A config whose model has a
            :class:`mmdetnas.models.DetNASShuffleNetV2` backbone.
        arch (str | list, optional): Path to activate, anything
            :func:`mmdetnas.search.resolve_arch` accepts (comma-separated
            choices, an official name, a file, a list); required for a
            supernet config.
        shape (tuple[int], optional): ``(H, W)`` of the whole-model count;
            default 800x1333 for detectors, 224x224 otherwise.

    Returns:
        dict: ``arch`` (list of choice names), ``backbone_flops`` (MACs,
        DetNAS convention), ``backbone_params``, ``model_flops`` (MACs at
        ``shape``), ``model_params``, ``shape``. The whole-model numbers are
        those of the model with a fixed ``arch`` backbone (a supernet config
        is built again as that subnet); ``cfg`` is not modified.

    Raises:
        ValueError: the model has no DetNASShuffleNetV2, a supernet config
            without ``arch``, an ``arch`` that differs from the config's
            fixed one, or an invalid ``arch`` (message naming it).
        FileNotFoundError: ``arch`` names no official architecture and no
            existing file.
    """
    from mmdet.models.detectors import BaseDetector
    from mmdet.registry import MODELS

    from mmdetnas.models.backbones import DetNASShuffleNetV2
    from mmdetnas.search import arch_cost
    from mmdetnas.spaces import resolve_arch
    from mmdetnas.search.model_cost import model_flops
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.pop('init_cfg', None)

    def build():
        model = MODELS.build(cfg.model).eval()
        found = [m for m in model.modules()
                 if isinstance(m, DetNASShuffleNetV2)]
        if not found:
            raise ValueError('the model has no mmdetnas.DetNASShuffleNetV2')
        return model, found[0]

    model, backbone = build()
    if arch is not None:
        arch = resolve_arch(arch, backbone.search_space)[1]
        if backbone.is_supernet:
            # count the subnet as it is deployed: the whole-model params of
            # the supernet would include every unchosen block
            cfg.model.backbone.arch = list(arch)
            model, backbone = build()
        elif arch != backbone.fixed_arch:
            raise ValueError(
                f'--arch {list(arch)} differs from the fixed arch of the '
                f'config {list(backbone.fixed_arch)}')
    if backbone.arch is None:
        raise ValueError('this config builds a supernet: pass --arch '
                         '(comma-separated choice names or indices, an '
                         'official name or an architecture file)')
    if shape is None:
        shape = (800, 1333) if isinstance(model, BaseDetector) else (224, 224)
    flops, params = arch_cost(backbone.search_space, backbone.arch)
    return dict(
        arch=list(backbone.arch), backbone_flops=flops,
        backbone_params=params, model_flops=model_flops(model, shape),
        model_params=sum(p.numel() for p in model.parameters()),
        shape=tuple(shape))


def main(argv=None):
    args = parse_args(argv)
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    r = get_flops(cfg, args.arch, args.shape)
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
