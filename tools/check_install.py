"""The install check of ``tools/install.sh``, also usable on its own.

``python tools/check_install.py`` imports mmdetnas, mmdet and ``mmcv.ops``,
prints their versions and, where ``torch.cuda.is_available()``, runs
``mmcv.ops.nms`` and ``mmcv.ops.roi_align`` on small CUDA tensors and checks
them against hand-derivable values and against the same ops on CPU tensors.
An mmcv built with CPU ops only fails that check (mmcv raises ``nms_impl:
implementation for device cuda:0 not found.``); the script then exits with 1
and prints the rebuild command. Without CUDA it says why the check was
skipped.

Modes for ``tools/install.sh``:

* ``--want-cuda`` prints ``1`` when mmcv should be built with its CUDA ops
  and ``0`` otherwise (see :func:`want_cuda`); a bad ``MMCV_WITH_CUDA`` or a
  CUDA build that cannot work exits with 2 and says why;
* ``--expect cuda`` also fails when mmcv's ops were compiled without CUDA,
  even where no GPU is visible (e.g. a build node); ``--expect cpu`` (CPU ops
  asked for with ``MMCV_WITH_CUDA=0``) reports a failed CUDA check as a
  warning only;
* ``--mmcv-only`` imports ``mmcv.ops`` but not mmdetnas or mmdet (the reuse
  check, before mmdetnas is installed).

The command line over :mod:`mmdetnas.utils.install_check`, which it loads
from its file: it runs before mmdetnas and its dependencies are installed.
Nothing heavy is imported at module level, and ``--want-cuda`` does not
import torch (it reads ``torch/version.py``) unless CUDA ops are wanted
without ``TORCH_CUDA_ARCH_LIST`` (then it counts the visible GPUs).
"""
import argparse
import importlib.util
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_install_check():
    """``mmdetnas/utils/install_check.py`` loaded from its file, without
    importing the mmdetnas package (whose ``__init__`` imports torch, and
    which may not be installed yet)."""
    name = 'mmdetnas_install_check'
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, osp.join(ROOT, 'mmdetnas', 'utils', 'install_check.py'))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def parse_args(argv=None):
    """The command line."""
    parser = argparse.ArgumentParser(
        description='Check the mmdetnas install: imports, versions and, '
        'where a GPU is visible, mmcv\'s CUDA ops.')
    parser.add_argument(
        '--want-cuda', action='store_true',
        help='print 1 if tools/install.sh should build mmcv\'s CUDA ops, '
        'else 0 (from MMCV_WITH_CUDA, nvcc on PATH and torch.version.cuda)')
    parser.add_argument(
        '--expect', choices=('any', 'cuda', 'cpu'), default='any',
        help='cuda: also fail when mmcv\'s ops were compiled without CUDA, '
        'even with no GPU visible; cpu: CPU ops were asked for, a failed '
        'CUDA check is only a warning (default: any)')
    parser.add_argument(
        '--mmcv-only', action='store_true',
        help='import mmcv.ops but not mmdetnas and mmdet')
    return parser.parse_args(argv)


def main(argv=None):
    """Run the check; return the exit status (0 ok, 1 check failed, 2 bad
    environment for --want-cuda)."""
    args = parse_args(argv)
    check = load_install_check()
    if args.want_cuda:
        return check.print_want_cuda()
    return check.check_install(args.expect, args.mmcv_only)


if __name__ == '__main__':
    sys.exit(main())
