"""The whole DetNAS pipeline on the embedded real data, on a CPU.

    python tools/quickstart.py [--tiny] [--retinanet] [--work-dir DIR]
        [--skip-data] [--jobs N] [--seed S | --seeds S1 S2 ...]

Stages (each one a plain tools/ command, printed before it runs):
  0. data: NEON tree-crown tiles (DeepForest wheel) + Fashion-MNIST
  1. supernet pre-training on Fashion-MNIST            (tools/train.py)
  2. supernet fine-tuning, Faster R-CNN FPN (or RetinaNet) on the tiles
  3. evolutionary search + BN recalibration, CocoMetric on search_val
                                                       (tools/search.py)
  4. re-training of the best subnet and of the all-3x3 baseline with the
     same schedule, as in DetNAS: a. classification on Fashion-MNIST from
     scratch, b. detection fine-tuning on the tiles    (tools/train.py)
  5. test of both on the test split                    (tools/test.py)
It ends with a table (architecture, backbone FLOPs, search-val mAP@0.5 under
the supernet, Fashion-MNIST top-1 and search-val mAP@0.5 after re-training,
test mAP and mAP@0.5, wall time per stage), written to DIR/summary.md.

The search space is the kernel sizes of the DetNAS 300M space with a
weight-entangled supernet (docs/supernet_training.md); the search is held to
within 5% of the backbone FLOPs of the all-3x3 baseline it is compared with.
``--seed S`` seeds every stage (training, search, BN recalibration);
``--seeds 0 1 2`` runs the whole pipeline once per seed into DIR/seed_S and
writes the mean and spread to DIR/seeds_summary.md (seeds already finished
there, e.g. run in parallel as ``--seed S --work-dir DIR/seed_S``, are
collected, not run again). ``--jobs 2`` runs the two re-training branches
of stages 4-5 (searched and baseline) side by side; give each process its
share of the cores (e.g. ``OMP_NUM_THREADS=1`` on a 2-core machine). Each
stage's output goes to DIR/logs/<stage>.log (stages 4-5 per branch:
``retrain_searched.log``, ``test_baseline.log``...).

The command line over :func:`mmdetnas.apis.quickstart.run_quickstart`.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmdetnas.apis.quickstart import (StageFailed,  # noqa: E402
                                      run_quickstart)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--tiny',
        action='store_true',
        help='CI-sized schedules (a few minutes)')
    parser.add_argument(
        '--retinanet',
        action='store_true',
        help='RetinaNet supernet instead of Faster R-CNN')
    parser.add_argument('--work-dir', default='work_dirs/quickstart')
    parser.add_argument(
        '--skip-data',
        action='store_true',
        help='reuse data/ prepared by an earlier run')
    parser.add_argument(
        '--jobs', type=int, default=1, metavar='N',
        help='run the searched and baseline re-training branches side by '
        'side (N >= 2; default 1: one after the other)')
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument(
        '--seed', type=int, default=0,
        help='seed of every stage (default 0)')
    seeds.add_argument(
        '--seeds', type=int, nargs='+',
        help='run the pipeline once per seed (DIR/seed_S) and summarise '
        'mean and spread in DIR/seeds_summary.md')
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f'--jobs: expected a positive number, got {args.jobs}')
    return args


def main(argv=None):
    """Run the quickstart; a failed stage ends the program with its message
    (exit status 1)."""
    try:
        return run_quickstart(parse_args(argv))
    except StageFailed as e:
        sys.exit(str(e))


if __name__ == '__main__':
    main()
