"""Run a search config: DetNAS on a trained supernet, or either SM-NAS stage.

    python tools/search.py CONFIG [SUPERNET_CKPT] [--work-dir DIR] [--resume]
        [--cfg-options k=v ...] [--launcher pytorch|slurm|mpi]

The config's ``train_cfg.type`` names the search loop:

* ``mmdetnas.EvolutionSearchLoop`` (DetNAS, configs/detnas/*search*): the
  paths of the supernet SUPERNET_CKPT, scored after BN recalibration.
  Writes candidates.jsonl, search_state.pkl, best_arch.yaml, topk.yaml,
  (pareto.yaml), search_curve.png and pareto.png.
* ``mmdetnas.StructuralSearchLoop`` / ``mmdetnas.ModularSearchLoop``
  (SM-NAS, configs/smnas/smnas_structural_* and smnas_modular_*): every
  candidate detector trained (DDP under a launcher), scored by the config's
  evaluator and timed on rank 0; no checkpoint. Writes candidates.jsonl,
  search_state.pkl, candidates/NNN/ (config, logs, checkpoints), front/*.py
  (ready-to-run configs of the Pareto front), pareto.yaml, pareto.png,
  search_curve.png and search.log.

``--resume`` continues a killed search (an SM-NAS candidate in flight from
its last checkpoint); without it, an earlier search in the work dir is moved
to ``earlier_search_<date>/``. A run refused before it wrote a search state
leaves nothing in the work dir.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmdetnas.apis.search import run_search  # noqa: E402
from mmdetnas.apis.tool_setup import prepare_cfg  # noqa: E402
from mmdetnas.utils.dist import finalize_dist  # noqa: E402
from mmdetnas.utils.setup_env import register_all_modules  # noqa: E402
from tools.common import cli, parse_tool_args  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Run a search config: DetNAS evolutionary search on a '
        'trained supernet, or the SM-NAS structural or modular search')
    parser.add_argument('config', help='search config file path')
    parser.add_argument(
        'checkpoint', nargs='?', default=None,
        help='trained supernet checkpoint (DetNAS search configs only)')
    parser.add_argument(
        '--resume', action='store_true',
        help='continue from work_dir/search_state.pkl (after a kill)')
    return parse_tool_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    register_all_modules()
    run_search(prepare_cfg(args), args.checkpoint, args.resume)
    finalize_dist()


if __name__ == '__main__':
    cli(main)
