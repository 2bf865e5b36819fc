"""Evolutionary search on a trained supernet.

    python tools/search.py CONFIG SUPERNET_CKPT [--work-dir DIR] [--resume]
        [--cfg-options k=v ...] [--launcher pytorch]

Writes candidates.jsonl, search_state.pkl, best_arch.yaml, topk.yaml,
(pareto.yaml), search_curve.png and pareto.png into the work dir. A run
refused before it wrote a search state (a checkpoint of another model,
impossible settings or constraints, a score_key the evaluator does not
return) leaves nothing there: the Runner's log folder and config copy are
removed again (mmdetnas.utils.run_files).
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmdetnas.utils import check_checkpoint_matches  # noqa: E402
from mmdetnas.utils.run_files import RunFiles, file_signature  # noqa: E402
from mmdetnas.utils.setup_env import register_all_modules  # noqa: E402
from tools.common import (build_runner, finalize_dist,  # noqa: E402
                          parse_tool_args, prepare_cfg)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='DetNAS evolutionary search')
    parser.add_argument('config', help='search config file path')
    parser.add_argument('checkpoint', help='trained supernet checkpoint')
    parser.add_argument(
        '--resume', action='store_true',
        help='continue from work_dir/search_state.pkl (after a kill)')
    return parse_tool_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    register_all_modules()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(
            f'supernet checkpoint not found: {args.checkpoint!r}')
    cfg = prepare_cfg(args)
    if cfg.train_cfg.get('type') != 'mmdetnas.EvolutionSearchLoop':
        raise ValueError(
            f'{args.config}: train_cfg.type must be '
            "'mmdetnas.EvolutionSearchLoop', got "
            f"{cfg.train_cfg.get('type')!r}")
    cfg.load_from = args.checkpoint
    cfg.resume = False  # the loop resumes from its own search state
    cfg.train_cfg.resume = args.resume
    # refused inputs (checkpoint, search settings, constraints, score_key)
    # are found after the Runner has created its log folder and config
    # copy: those are removed again unless this run wrote a search state
    state = osp.join(osp.abspath(cfg.work_dir), 'search_state.pkl')
    state_before = file_signature(state)
    files = RunFiles(cfg)

    def started() -> bool:
        now = file_signature(state)
        return now is not None and now != state_before

    with files.on_refusal(started):
        runner = files.track(build_runner(cfg))
        # Runner loads load_from non-strictly: refuse a checkpoint of
        # another model, search space or weight sharing instead of scoring
        # random weights
        check_checkpoint_matches(runner.model, args.checkpoint)
        runner.train()
    finalize_dist()


if __name__ == '__main__':
    from tools.common import cli
    cli(main)
