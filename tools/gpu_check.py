"""The prepared GPU check: one command that runs the GPU and cluster path of
mmdetnas on tiny synthetic data (built here, no download) and prints one
table.

    python tools/gpu_check.py [--work-dir DIR] [--gpus N] [--smoke]
        [--out TABLE.md]

Rows: mmcv CUDA ops; supernet training under torchrun with ``--resume``;
a DetNAS search of 4 candidates, and the same on the CPU; the BN
recalibration kernels against float64; latency spread; an SM-NAS
structural search of 2 candidates; device memory after its candidate
Runners. Without CUDA the CUDA rows are skipped; ``--smoke`` shrinks every
step. Exits 1 when any check fails. What each row measures and its
tolerance: :mod:`mmdetnas.apis.gpu_check`, whose :func:`run_gpu_check` this
command line calls.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmdetnas.apis.gpu_check import run_gpu_check  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Run the GPU and cluster path of mmdetnas on tiny '
        'synthetic data and print one table (exit 1 on any failure)')
    parser.add_argument('--work-dir', default='work_dirs/gpu_check',
                        help='where the data, runs and table go (emptied '
                        'first)')
    parser.add_argument('--gpus', type=int, default=1,
                        help='processes of the torchrun training (one per '
                        'GPU; 1 on a CPU)')
    parser.add_argument('--iters', type=int, default=None,
                        help='supernet training iterations (default 30; '
                        '4 with --smoke)')
    parser.add_argument('--smoke', action='store_true',
                        help='shrink every step (CPU test of the check '
                        'itself)')
    parser.add_argument('--out', default=None,
                        help='Markdown table (default WORK_DIR/gpu_check.md)')
    args = parser.parse_args(argv)
    if args.gpus < 1:
        parser.error(f'--gpus must be >= 1, got {args.gpus}')
    if args.iters is None:
        args.iters = 4 if args.smoke else 30
    if args.iters < 2:
        parser.error(f'--iters must be >= 2 (trained to half, then '
                     f'resumed), got {args.iters}')
    return args


def main(argv=None):
    args = parse_args(argv)
    return run_gpu_check(args.work_dir, args.gpus, args.iters, args.smoke,
                         args.out)


if __name__ == '__main__':
    sys.exit(main())
