"""The ranking-correlation experiment: does the supernet rank architectures
as stand-alone training does? (Yu et al., "Evaluating the search phase of
neural architecture search", ICLR 2020.)

:func:`run_ranking_study` runs it; ``tools/analysis_tools/
ranking_correlation.py`` is its command line (the options are that tool's
arguments). The statistics and the choice of architectures are
:mod:`mmdetnas.search.ranking`; this module holds the experiment around
them:

1. the architectures to compare (:func:`select_archs`);
2. stage A, the supernet's score of each: the search config's runner with
   the supernet checkpoint, its ``runner.train()`` set-up, and
   :class:`SupernetScoringLoop` (the search loop, scoring the given
   architectures with :meth:`EvolutionSearchLoop.score_candidates` exactly
   as a search scores them, in either of its parallel modes) instead of the
   search (:func:`score_with_supernet`);
3. stage B, each architecture trained stand-alone with ``tools/train.py``
   (:func:`train_standalone`), or the lines that train them
   (:func:`write_train_commands`);
4. the report (:func:`write_outputs`): ``ranking.json``, ``ranking.md`` and
   ``ranking.png``.

Every finished result goes into ``ranking_state.json`` at once
(:func:`load_state` checks that a saved state belongs to the same
experiment), so a killed study continues where it stopped. With several
processes (a ``launcher``), every rank scores stage A together and rank 0
alone selects, reads and writes.
"""
import copy
import json
import math
import os
import os.path as osp
import re
import shlex
import subprocess
import sys
import time
from typing import Callable, List, Optional, Sequence

from mmdetnas.apis.tool_setup import (REPO_ROOT, build_runner,
                                      die_with_parent, finalize_dist,
                                      parse_cfg_options, prepare_cfg)
from mmdetnas.engine.loops.evolution_search_loop import EvolutionSearchLoop
from mmdetnas.registry import LOOPS
from mmdetnas.utils import atomic_write, file_sha256
from .ranking import (REFERENCE, archs_from_candidates, rank_report,
                      select_archs_in_flops_band, supernet_agreement)

__all__ = [
    'STATE_VERSION', 'STATE_FILE', 'SupernetScoringLoop', 'arch_key',
    'select_archs', 'state_identity', 'load_state', 'score_with_supernet',
    'train_command', 'printed_command', 'write_train_commands',
    'finished_result', 'validate_checkpoint', 'train_standalone',
    'agreement_of_supernets', 'write_outputs', 'run_ranking_study'
]

#: version of ``ranking_state.json``
STATE_VERSION = 1
#: the state file in the study's work dir
STATE_FILE = 'ranking_state.json'
#: the checkout that holds ``tools/train.py``: the stand-alone trainings run
#: there
ROOT = REPO_ROOT


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


def atomic_json(path: str, data, **kw) -> None:
    """Write ``data`` as indented JSON to ``path``, whole or not at all
    (:func:`mmdetnas.utils.atomic_write`); ``kw`` goes to ``json.dump``."""
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
    ``-`` when a space has more than 10 choices).

    Raises:
        ValueError: ``arch`` is not an architecture of ``space``.
    """
    from mmdetnas.spaces import arch_to_indices
    idx = arch_to_indices(arch, space)
    sep = '' if space.num_choices <= 10 else '-'
    return sep.join(str(i) for i in idx)


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
    """The architectures to compare.

    Args:
        args: the options (``arch_file``, ``from_candidates``,
            ``flops_band``, ``num_archs``, ``seed``, ``pool``, ``config``):
            the given architectures, those spread over the score ranking
            of a search's ``candidates.jsonl``, or those spread over a band
            of backbone FLOPs (default ``[0.9 * max, max]`` of
            ``cfg.train_cfg.flops``).
        cfg: the search config.
        space: the search space.

    Returns:
        list[tuple]: the architectures.

    Raises:
        ValueError: an architecture given twice, fewer than 2 given, one of
            another space, no FLOPs band to draw from, or what
            :func:`~mmdetnas.search.ranking.archs_from_candidates` and
            :func:`~mmdetnas.search.ranking.select_archs_in_flops_band`
            raise.
    """
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
def state_identity(args, space, score_key, archs) -> dict:
    """What a saved state must match to be resumed: the supernet checkpoint
    by content (so a moved checkpoint is still the same), the two configs,
    the search space, the score key and the architectures."""
    return dict(
        checkpoint_sha256=file_sha256(args.checkpoint),
        search_config=osp.abspath(args.config),
        subnet_config=osp.abspath(args.subnet_config),
        space=space.to_dict(),
        score_key=score_key,
        archs=[list(a) for a in archs])


def load_state(path: str, identity: dict, standalone_key: str) -> dict:
    """The saved results of an earlier run, checked against this one
    (a new state when there is none).

    Args:
        path (str): ``ranking_state.json``.
        identity (dict): :func:`state_identity` of this run.
        standalone_key (str): The stand-alone metric; saved stand-alone
            results of another key are read again.

    Returns:
        dict: the state (``supernet``, ``standalone`` and
        ``more_supernets`` results, plus the identity).

    Raises:
        RuntimeError: the file cannot be read, or belongs to another
            experiment (its identity differs).
    """
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
@LOOPS.register_module()
class SupernetScoringLoop(EvolutionSearchLoop):
    """The search loop of a search config, scoring given architectures
    instead of searching (``train_cfg.type='mmdetnas.SupernetScoringLoop'``
    with the search config's other ``train_cfg`` settings).

    ``runner.train()`` does its usual set-up (optimizer wrapper,
    ``load_from``, ``before_train`` hooks), then :meth:`run` scores each
    job added with :meth:`add_job` by
    :meth:`EvolutionSearchLoop.score_candidates` (BN recalibration and
    evaluation exactly as the search scores candidates, in the loop's
    ``parallel`` mode), a batch at a time: ``world_size`` architectures in
    ``'candidate'`` mode, one in ``'data'`` mode. Nothing is recorded in a
    search state. Call :meth:`add_job` and ``runner.train()`` on every rank
    with the same jobs.

    Args: those of :class:`EvolutionSearchLoop`.
    """

    def __init__(self, runner, dataloader, **kwargs):
        super().__init__(runner, dataloader, **kwargs)
        self.scoring_jobs: List[tuple] = []

    @property
    def archs_per_batch(self) -> int:
        """Architectures scored together: ``world_size`` in
        ``'candidate'`` mode (one per rank), else 1."""
        return self.candidates_per_iter

    def add_job(self, archs: Sequence, on_scored: Callable,
                checkpoint: Optional[str] = None,
                on_start: Optional[Callable] = None) -> None:
        """Score ``archs`` when the loop runs.

        Args:
            archs (Sequence[tuple]): The architectures.
            on_scored (Callable): ``on_scored(batch, records)`` after each
                batch (:attr:`archs_per_batch` architectures and their
                records, in order).
            checkpoint (str, optional): A supernet checkpoint loaded
                (strictly) before this job; ``None``: the weights loaded
                before (``load_from`` for the first job).
            on_start (Callable, optional): Called without arguments once
                the checkpoint is loaded, before the first batch.
        """
        self.scoring_jobs.append(
            (list(archs), on_scored, checkpoint, on_start))

    def run(self):
        """Score every job between the ``before_train`` and ``after_train``
        hooks; returns the model.

        Raises:
            RuntimeError: a ``PathSamplerHook`` is registered
                (:meth:`check_runner`).
        """
        self.check_runner()
        self.runner.call_hook('before_train')
        step = self.archs_per_batch
        for archs, on_scored, checkpoint, on_start in self.scoring_jobs:
            if checkpoint is not None:
                self.runner.load_checkpoint(checkpoint, strict=True)
            if on_start is not None:
                on_start()
            for b in range(0, len(archs), step):
                batch = archs[b:b + step]
                on_scored(batch, self.score_candidates(batch))
        self.runner.call_hook('after_train')
        return self.runner.model


def score_with_supernet(args, cfg, space, archs, keys, state, save) -> None:
    """Fill ``state['supernet']`` (and ``state['more_supernets'][sha256]``
    for each further supernet) with the search's score of each
    architecture (BN recalibration + evaluation), saving after each batch.

    Call it on every rank (with the same ``state``). The search config's
    runner runs :class:`SupernetScoringLoop`: in the loop's ``'data'`` mode
    all ranks score each architecture together; in ``'candidate'`` mode
    (the loop's default with several processes) rank ``j`` scores
    architecture ``j`` of each batch of ``world_size`` and the records are
    gathered in order. Every rank ends with the same scores; ``save``
    writes them on rank 0 only.

    Args:
        args: the options (``checkpoint``, ``more_checkpoints``,
            ``more_sha256``: their SHA-256, ``config``).
        cfg: the search config (``train_cfg.type`` the
            ``EvolutionSearchLoop``; not changed).
        space: its search space.
        archs (list[tuple]): the architectures.
        keys (list[str]): their :func:`arch_key`.
        state (dict): the state (:func:`load_state`).
        save (Callable): saves the state.

    Raises:
        TypeError: the runner's train loop is no
            :class:`SupernetScoringLoop`.
        ValueError: a checkpoint that does not fit the model, or a
            supernet of another search space.
        RuntimeError: a ``PathSamplerHook`` in the config.
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
    from mmdetnas.utils import check_checkpoint_matches
    from mmdetnas.utils.run_files import RunFiles
    cfg = copy.deepcopy(cfg)
    cfg.train_cfg.type = 'mmdetnas.SupernetScoringLoop'
    # refused inputs leave nothing of the Runner (log folder, config copy)
    files = RunFiles(cfg)
    with files.on_refusal():
        runner = files.track(build_runner(cfg))
        for path in [args.checkpoint, *args.more_checkpoints]:
            check_checkpoint_matches(runner.model, path)
        loop = runner.train_loop
        if not isinstance(loop, SupernetScoringLoop):
            raise TypeError(f'{args.config}: the train loop is '
                            f'{type(loop).__name__}, not '
                            'EvolutionSearchLoop')
        if loop.space != space:
            raise ValueError(
                f'the supernet search space {loop.space.describe()} '
                f"differs from the config's {space.describe()}")

    total = sum(len(todo) for _, _, todo in jobs)
    done = dict(count=0, start=None)

    def on_start(path, todo):
        if done['start'] is None:
            done['start'] = time.time()
            _log(f'stage A: {_rank_world()[1]} process(es), the search '
                 f"loop's '{loop.parallel}' mode")
        _log(f'stage A: scoring {len(todo)} architecture(s) with the '
             f'supernet {path}')

    def on_scored(scores, key_of, batch, records):
        for arch, rec in zip(batch, records):
            key = key_of[tuple(arch)]
            if tuple(rec['arch']) != tuple(arch):
                raise RuntimeError(
                    f'stage A: the record of {key} is of another '
                    f"architecture {rec['arch']}")
            done['count'] += 1
            i = done['count']
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
                 f"{_eta(done['start'], i, total - i)}")
        save()

    for path, scores, todo in jobs:
        key_of = {tuple(a): k for a, k in todo}
        loop.add_job(
            [a for a, _ in todo],
            lambda batch, records, s=scores, ko=key_of: on_scored(
                s, ko, batch, records),
            # load_from loaded the first checkpoint
            checkpoint=None if path == args.checkpoint else path,
            on_start=lambda p=path, t=todo: on_start(p, t))
    runner.train()


# ---------------------------------------------------- stage B: stand-alone
def train_command(args,
                  arch_file: str,
                  work_dir: str,
                  python: str = sys.executable,
                  resume: bool = False) -> list:
    """The ``tools/train.py`` command of one stand-alone training (run in
    the repository root): ``args.subnet_config`` with the architecture file
    and ``args.standalone_opts`` as ``--cfg-options``."""
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
    environment of the script).

    Raises:
        ValueError: a Slurm command with an argument holding white space
            (``tools/slurm_train.sh`` passes its extra arguments on
            unquoted).
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
    architecture (in ``keys`` order).

    Returns:
        str: its path.

    Raises:
        ValueError: see :func:`printed_command` (nothing is written).
    """
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
    from mmdetnas.utils.run_metrics import last_checkpoint
    try:  # also of a work dir moved from another machine
        path = last_checkpoint(work_dir)
    except FileNotFoundError:
        return None, -1
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
    iteration-based configs log validation at step = epoch = 0). The
    records are read with :mod:`mmdetnas.utils.run_metrics`.

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
    was not logged (in this process, with the subnet config).

    Returns:
        dict: ``score`` (the ``key`` metric), ``source`` (``ckpt``) and
        ``metrics``.

    Raises:
        RuntimeError: ``key`` is not among the validation's metrics.
    """
    from mmengine.config import Config

    from mmdetnas.utils.setup_env import adapt_sync_bn
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
    others with ``tools/train.py`` in a subprocess (``--resume`` when a
    checkpoint exists; the subprocess dies with this process), saving
    after each.

    Raises:
        RuntimeError: a training failed, ended without its final
            checkpoint, or its result lacks ``standalone_key``.
    """
    from mmengine.config import Config
    opts = parse_cfg_options(args.standalone_opts)
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
    """Scores of the further supernets (one list each, in ``keys`` order)
    and the pairwise agreement of all supernets (the first is
    ``args.checkpoint``; :func:`mmdetnas.search.supernet_agreement`),
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
    """``ranking.json``, ``ranking.md`` and ``ranking.png`` in
    ``args.work_dir``: the two rankings, Kendall tau (with its p-value),
    Spearman rho and top-``k`` overlap of every predictor (the supernets,
    their mean, backbone FLOPs and params) with the stand-alone ranking.

    Returns:
        dict: what ``ranking.json`` holds (NaN as is; ``None`` in the
        file).
    """
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
    atomic_json(osp.join(args.work_dir, 'ranking.json'), _no_nan(result),
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


# ---------------------------------------------------------------- the study
def run_ranking_study(args) -> Optional[dict]:
    """Run the ranking-correlation experiment, or continue a killed one.

    Args:
        args: the options, as ``tools/analysis_tools/
            ranking_correlation.py`` parses them (an ``argparse.Namespace``
            or an object with the same attributes; not changed):
            ``config`` (search config), ``checkpoint`` (supernet),
            ``subnet_config``, ``work_dir``, ``num_archs``,
            ``flops_band``, ``from_candidates``, ``arch_file``,
            ``standalone_key``, ``topk``, ``seed``, ``pool``,
            ``standalone_opts``, ``more_checkpoints``, ``print_commands``,
            ``gpus``, ``slurm``, ``cfg_options`` and ``launcher``.

    Returns:
        dict | None: what ``ranking.json`` holds; ``None`` when the study
        stopped after stage A and wrote ``train_commands.sh``
        (``print_commands``, or several processes).

    Raises:
        FileNotFoundError: a checkpoint or config does not exist.
        ValueError: ``num_archs`` below 2, ``gpus``/``slurm`` without
            ``print_commands``, a search config of another loop, a
            train command that cannot be written, or what
            :func:`select_archs` and :func:`score_with_supernet` raise.
        RuntimeError: a saved state of another experiment
            (:func:`load_state`), or a failed stand-alone training
            (:func:`train_standalone`).
    """
    import argparse

    from mmdetnas.spaces import build_search_space, save_arch_file
    from mmdetnas.utils.setup_env import register_all_modules
    args = copy.copy(args)
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
    # the user's launcher: the process group starts here (prepare_cfg), and
    # the search config's runner scores with every process
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
            atomic_json(state_path, state)

    def start():
        state = load_state(state_path,
                           state_identity(args, space, score_key, archs),
                           standalone_key)
        atomic_json(state_path, state)
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
                atomic_json(
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
