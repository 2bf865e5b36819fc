"""SM-NAS search, both stages: the structural search (the best combination
of mmdet modules and input size) and the modular search (the backbone code
of one detector, trained from scratch).

    python tools/search_structure.py CONFIG [--work-dir DIR] [--resume]
        [--cfg-options k=v ...] [--launcher pytorch]

CONFIG is an mmdet detector config (the base, with the fast schedule) plus
either ``structural_space`` and ``structural_search`` (see
configs/smnas/smnas_structural_*.py and
:class:`mmdetnas.engine.structural_search.StructuralSearch`) or
``modular_space`` and ``modular_search`` (configs/smnas/smnas_modular_*.py,
:class:`mmdetnas.engine.structural_search.ModularSearch`). Each candidate
trains on all ranks (DDP under a launcher), is scored by the config's
evaluator and timed on rank 0. Writes candidates.jsonl, search_state.pkl,
candidates/NNN/ (config, logs, checkpoints), front/*.py (ready-to-run
configs of the Pareto front), pareto.yaml, pareto.png, search_curve.png and
search.log into the work dir. ``--resume`` continues a killed search: the
finished candidates are kept, the one in flight resumes from its last
checkpoint.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmdetnas.utils.setup_env import register_all_modules  # noqa: E402
from tools.common import (cli, finalize_dist, parse_tool_args,  # noqa
                          prepare_cfg)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='SM-NAS structural search (modules and input size) or '
        'modular search (backbone code, from scratch) on the latency/mAP '
        'Pareto front')
    parser.add_argument('config', help='structural or modular search config')
    parser.add_argument(
        '--resume', action='store_true',
        help='continue from work_dir/search_state.pkl (after a kill)')
    return parse_tool_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    register_all_modules()
    from mmengine.registry import init_default_scope

    from mmdetnas.engine.structural_search import (ModularSearch,
                                                   StructuralSearch)
    cfg = prepare_cfg(args)
    stages = [c for c in (StructuralSearch, ModularSearch)
              if cfg.get(c.space_key) is not None]
    if len(stages) != 1:
        raise SystemExit(
            f'{args.config}: expected exactly one of structural_space '
            f'(structural search) and modular_space (modular search), found '
            f'{[c.space_key for c in stages] or "neither"}')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    front = stages[0](cfg, resume=args.resume).run()
    finalize_dist()
    return front


if __name__ == '__main__':
    cli(main)
