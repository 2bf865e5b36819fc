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
   ``EvolutionSearchLoop.evaluate_candidate``: BN recalibration and
   ``runner.val_loop``);
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
"""
import argparse
import json
import math
import os
import os.path as osp
import re
import shlex
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mmdetnas.spaces.arch import arch_argument  # noqa: E402
from mmdetnas.utils import atomic_write, file_sha256  # noqa: E402
from tools.common import die_with_parent  # noqa: E402
from mmdetnas.search.ranking import (REFERENCE,  # noqa: E402
                                     archs_from_candidates, rank_report,
                                     select_archs_in_flops_band,
                                     supernet_agreement)

STATE_VERSION = 1
STATE_FILE = 'ranking_state.json'


def parse_args(argv=None):
    from tools.common import parse_tool_args
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


# ------------------------------------------------------------------ helpers
def _rank_world() -> tuple:
    """``(rank, world size)`` of this process (``(0, 1)`` without a
    process group)."""
    from mmengine.dist import get_rank, get_world_size
    return get_rank(), get_world_size()


def _log(msg: str) -> None:
    if _rank_world()[0] == 0:
        print(f'[ranking] {msg}', flush=True)


def _on_rank0(fn):
    """``fn()`` run on rank 0 and its result broadcast to every rank, so
    that the ranks work on one selection and one state (rank 0's files).
    An exception of rank 0 is raised on every rank (no rank waits for a
    broadcast that never comes)."""
    rank, world = _rank_world()
    if world == 1:
        return fn()
    from mmdetnas.utils.dist import broadcast_object
    out, err = None, None
    if rank == 0:
        try:
            out = (True, fn())
        except Exception as e:  # noqa: BLE001  raised below on every rank
            out, err = (False, f'{type(e).__name__}: {e}'), e
    out = broadcast_object(out)
    if not out[0]:
        if err is not None:
            raise err
        raise RuntimeError(f'rank 0 failed: {out[1]}')
    return out[1]


def _hms(seconds: float) -> str:
    return time.strftime('%H:%M:%S', time.gmtime(max(seconds, 0)))


def _eta(start: float, done: int, left: int) -> str:
    return _hms((time.time() - start) / max(done, 1) * left)


def _atomic_json(path: str, data, **kw) -> None:
    with atomic_write(path) as f:
        json.dump(data, f, indent=1, **kw)


def _no_nan(value):
    """Replace NaN/inf floats by None (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_no_nan(v) for v in value]
    return value


def arch_key(arch, space) -> str:
    """File-name key of an architecture: its choice indices (joined by
    ``-`` when a space has more than 10 choices)."""
    from mmdetnas.spaces import arch_to_indices
    idx = arch_to_indices(arch, space)
    sep = '' if space.num_choices <= 10 else '-'
    return sep.join(str(i) for i in idx)


def _opts_dict(opts) -> dict:
    """``['a.b=1', ...]`` parsed as ``--cfg-options`` would be."""
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction, default={})
    return parser.parse_args(['--o', *opts]).o if opts else {}


def _metrics(record: dict) -> dict:
    """The numeric ``prefix/name`` metrics of a log record, as floats."""
    import numpy as np
    return {
        k: float(v)
        for k, v in record.items()
        if '/' in k and isinstance(v, (int, float, np.number))
        and not isinstance(v, bool)
    }


def _train_length(cfg) -> tuple:
    """``('iter', max_iters)`` or ``('epoch', max_epochs)`` of a config."""
    train_cfg = cfg.get('train_cfg') or {}
    if train_cfg.get('max_iters') is not None:
        return 'iter', int(train_cfg['max_iters'])
    if train_cfg.get('max_epochs') is not None:
        return 'epoch', int(train_cfg['max_epochs'])
    raise ValueError('the subnet config has neither train_cfg.max_iters nor '
                     'train_cfg.max_epochs')


# ---------------------------------------------------------------- selection
def select_archs(args, cfg, space) -> list:
    """The architectures to compare, from the command line."""
    from mmdetnas.spaces import resolve_arch
    if args.arch_file:
        archs = [resolve_arch(p, space)[1] for p in args.arch_file]
        if len(set(archs)) != len(archs):
            raise ValueError('--arch-file: the same architecture is given '
                             'twice')
        if len(archs) < 2:
            raise ValueError('--arch-file: a ranking needs at least 2 '
                             'architectures')
        _log(f'{len(archs)} architectures from --arch-file')
        return archs
    if args.from_candidates:
        archs = archs_from_candidates(args.from_candidates, args.num_archs,
                                      space)
        _log(f'{len(archs)} architectures spread over the score ranking of '
             f'{args.from_candidates}')
        return archs
    band = args.flops_band
    if band is None:
        flops = cfg.train_cfg.get('flops')
        if not flops or flops[1] is None:
            raise ValueError(
                f'{args.config} has no train_cfg.flops upper bound: give '
                '--flops-band LO HI, --from-candidates or --arch-file')
        hi = float(flops[1])
        lo = max(0.9 * hi, float(flops[0] or 0))
        band = (lo, hi)
    archs = select_archs_in_flops_band(
        space, args.num_archs, band, seed=args.seed, pool=args.pool)
    _log(f'{len(archs)} architectures spread over the FLOPs band '
         f'[{band[0] / 1e6:.2f}M, {band[1] / 1e6:.2f}M] MACs (seed '
         f'{args.seed})')
    return archs


# -------------------------------------------------------------------- state
def _identity(args, space, score_key, archs) -> dict:
    """What a saved state must match to be resumed (the checkpoint by
    content, so a moved checkpoint is still the same)."""
    return dict(
        checkpoint_sha256=file_sha256(args.checkpoint),
        search_config=osp.abspath(args.config),
        subnet_config=osp.abspath(args.subnet_config),
        space=space.to_dict(),
        score_key=score_key,
        archs=[list(a) for a in archs])


def load_state(path: str, identity: dict, standalone_key: str) -> dict:
    """The saved results of an earlier run, checked against this one."""
    state = dict(version=STATE_VERSION, **identity,
                 standalone_key=standalone_key, supernet={}, standalone={},
                 more_supernets={})
    if osp.isfile(path + '.tmp'):  # killed while writing; path is intact
        os.remove(path + '.tmp')
    if not osp.isfile(path):
        return state
    try:
        with open(path, encoding='utf-8') as f:
            old = json.load(f)
    except (OSError, ValueError) as e:
        raise RuntimeError(f'cannot read {path!r}: {e}; delete it or use '
                           'another --work-dir') from e
    for k, v in identity.items():
        if old.get(k) != v:
            what = {'archs': 'architectures',
                    'checkpoint_sha256': 'supernet checkpoint (sha256)'
                    }.get(k, k)
            raise RuntimeError(
                f'{path} belongs to another experiment: its {what} '
                f'{old.get(k)!r:.300} differs from this run\'s {v!r:.300};'
                ' use another --work-dir')
    state['supernet'] = old.get('supernet', {})
    # further supernets' scores, by checkpoint content (sha256)
    state['more_supernets'] = old.get('more_supernets', {})
    if old.get('standalone_key') == standalone_key:
        state['standalone'] = old.get('standalone', {})
    elif old.get('standalone'):
        _log(f"stand-alone key changed ({old.get('standalone_key')} -> "
             f'{standalone_key}): re-reading the stand-alone results')
    _log(f"resuming: {len(state['supernet'])} supernet score(s) and "
         f"{len(state['standalone'])} stand-alone result(s) already done")
    return state


# ------------------------------------------------------ stage A: supernet
def score_with_supernet(args, cfg, space, archs, keys, state, save) -> None:
    """Fill ``state['supernet']`` (and ``state['more_supernets'][sha256]``
    for each ``--more-checkpoints`` supernet) with the search's score of
    each architecture (BN recalibration + ``val_loop``), saving after
    each.

    Call it on every rank (with the same ``state``). As in the search
    (``EvolutionSearchLoop.run_epoch``): in the loop's ``'data'`` mode all
    ranks score each architecture together
    (:meth:`EvolutionSearchLoop.evaluate_candidate`); in ``'candidate'``
    mode (the loop's default with several processes) rank ``j`` scores
    architecture ``j`` of each batch of ``world_size`` and the records are
    gathered in order (``EvolutionSearchLoop._score_batch``). Every rank
    ends with the same scores; ``save`` writes them on rank 0 only.
    """
    jobs = [(args.checkpoint, state['supernet'])] + [
        (path, state['more_supernets'].setdefault(sha, {}))
        for path, sha in zip(args.more_checkpoints, args.more_sha256)
    ]
    jobs = [(path, scores, [(a, k) for a, k in zip(archs, keys)
                            if k not in scores])
            for path, scores in jobs]
    jobs = [job for job in jobs if job[2]]
    if not jobs:
        _log('stage A: every supernet score is already done')
        return
    from mmdetnas.engine.hooks.path_sampler_hook import PathSamplerHook
    from mmdetnas.engine.loops.evolution_search_loop import \
        EvolutionSearchLoop
    from tools.common import build_runner
    from mmdetnas.utils import check_checkpoint_matches
    from mmdetnas.utils.run_files import RunFiles
    # refused inputs leave nothing of the Runner (log folder, config copy)
    files = RunFiles(cfg)
    with files.on_refusal():
        runner = files.track(build_runner(cfg))
        for path in [args.checkpoint, *args.more_checkpoints]:
            check_checkpoint_matches(runner.model, path)
        loop = runner.train_loop
        if not isinstance(loop, EvolutionSearchLoop):
            raise TypeError(f'{args.config}: the train loop is '
                            f'{type(loop).__name__}, not '
                            'EvolutionSearchLoop')
        if loop.space != space:
            raise ValueError(
                f'the supernet search space {loop.space.describe()} '
                f"differs from the config's {space.describe()}")

    def run():  # replaces the search: same runner.train() set-up
        for hook in runner.hooks:
            if isinstance(hook, PathSamplerHook):
                raise RuntimeError(
                    'remove PathSamplerHook from custom_hooks of the search '
                    'config (custom_hooks = [])')
        runner.call_hook('before_train')
        start = time.time()
        total = sum(len(todo) for _, _, todo in jobs)
        i = 0
        world = _rank_world()[1]
        by_candidate = loop.parallel == 'candidate'
        step = world if by_candidate else 1
        _log(f"stage A: {world} process(es), the search loop's "
             f"'{loop.parallel}' mode")
        for path, scores, todo in jobs:
            if path != args.checkpoint:  # load_from loaded the first one
                runner.load_checkpoint(path, strict=True)
            _log(f'stage A: scoring {len(todo)} architecture(s) with the '
                 f'supernet {path}')
            for b in range(0, len(todo), step):
                batch = todo[b:b + step]
                if by_candidate:  # architecture j on rank j, gathered
                    recs = loop._score_batch([a for a, _ in batch])
                else:  # all ranks together
                    recs = [loop.evaluate_candidate(a) for a, _ in batch]
                for (arch, key), rec in zip(batch, recs):
                    if tuple(rec['arch']) != tuple(arch):
                        raise RuntimeError(
                            f'stage A: the record of {key} is of another '
                            f"architecture {rec['arch']}")
                    i += 1
                    scores[key] = {
                        k: rec[k]
                        for k in ('score', 'flops', 'params', 'metrics',
                                  'calib_seconds', 'eval_seconds')
                    }
                    _log(f'stage A {i}/{total} {key}: supernet '
                         f"{loop.score_key}={rec['score']:.6f}, "
                         f"{rec['flops'] / 1e6:.2f}M MACs, calib "
                         f"{rec['calib_seconds']:.1f}s eval "
                         f"{rec['eval_seconds']:.1f}s, eta "
                         f'{_eta(start, i, total - i)}')
                save()
        runner.call_hook('after_train')
        return runner.model

    loop.run = run
    runner.train()


# ---------------------------------------------------- stage B: stand-alone
def train_command(args,
                  arch_file: str,
                  work_dir: str,
                  python: str = sys.executable,
                  resume: bool = False) -> list:
    """The ``tools/train.py`` command of one stand-alone training (run in
    the repository root)."""
    return [
        python, 'tools/train.py',
        osp.abspath(args.subnet_config), '--work-dir', work_dir,
        *(['--resume'] if resume else []), '--cfg-options',
        f'model.backbone.arch={arch_file}', *args.standalone_opts
    ]


def printed_command(args, arch_file: str, work_dir: str, key: str) -> list:
    """The ``train_commands.sh`` command of one stand-alone training (run
    in the repository root), with the subnet config's own recipe: only the
    per-architecture options (architecture file, work dir) and
    ``--standalone-opts`` are set, nothing for one device.

    - ``--gpus 1`` (default): ``python tools/train.py SUBNET_CONFIG
      --work-dir WORK_DIR --cfg-options model.backbone.arch=ARCH ...``;
    - ``--gpus N`` (N > 1): ``tools/dist_train.sh SUBNET_CONFIG N
      --work-dir WORK_DIR --cfg-options ...`` (torchrun, N processes);
    - ``--slurm PARTITION``: ``GPUS=N GPUS_PER_NODE=min(N, 8)
      tools/slurm_train.sh PARTITION ranking_<key> SUBNET_CONFIG WORK_DIR
      --cfg-options ...``.

    The first items of a Slurm command are ``VAR=value`` assignments (the
    environment of the script). Raises ValueError for a Slurm command with
    an argument holding white space: ``tools/slurm_train.sh`` passes its
    extra arguments on unquoted.
    """
    gpus = getattr(args, 'gpus', 1) or 1
    slurm = getattr(args, 'slurm', None)
    config = osp.abspath(args.subnet_config)
    opts = ['--cfg-options', f'model.backbone.arch={arch_file}',
            *args.standalone_opts]
    if slurm:
        cmd = [f'GPUS={gpus}', f'GPUS_PER_NODE={min(gpus, 8)}',
               'tools/slurm_train.sh', slurm, f'ranking_{key}', config,
               work_dir, *opts]
        spaced = [c for c in cmd if re.search(r'\s', c)]
        if spaced:
            raise ValueError(
                'tools/slurm_train.sh splits its arguments at white space: '
                f'{spaced[0]!r} cannot be passed to it (a path or '
                '--standalone-opts value without spaces can)')
        return cmd
    if gpus > 1:
        return ['tools/dist_train.sh', config, str(gpus), '--work-dir',
                work_dir, *opts]
    return train_command(args, arch_file, work_dir, 'python')


def write_train_commands(args, keys, arch_files) -> str:
    """``DIR/train_commands.sh``: one :func:`printed_command` line per
    architecture (in ``keys`` order). Returns its path."""
    gpus = getattr(args, 'gpus', 1) or 1
    lines = [
        ' '.join(shlex.quote(c) for c in printed_command(
            args, arch_files[key],
            osp.join(args.work_dir, 'standalone', key), key))
        for key in keys
    ]
    if getattr(args, 'slurm', None):
        how = (f'Slurm jobs of {gpus} GPU(s) on partition {args.slurm} '
               '(tools/slurm_train.sh)')
    elif gpus > 1:
        how = (f'{gpus} GPUs each (tools/dist_train.sh; lines run at the '
               'same time on one machine need PORT=... of their own)')
    else:
        how = 'one process each (tools/train.py)'
    header = [
        '#!/usr/bin/env bash',
        f'# stand-alone trainings of {len(keys)} architectures, {how}, with '
        f'the recipe of {args.subnet_config}; run from the repository root, '
        'in any order or in parallel, then run ranking_correlation.py again '
        'with the same arguments (one process) to collect the results',
        f'cd {shlex.quote(ROOT)}'
    ]
    path = osp.join(args.work_dir, 'train_commands.sh')
    with atomic_write(path) as f:
        f.write('\n'.join(header + lines) + '\n')
    return path


def _ckpt_progress(work_dir: str, unit: str):
    """``(checkpoint path, iteration or epoch)`` of ``last_checkpoint``,
    or ``(None, -1)``."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        return None, -1
    with open(marker, encoding='utf-8') as f:
        path = f.read().strip()
    if not osp.isfile(path):  # a work dir moved from another machine
        path = osp.join(work_dir, osp.basename(path))
    if not osp.isfile(path):
        return None, -1
    m = re.search(rf'{unit}_(\d+)\.pth$', path)
    if m:
        return path, int(m.group(1))
    import torch
    meta = torch.load(path, map_location='cpu', weights_only=False).get(
        'meta', {})
    return path, int(meta.get(unit, -1))


def finished_result(work_dir: str, key: str, unit: str, length: int):
    """The ``key`` metric of a finished training in ``work_dir``.

    A finished training is a validation record logged at step ``length``
    (iteration or epoch), or the last record of the newest
    ``vis_data/scalars.json`` written after the final checkpoint (mmdet's
    iteration-based configs log validation at step = epoch = 0).

    Returns:
        tuple: ``(result dict or None, final checkpoint or None)``; a
        checkpoint without result means that its validation is missing.
    """
    from mmdetnas.utils.run_metrics import metric_files, metric_records
    files = metric_files(work_dir)
    records = metric_records(work_dir)  # a line cut by a kill is skipped
    for path, rec in reversed(records):
        if key in rec and rec.get('step', -1) >= length:
            return dict(score=float(rec[key]), source=path,
                        metrics=rec), None
    ckpt, done = _ckpt_progress(work_dir, unit)
    if ckpt is None or done < length:
        return None, None
    if files and records and records[-1][0] == files[-1] and \
            key in records[-1][1] and \
            osp.getmtime(files[-1]) >= osp.getmtime(ckpt):
        return dict(score=float(records[-1][1][key]), source=files[-1],
                    metrics=records[-1][1]), ckpt
    return None, ckpt


def validate_checkpoint(args, opts: dict, arch_file: str, ckpt: str,
                        key: str) -> dict:
    """Validate a finished stand-alone checkpoint whose final validation
    was not logged (in this process, with the subnet config)."""
    from mmengine.config import Config

    from mmdetnas.utils.setup_env import adapt_sync_bn
    from tools.common import build_runner
    cfg = Config.fromfile(args.subnet_config)
    cfg.merge_from_dict(opts)
    cfg.merge_from_dict({'model.backbone.arch': arch_file})
    cfg.launcher = 'none'
    adapt_sync_bn(cfg, 'none')
    cfg.work_dir = osp.join(osp.dirname(ckpt), 'final_val')
    cfg.experiment_name = f'final_val_{int(time.time() * 1e3)}'
    cfg.load_from = ckpt
    cfg.resume = False
    metrics = build_runner(cfg).val()
    if key not in metrics:
        raise RuntimeError(f'--standalone-key {key!r} is not among the '
                           f'metrics {sorted(metrics)} of {ckpt}')
    metrics = _metrics(metrics)
    return dict(score=metrics[key], source=ckpt, metrics=metrics)


def train_standalone(args, archs, keys, arch_files, state, save,
                     standalone_key: str) -> None:
    """Fill ``state['standalone']``: read finished trainings, run the
    others (``--resume`` when a checkpoint exists)."""
    from mmengine.config import Config
    opts = _opts_dict(args.standalone_opts)
    sub_cfg = Config.fromfile(args.subnet_config)
    sub_cfg.merge_from_dict(opts)
    unit, length = _train_length(sub_cfg)
    log_dir = osp.join(args.work_dir, 'logs')
    os.makedirs(log_dir, exist_ok=True)
    start, trained = time.time(), 0
    left = sum(1 for k in keys if k not in state['standalone'])
    for i, (arch, key) in enumerate(zip(archs, keys), 1):
        if key in state['standalone']:
            continue
        work_dir = osp.join(args.work_dir, 'standalone', key)
        res, ckpt = finished_result(work_dir, standalone_key, unit, length)
        how = 'read from a finished training'
        if res is None and ckpt is None:
            _, done = _ckpt_progress(work_dir, unit)
            cmd = train_command(
                args, arch_files[key], work_dir, resume=done >= 0)
            log = osp.join(log_dir, f'train_{key}.log')
            _log(f'stage B {i}/{len(keys)} {key}: training'
                 f"{f' (resuming at {unit} {done})' if done >= 0 else ''}"
                 f', log {log}')
            t0 = time.time()
            with open(log, 'a', encoding='utf-8') as f:
                proc = subprocess.run(cmd, cwd=ROOT, stdout=f,
                                      stderr=subprocess.STDOUT,
                                      preexec_fn=die_with_parent)
            if proc.returncode != 0:
                with open(log, encoding='utf-8', errors='replace') as f:
                    tail = f.read()[-3000:]
                raise RuntimeError(
                    f'stand-alone training of {key} exited '
                    f'{proc.returncode} (log {log}):\n{tail}')
            trained += 1
            how = f'trained in {time.time() - t0:.1f}s'
            res, ckpt = finished_result(work_dir, standalone_key, unit,
                                        length)
            if res is None and ckpt is None:
                raise RuntimeError(
                    f'{work_dir}: the training ended without a final '
                    f'checkpoint at {unit} {length} (log {log})')
        if res is None:
            how = f'validated {osp.basename(ckpt)}'
            res = validate_checkpoint(args, opts, arch_files[key], ckpt,
                                      standalone_key)
        if standalone_key not in res['metrics']:
            raise RuntimeError(f'{key}: no {standalone_key!r} in '
                               f"{res['source']}")
        res['work_dir'] = work_dir
        res['metrics'] = _metrics(res['metrics'])
        state['standalone'][key] = res
        save()
        left -= 1
        eta = _eta(start, trained, left) if trained or not left else 'n/a'
        _log(f"stage B {i}/{len(keys)} {key}: {standalone_key}="
             f"{res['score']:.6f} ({how}), eta {eta}")


# ------------------------------------------------------------------ outputs
def _ranks(values) -> list:
    """Competition ranks, 1 = best (highest); tied values share the best
    rank of their group ("1224")."""
    return [1 + sum(v > x for v in values) for x in values]


def _fmt(v, digits=4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return 'n/a'
    return f'{v:.{digits}f}'


def agreement_of_supernets(args, keys, state) -> tuple:
    """Scores of the ``--more-checkpoints`` supernets (one list each, in
    ``keys`` order) and the pairwise agreement of all supernets (the first
    is ``SUPERNET_CKPT``; :func:`mmdetnas.search.supernet_agreement`),
    logged."""
    more = [[state['more_supernets'][sha][key]['score'] for key in keys]
            for sha in args.more_sha256]
    sup = [state['supernet'][key]['score'] for key in keys]
    agreement = supernet_agreement([sup] + more)
    for a in agreement:
        _log(f"supernets {a['a'] + 1} and {a['b'] + 1} agree at Kendall tau "
             f"{_fmt(a['tau'])} (p {_fmt(a['tau_p'], 3)})")
    return more, agreement


def write_outputs(args, space, archs, keys, arch_files, state, score_key,
                  standalone_key, k) -> dict:
    """``ranking.json``, ``ranking.md`` and ``ranking.png``."""
    from mmdetnas.spaces import arch_to_indices
    sup = [state['supernet'][key]['score'] for key in keys]
    alone = [state['standalone'][key]['score'] for key in keys]
    flops = [state['supernet'][key]['flops'] for key in keys]
    params = [state['supernet'][key]['params'] for key in keys]
    more, agreement = agreement_of_supernets(args, keys, state)
    proxies = {f'supernet {i + 2}': v for i, v in enumerate(more)}
    if more:
        proxies['supernets, mean'] = [
            sum(v) / len(v) for v in zip(sup, *more)]
    proxies.update(flops=flops, params=params)
    report = rank_report(sup, alone, proxies, k)
    rows = []
    for i, (arch, key) in enumerate(zip(archs, keys)):
        rows.append(
            dict(key=key, arch=list(arch),
                 arch_indices=arch_to_indices(arch, space),
                 arch_file=arch_files[key], flops=flops[i],
                 params=params[i], supernet_score=sup[i],
                 more_supernet_scores=[v[i] for v in more],
                 standalone_score=alone[i],
                 standalone_work_dir=state['standalone'][key]['work_dir']))
    result = dict(
        reference=REFERENCE, search_config=args.config,
        checkpoint=osp.abspath(args.checkpoint),
        more_checkpoints=[osp.abspath(c) for c in args.more_checkpoints],
        subnet_config=args.subnet_config, score_key=score_key,
        standalone_key=standalone_key, k=k, num_archs=len(archs),
        archs=rows, report=report, supernet_agreement=agreement)
    _atomic_json(osp.join(args.work_dir, 'ranking.json'), _no_nan(result),
                 allow_nan=False)

    sup_rank, alone_rank = _ranks(sup), _ranks(alone)
    lines = [
        '# Supernet ranking correlation', '',
        f'- search config: `{args.config}`, supernet checkpoint: '
        f'`{args.checkpoint}` (score `{score_key}`)',
        f'- stand-alone: `{args.subnet_config}` (score `{standalone_key}`)',
        f'- protocol: {REFERENCE}', '',
        '| # | architecture (choice indices) | FLOPs (M MACs) | params (M) '
        '| supernet score | supernet rank | stand-alone score '
        '| stand-alone rank |', '|---|---|---|---|---|---|---|---|'
    ]
    for i, row in enumerate(rows):
        lines.append(
            f"| {i + 1} | `{row['key']}` | {row['flops'] / 1e6:.2f} | "
            f"{row['params'] / 1e6:.3f} | {_fmt(row['supernet_score'], 6)} "
            f"| {sup_rank[i]} | {_fmt(row['standalone_score'], 6)} | "
            f'{alone_rank[i]} |')
    lines += [
        '', f'Correlation with the stand-alone ranking ({len(rows)} '
        'architectures; for every predictor a higher value predicts a '
        'better architecture):', '',
        f'| predictor | Kendall tau | p (tau = 0) | Spearman rho | '
        f'top-{k} overlap |', '|---|---|---|---|---|'
    ]
    for name, r in report.items():
        lines.append(f"| {name} | {_fmt(r['tau'])} | {_fmt(r['tau_p'], 3)} "
                     f"| {_fmt(r['rho'])} | {_fmt(r['topk'], 2)} |")
    lines += [
        '', 'p: two-sided p-value of Kendall\'s test of no association '
        '(scipy.stats.kendalltau); a tau with p above 0.05 is not '
        'distinguishable from chance with this many architectures.'
    ]
    if agreement:
        lines += [
            '', 'Agreement of the supernets with each other (supernet 1: '
            f'`{args.checkpoint}`; ' + ', '.join(
                f'supernet {i + 2}: `{c}`'
                for i, c in enumerate(args.more_checkpoints)) + '):', '',
            '| supernets | Kendall tau | p (tau = 0) |', '|---|---|---|'
        ] + [f"| {a['a'] + 1} and {a['b'] + 1} | {_fmt(a['tau'])} | "
             f"{_fmt(a['tau_p'], 3)} |" for a in agreement]
    with open(osp.join(args.work_dir, 'ranking.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.scatter(sup, alone, c='tab:blue')
    for i, (x, y) in enumerate(zip(sup, alone)):
        ax.annotate(str(i + 1), (x, y), textcoords='offset points',
                    xytext=(4, 4), fontsize=8)
    ax.set_xlabel(f'supernet {score_key}')
    ax.set_ylabel(f'stand-alone {standalone_key}')
    ax.set_title(f"Kendall tau = {_fmt(report['supernet']['tau'], 3)} "
                 f"(p = {_fmt(report['supernet']['tau_p'], 2)}, "
                 f"{len(rows)} architectures)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(osp.join(args.work_dir, 'ranking.png'), dpi=120)
    plt.close(fig)
    return result


# --------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    from mmdetnas.spaces import build_search_space, save_arch_file
    from mmdetnas.utils.setup_env import register_all_modules
    from tools.common import finalize_dist, prepare_cfg
    register_all_modules()
    for what, path in (('supernet checkpoint', args.checkpoint),
                       *(('--more-checkpoints checkpoint', c)
                         for c in args.more_checkpoints),
                       ('subnet config', args.subnet_config),
                       ('search config', args.config)):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} not found: {path!r}')
    args.more_sha256 = [file_sha256(c) for c in args.more_checkpoints]
    if args.num_archs < 2:
        raise ValueError('--num-archs must be >= 2')
    args.work_dir = osp.abspath(args.work_dir)
    os.makedirs(args.work_dir, exist_ok=True)
    # the user's launcher: the process group starts here (tools.common),
    # and the search config's runner scores with every process
    cfg = prepare_cfg(
        argparse.Namespace(
            config=args.config, cfg_options=args.cfg_options,
            work_dir=osp.join(args.work_dir, 'supernet_eval'),
            launcher=args.launcher))
    rank, world = _rank_world()
    # stand-alone trainings only in a single-process run: a training of
    # hours to days started by rank 0 would hold the other ranks in a
    # collective (and under their timeouts) all that time
    commands_only = args.print_commands or world > 1
    if not commands_only and (args.gpus != 1 or args.slurm):
        raise ValueError(
            '--gpus and --slurm shape the lines of train_commands.sh: add '
            '--print-commands (the tool trains in one process itself)')
    if world > 1 and not args.print_commands:
        _log(f'{world} processes: stage A only, then train_commands.sh as '
             'with --print-commands; run those trainings, then this tool '
             'again in one process to collect the results')
    if cfg.train_cfg.get('type') != 'mmdetnas.EvolutionSearchLoop':
        raise ValueError(f'{args.config}: train_cfg.type must be '
                         "'mmdetnas.EvolutionSearchLoop', got "
                         f"{cfg.train_cfg.get('type')!r}")
    cfg.load_from = args.checkpoint
    cfg.resume = False
    cfg.train_cfg.resume = False
    space = build_search_space(
        cfg.model.get('backbone', {}).get('search_space') or '300M')
    score_key = cfg.train_cfg.get('score_key', 'coco/bbox_mAP')
    standalone_key = args.standalone_key or score_key

    # rank 0 selects, reads and writes; the other ranks get its results
    archs = [tuple(a) for a in _on_rank0(
        lambda: select_archs(args, cfg, space))]
    keys = [arch_key(a, space) for a in archs]
    k = args.topk
    if not 1 <= k <= len(archs):
        k = min(max(k, 1), len(archs))
        _log(f'--topk {args.topk} -> {k} ({len(archs)} architectures)')
    state_path = osp.join(args.work_dir, STATE_FILE)
    arch_files = {
        key: osp.join(args.work_dir, 'archs', f'{key}.yaml')
        for key in keys
    }

    def save():
        if rank == 0:
            _atomic_json(state_path, state)

    def start():
        state = load_state(state_path,
                           _identity(args, space, score_key, archs),
                           standalone_key)
        _atomic_json(state_path, state)
        for arch, key in zip(archs, keys):
            if not osp.isfile(arch_files[key]):
                save_arch_file(arch_files[key], arch, space)
        return state

    if commands_only:  # a command that cannot be written fails now
        for key in keys:
            printed_command(args, arch_files[key],
                            osp.join(args.work_dir, 'standalone', key), key)
    state = _on_rank0(start)
    score_with_supernet(args, cfg, space, archs, keys, state, save)
    if commands_only:
        def write():
            if args.more_checkpoints:
                _atomic_json(
                    osp.join(args.work_dir, 'supernet_agreement.json'),
                    _no_nan(dict(
                        checkpoints=[
                            osp.abspath(c)
                            for c in [args.checkpoint, *args.more_checkpoints]
                        ],
                        archs=keys,
                        agreement=agreement_of_supernets(args, keys,
                                                         state)[1])),
                    allow_nan=False)
            return write_train_commands(args, keys, arch_files)

        path = _on_rank0(write)
        _log(f'wrote {path}: run these trainings, then this tool again')
        finalize_dist()
        return None

    train_standalone(args, archs, keys, arch_files, state, save,
                     standalone_key)
    result = write_outputs(args, space, archs, keys, arch_files, state,
                           score_key, standalone_key, k)
    for name, r in result['report'].items():
        _log(f"{name:>8}: Kendall tau {_fmt(r['tau'])} (p "
             f"{_fmt(r['tau_p'], 3)}), Spearman rho "
             f"{_fmt(r['rho'])}, top-{k} overlap {_fmt(r['topk'], 2)}")
    _log(f'wrote ranking.json, ranking.md and ranking.png to '
         f'{args.work_dir}')
    finalize_dist()
    return result


if __name__ == '__main__':
    from tools.common import cli
    cli(main)
