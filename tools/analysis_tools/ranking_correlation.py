"""Does the supernet rank architectures like stand-alone training does?

    python tools/analysis_tools/ranking_correlation.py SEARCH_CONFIG \\
        SUPERNET_CKPT --subnet-config SUBNET_CONFIG --work-dir DIR \\
        [--num-archs N] [--flops-band LO HI | --from-candidates JSONL |
         --arch-file ARCH ARCH ...] [--standalone-key coco/bbox_mAP_50]
        [--topk K] [--seed S] [--pool P] [--standalone-opts k=v ...]
        [--more-checkpoints CKPT ...]
        [--print-commands [--gpus N] [--slurm PARTITION]]
        [--cfg-options k=v ...] [--launcher pytorch|slurm|mpi]

The evaluation of the search phase of Yu et al., "Evaluating the search phase
of neural architecture search" (ICLR 2020):

1. pick N architectures: spread evenly over a band of backbone FLOPs (default
   ``[0.9 * max, max]`` of the search config's ``train_cfg.flops``), over the
   score ranking of a finished search (``--from-candidates``), or given
   (``--arch-file``, alias ``--arch``: architecture files, official names or
   comma-separated choices);
2. stage A: score each with the supernet exactly as ``tools/search.py`` does
   (the search config's runner, the checkpoint, then
   ``EvolutionSearchLoop.score_candidates``: BN recalibration and
   evaluation on the search split);
3. stage B: train each stand-alone with ``tools/train.py SUBNET_CONFIG``
   (``model.backbone.arch=DIR/archs/<indices>.yaml`` plus
   ``--standalone-opts``) into ``DIR/standalone/<indices>`` and read the
   ``--standalone-key`` metric of its final validation;
4. report Kendall tau (with its p-value), Spearman rho and top-k overlap
   between the two rankings, next to the free proxies backbone FLOPs and
   params (a higher value predicts a better architecture): ``ranking.json``,
   ``ranking.md`` and ``ranking.png`` in DIR.

``--more-checkpoints``: further supernets of the same recipe (e.g. trained
with other seeds) score the same architectures in stage A; the report adds
each one's agreement with stand-alone training and the supernets' agreement
with each other (Kendall tau between their rankings). That agreement needs
no stand-alone training: with ``--print-commands`` it is logged and written
to ``DIR/supernet_agreement.json`` before any training. Supernets that rank
differently from one another cannot rank architectures reliably.

Every finished result goes into ``DIR/ranking_state.json`` at once, so a
killed run continues where it stopped when started again with the same
arguments (a killed training continues with ``--resume``). A stand-alone work
dir that already holds a finished training is read, not trained again: run
the ``--print-commands`` lines (``DIR/train_commands.sh``) on GPUs or as
Slurm jobs, then run this tool again to collect the results. Those lines
train with the subnet config's own recipe (only the architecture file, the
work dir and ``--standalone-opts`` are set): ``python tools/train.py`` with
``--gpus 1`` (default), ``tools/dist_train.sh SUBNET_CONFIG N`` with
``--gpus N`` (N > 1), ``GPUS=N GPUS_PER_NODE=min(N, 8)
tools/slurm_train.sh PARTITION JOB_NAME ...`` with ``--slurm PARTITION``.

Several processes (``--launcher pytorch`` under torchrun, ``slurm`` under
srun, ``mpi``) score stage A together, as ``tools/search.py`` does: in the
search loop's ``'candidate'`` mode (its default with several processes) rank
``j`` scores architecture ``j`` of each batch of ``world_size`` and the
records are gathered in order; in ``'data'`` mode
(``--cfg-options train_cfg.parallel=data``) all ranks score each
architecture together. The scores are those of one process; only rank 0
writes files. A multi-process run stops after stage A as with
``--print-commands`` (stand-alone trainings are started only by a
single-process run, which never holds other ranks waiting on it): run the
written lines, then this tool again in one process to collect the results
(stage A is then read from the state).

The command line over :func:`mmdetnas.search.ranking_study.run_ranking_study`.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from mmdetnas.search.ranking_study import run_ranking_study  # noqa: E402
from mmdetnas.spaces.arch import arch_argument  # noqa: E402
from tools.common import cli, parse_tool_args  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Ranking correlation between supernet scores and '
        'stand-alone training (Yu et al., ICLR 2020); --work-dir (required:'
        ' the output folder, run again with the same one to resume), '
        "--cfg-options (override settings of the search config) and "
        '--launcher (processes that score with the supernet) as in '
        'tools/search.py')
    parser.add_argument('config', help='search config (EvolutionSearchLoop)')
    parser.add_argument('checkpoint', help='trained supernet checkpoint')
    parser.add_argument(
        '--subnet-config', required=True,
        help='config that trains one fixed architecture with tools/train.py'
        ' (model.backbone.arch is set per architecture)')
    parser.add_argument(
        '--num-archs', type=int, default=10,
        help='architectures to compare (FLOPs band / candidates)')
    pick = parser.add_mutually_exclusive_group()
    pick.add_argument(
        '--flops-band', nargs=2, type=float, metavar=('LO', 'HI'),
        help='backbone MACs band (DetNAS convention, e.g. 270e6 300e6); '
        "default [0.9 * max, max] of the search config's train_cfg.flops")
    pick.add_argument(
        '--from-candidates', metavar='JSONL',
        help="a finished search's candidates.jsonl: architectures spread "
        'over its score ranking')
    pick.add_argument(
        '--arch-file', '--arch', dest='arch_file', nargs='+',
        metavar='ARCH', type=arch_argument,
        help='architectures to compare: architecture files (e.g. '
        'best_arch.yaml), official names or comma-separated choice names/'
        'indices (one per layer)')
    parser.add_argument(
        '--standalone-key',
        help="stand-alone metric (default: the search's train_cfg.score_key)")
    parser.add_argument('--topk', type=int, default=3,
                        help='k of the top-k overlap (at most N)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the FLOPs-band draws')
    parser.add_argument(
        '--pool', type=int,
        help='in-band architectures drawn before the even spread '
        '(default max(20 * N, 100))')
    parser.add_argument(
        '--standalone-opts', nargs='+', default=[], metavar='KEY=VALUE',
        help='--cfg-options of every stand-alone training (data, schedule, '
        'model.backbone.init_cfg...)')
    parser.add_argument(
        '--more-checkpoints', nargs='+', default=[], metavar='CKPT',
        help='further supernets of the same recipe (e.g. other training '
        'seeds): they score the same architectures, and the report adds '
        'their agreement with each other and with stand-alone training')
    parser.add_argument(
        '--print-commands', action='store_true',
        help='score with the supernet, write DIR/train_commands.sh (one '
        'training command per architecture, see --gpus and --slurm) and '
        'exit')
    parser.add_argument(
        '--gpus', type=int, default=1, metavar='N',
        help='GPUs of each stand-alone training in train_commands.sh: 1 '
        '(default) writes python tools/train.py lines, N > 1 '
        'tools/dist_train.sh SUBNET_CONFIG N lines (with --slurm: '
        'GPUS=N)')
    parser.add_argument(
        '--slurm', metavar='PARTITION',
        help='write tools/slurm_train.sh PARTITION JOB_NAME lines '
        '(GPUS=N GPUS_PER_NODE=min(N, 8) with N of --gpus) instead')
    args = parse_tool_args(parser, argv)
    if not args.work_dir:
        parser.error('the following arguments are required: --work-dir')
    if args.gpus < 1:
        parser.error(f'--gpus must be >= 1, got {args.gpus}')
    return args


def main(argv=None):
    """Parse the command line and run the study
    (:func:`mmdetnas.search.ranking_study.run_ranking_study`); returns what
    ``ranking.json`` holds, or ``None`` after ``--print-commands``."""
    return run_ranking_study(parse_args(argv))


if __name__ == '__main__':
    cli(main)
