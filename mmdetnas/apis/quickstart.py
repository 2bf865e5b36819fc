"""The whole DetNAS pipeline on the embedded real data, on a CPU: what
``tools/quickstart.py`` runs (:func:`run_quickstart`).

Each stage is a plain ``tools/`` command, run in a subprocess from the
checkout (printed before it runs, its output in ``DIR/logs/<stage>.log``):
the data (NEON tree-crown tiles and Fashion-MNIST), supernet pre-training on
Fashion-MNIST, supernet fine-tuning on the tiles, the evolutionary search,
the re-training of the best subnet and of the all-3x3 baseline, and their
test. :func:`run_pipeline` runs it once and writes ``DIR/summary.md`` and
``DIR/summary.json`` (a finished run); :func:`run_seeds` runs it once per
seed into ``DIR/seed_S`` (finished seeds are collected, not run again) and
writes ``DIR/seeds_summary.md`` (:func:`write_seeds_summary`: mean, spread
and a paired t-test, :func:`paired_t_test`).
"""
import argparse
import glob
import json
import os
import os.path as osp
import shlex
import subprocess
import sys
import threading
import time

from mmdetnas.apis.tool_setup import REPO_ROOT, die_with_parent
from mmdetnas.utils.atomic import atomic_write
from mmdetnas.utils.run_metrics import (TEST_METRICS, TRAIN_SCALARS,
                                        last_checkpoint, latest_metrics)

__all__ = [
    'TINY', 'FULL', 'StageFailed', 'run_quickstart', 'run_pipeline', 'run_seeds',
    'read_finished_run', 'write_seeds_summary', 'paired_t_test',
    'write_summary'
]

ROOT = REPO_ROOT

QS = 'configs/quickstart'
BASELINE = ('shuffle_3x3', ) * 20  # plain ShuffleNetV2 layout
SPACE = '300M-kernel'  # the quickstart supernets' search space

# schedule overrides of --tiny (CI); the configs hold the full quickstart
TINY = dict(
    fashion=['--num-train', '1000', '--num-val', '200'],
    pretrain=[
        'train_cfg.max_iters=40', 'default_hooks.checkpoint.interval=40'
    ],
    # 30 (was 60, then 40): the tiny run checks the pipeline, and the
    # detection re-training starts from the classification checkpoint, not
    # from the supernet; keeps quickstart-tiny (and make test) inside its
    # CI budget
    supernet=[
        'train_cfg.max_iters=30', 'train_cfg.val_interval=30',
        'default_hooks.checkpoint.interval=30'
    ],
    search=[
        'train_cfg.max_generations=2', 'train_cfg.population_size=4',
        'train_cfg.num_mutation=1', 'train_cfg.num_crossover=1',
        'train_cfg.top_k=2', 'train_cfg.calib_iters=2'
    ],
    # 80: the tiny classifier must beat chance (measured on the tiny data,
    # seed 0: 40 iterations 10.0% top-1, 80 iterations 41.5%)
    subnet_pretrain=[
        'train_cfg.max_iters=80', 'default_hooks.checkpoint.interval=80'
    ],
    retrain=[
        'train_cfg.max_iters=30', 'train_cfg.val_interval=30',
        'default_hooks.checkpoint.interval=30'
    ],
)
FULL = dict(fashion=['--num-train', '6000', '--num-val', '1000'])


_TIMES_LOCK = threading.Lock()


class StageFailed(RuntimeError):
    """A stage command exited with an error (the message names its log)."""


def run(cmd, log_dir, name, times, log_name=None):
    """Run one stage command, tee its output to a log
    (``log_dir/<log_name or name>.log``), add its wall time to
    ``times[name]``.

    Raises:
        StageFailed: the command failed.
    """
    print(f'\n$ {" ".join(shlex.quote(c) for c in cmd)}', flush=True)
    os.makedirs(log_dir, exist_ok=True)
    log = osp.join(log_dir, f'{log_name or name}.log')
    t0 = time.time()
    with open(log, 'a') as f:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            preexec_fn=die_with_parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True)
        for line in proc.stdout:
            f.write(line)
            f.flush()  # `tail -f` the stage log while it runs
            if (' - mmengine - ' in line and 'paramwise_options' not in line
                    and 'Config:' not in line) or 'Error' in line or \
                    line.startswith(('exported', 'split', 'wrote', 'Tree',
                                     'supernet_train', 'search_val', 'test ')):
                sys.stdout.write(line)
                sys.stdout.flush()
        rc = proc.wait()
    with _TIMES_LOCK:  # branches run side by side with --jobs
        times[name] = times.get(name, 0.0) + time.time() - t0
    if rc:
        raise StageFailed(f'stage {name!r} failed (exit {rc}); see {log}')


def run_quickstart(args):
    """Run the quickstart with the options of ``tools/quickstart.py``.

    Args:
        args: an ``argparse.Namespace``-like object: ``tiny``,
            ``retinanet``, ``work_dir``, ``skip_data``, ``jobs`` (>= 1),
            ``seed`` and ``seeds`` (a list: one run per seed, else one run
            with ``seed``).

    Returns:
        list[dict] | dict: the summary rows (searched and baseline) of one
        run, or ``{seed: {name: row}}`` of several.

    Raises:
        ValueError: ``jobs`` below 1.
        StageFailed: a stage failed (the message names its log).
    """
    if args.jobs < 1:
        raise ValueError(
            f'--jobs: expected a positive number, got {args.jobs}')
    if args.seeds:
        return run_seeds(args)
    return run_pipeline(args)


def run_pipeline(args):
    """One run of the whole pipeline; returns the summary rows."""
    py = sys.executable
    wd = args.work_dir
    sched = TINY if args.tiny else FULL
    det = 'retinanet' if args.retinanet else 'faster-rcnn'
    times = {}
    start = time.time()
    logs = osp.join(wd, 'logs')

    seed_opt = f'randomness.seed={args.seed}'

    def opts(stage, *extra):
        items = list(sched.get(stage, [])) + list(extra)
        items.append(f'train_cfg.seed={args.seed}' if stage == 'search'
                     else seed_opt)
        return ['--cfg-options', *items]

    if not args.skip_data:
        if osp.isdir(logs):
            for old in glob.glob(osp.join(logs, '*.log')):
                os.remove(old)
        run([
            py, 'tools/dataset_converters/prepare_neon_trees.py', '--out-dir',
            'data/neon_trees'
        ], logs, 'data', times)
        run([
            py, 'tools/dataset_converters/prepare_fashion_mnist.py',
            '--out-dir', 'data/fashion_mnist', *sched['fashion']
        ], logs, 'data', times)

    pre_dir = osp.join(wd, 'pretrain')
    run([
        py, 'tools/train.py',
        (f'{QS}/'
         f'detnas_supernet_shufflenetv2-300m_quick_fashion-mnist.py'),
        '--work-dir', pre_dir, *opts('pretrain')
    ], logs, 'pretrain', times)

    sup_dir = osp.join(wd, 'supernet')
    sup_cfg = (
        f'{QS}/'
        f'detnas_supernet_{det}_shufflenetv2-300m_fpn_quick_neon-trees.py')
    run([
        py, 'tools/train.py', sup_cfg, '--work-dir', sup_dir,
        *opts('supernet',
              'model.backbone.init_cfg.checkpoint=' + last_checkpoint(pre_dir))
    ], logs, 'supernet', times)
    supernet_ckpt = last_checkpoint(sup_dir)

    search_dir = osp.join(wd, 'search')
    run([
        py, 'tools/search.py',
        (f'{QS}/'
         f'detnas_search_{det}_shufflenetv2-300m_fpn_quick_neon-trees.py'),
        supernet_ckpt, '--work-dir', search_dir, *opts('search')
    ], logs, 'search', times)

    from mmdetnas.search import arch_flops
    from mmdetnas.spaces import load_arch_file, PRESETS
    from mmdetnas.spaces.arch import save_arch_file
    with open(osp.join(search_dir, 'candidates.jsonl')) as f:
        scores = {tuple(c['arch']): c['score'] for c in map(json.loads, f)}
    baseline_yaml = save_arch_file(
        osp.join(wd, 'baseline_arch.yaml'), BASELINE, SPACE)
    sub_pre_cfg = (
        f'{QS}/detnas_subnet_shufflenetv2-300m_quick_fashion-mnist.py')
    sub_cfg = (
        f'{QS}/'
        f'detnas_subnet_{det}_shufflenetv2-300m_fpn_quick_neon-trees.py')

    def branch(tag, arch_file):
        """Stages 4-5 of one architecture: classification from scratch,
        detection fine-tuning from it, test; returns its summary row."""
        arch = load_arch_file(arch_file)[1]
        arch_opt = f'model.backbone.arch={arch_file}'
        pdir = osp.join(wd, f'pretrain_{tag}')
        run([
            py, 'tools/train.py', sub_pre_cfg, '--work-dir', pdir,
            *opts('subnet_pretrain', arch_opt)
        ], logs, 'retrain', times, f'pretrain_{tag}')
        rdir = osp.join(wd, f'retrain_{tag}')
        run([
            py, 'tools/train.py', sub_cfg, '--work-dir', rdir,
            *opts('retrain', arch_opt, 'model.backbone.init_cfg.checkpoint=' +
                  last_checkpoint(pdir))
        ], logs, 'retrain', times, f'retrain_{tag}')
        tdir = osp.join(wd, f'test_{tag}')
        run([
            py, 'tools/test.py', sub_cfg,
            last_checkpoint(rdir), '--work-dir', tdir, '--cfg-options',
            arch_opt, seed_opt
        ], logs, 'test', times, f'test_{tag}')
        m = latest_metrics(tdir, TEST_METRICS)
        return dict(
            name=tag,
            arch=arch,
            flops=arch_flops(PRESETS[SPACE], arch),
            search_map=scores.get(arch),
            top1=latest_metrics(pdir, TRAIN_SCALARS).get('accuracy/top1'),
            retrained_map=latest_metrics(rdir, TRAIN_SCALARS).get(
                'coco/bbox_mAP_50'),
            test_map=m.get('coco/bbox_mAP'),
            test_map50=m.get('coco/bbox_mAP_50'))

    branches = (('searched', osp.join(search_dir, 'best_arch.yaml')),
                ('baseline', baseline_yaml))
    if args.jobs > 1:  # side by side; a failed branch fails the run
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(branch, *b) for b in branches]
            rows = [f.result() for f in futures]
    else:
        rows = [branch(*b) for b in branches]

    wall = time.time() - start
    write_summary(wd, rows, times, args, wall)
    # the seed's "finished" mark: atomic, so a kill never leaves half
    with atomic_write(osp.join(wd, 'summary.json')) as f:
        json.dump(dict(seed=args.seed, tiny=args.tiny, rows=rows,
                       times=times, wall_s=wall), f, indent=1)
    return rows


def run_seeds(args):
    """``--seeds``: the pipeline once per seed, then mean and spread (the
    summary is rewritten after every seed, so a partial study is kept). A
    seed whose work dir holds a finished run (``summary.json``) is not run
    again: a killed study resumes with its finished seeds, and seeds run as
    separate ``--seed S --work-dir DIR/seed_S`` commands are collected."""
    root = args.work_dir
    per_seed = {}
    for i, seed in enumerate(args.seeds):
        sub = argparse.Namespace(**vars(args))
        sub.seed, sub.seeds = seed, None
        sub.work_dir = osp.join(root, f'seed_{seed}')
        sub.skip_data = args.skip_data or i > 0
        done = osp.join(sub.work_dir, 'summary.json')
        saved = read_finished_run(done)
        if saved is not None:  # finished earlier (or run separately)
            if saved['seed'] == seed and saved['tiny'] == args.tiny:
                print(f'seed {seed}: reusing the finished run in '
                      f'{sub.work_dir}')
                per_seed[seed] = {r['name']: r for r in saved['rows']}
                write_seeds_summary(root, per_seed, args)
                continue
        per_seed[seed] = {r['name']: r for r in run_pipeline(sub)}
        write_seeds_summary(root, per_seed, args)
    return per_seed


def read_finished_run(path):
    """The ``summary.json`` of a finished seed, or ``None`` when there is
    none or it cannot be used (unreadable, or not a quickstart summary:
    that seed is then run again, with a message naming the file)."""
    if not osp.isfile(path):
        return None
    try:
        with open(path) as f:
            saved = json.load(f)
        missing = [k for k in ('seed', 'tiny', 'rows') if k not in saved]
        if missing:
            raise KeyError(f'no {missing}')
        return saved
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f'{path}: not a finished quickstart summary '
              f'({type(e).__name__}: {e}); running this seed again')
        return None


def write_seeds_summary(root, per_seed, args):
    """``root/seeds_summary.md``: test mAP@0.5 of the searched subnet and
    of the baseline per seed, mean ± sample standard deviation."""
    import statistics

    from mmdetnas.spaces import arch_to_indices, PRESETS
    lines = [
        f'# mmdetnas quickstart over seeds {list(per_seed)}'
        f"{' (tiny)' if args.tiny else ''}", '',
        '| seed | searched arch | searched FLOPs (MMACs) | '
        'searched test mAP@0.5 | baseline test mAP@0.5 | searched - '
        'baseline |', '|---|---|---|---|---|---|'
    ]
    diffs, cols = [], {'searched': [], 'baseline': []}
    for seed, rows in per_seed.items():
        a, b = rows['searched'], rows['baseline']
        for k in cols:
            cols[k].append(rows[k]['test_map50'] or 0.0)
        d = (a['test_map50'] or 0.0) - (b['test_map50'] or 0.0)
        diffs.append(d)
        idx = ''.join(map(str, arch_to_indices(a['arch'], PRESETS[SPACE])))
        lines.append(f"| {seed} | `{idx}` | {a['flops'] / 1e6:.1f} | "
                     f"{_fmt(a['test_map50'])} | {_fmt(b['test_map50'])} | "
                     f'{d:+.4f} |')

    def ms(v):
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        mean = round(statistics.mean(v), 10) + 0.0  # no '-0.0000'
        return f'{mean:.4f} ± {sd:.4f}'

    lines.append(f"| mean ± sd | | | {ms(cols['searched'])} | "
                 f"{ms(cols['baseline'])} | {ms(diffs)} |")
    wins = sum(d >= 0 for d in diffs)
    lines += ['', f'Searched >= baseline in {wins} of {len(diffs)} seeds '
              f'(baseline: all 3x3, {PRESETS[SPACE].name}).']
    t, p = paired_t_test(diffs)
    if p == p:  # defined: >= 2 seeds, differences not all equal
        lines.append(
            f'Paired t-test of the difference over the seeds: t = '
            f'{round(t, 2) + 0.0:.2f}, '
            f'two-sided p = {p:.2f} (a p above 0.05 means the difference is '
            'within the seed-to-seed spread).')
    text = '\n'.join(lines) + '\n'
    with open(osp.join(root, 'seeds_summary.md'), 'w') as f:
        f.write(text)
    print('\n' + text)


def paired_t_test(diffs) -> tuple:
    """Two-sided paired t-test of per-seed differences (searched -
    baseline) against 0, as ``scipy.stats.ttest_rel``; ``(t, p)``, both
    ``nan`` for fewer than 2 differences or differences that are all
    equal (no spread: the test is undefined)."""
    if len(diffs) < 2 or len(set(diffs)) < 2:
        return float('nan'), float('nan')
    from scipy import stats
    res = stats.ttest_1samp(list(diffs), 0.0)
    return float(res[0]), float(res[1])


def _fmt(v, spec='.4f'):
    return '-' if v is None else format(v, spec)


def write_summary(wd, rows, times, args, wall):
    import platform

    import torch
    from mmdetnas.spaces import arch_to_indices, PRESETS
    space = PRESETS[SPACE]
    lines = [
        f"# mmdetnas quickstart {'(tiny) ' if args.tiny else ''}"
        f'(seed {args.seed})', '',
        f'Machine: {platform.processor() or platform.machine()}, '
        f'{os.cpu_count()} CPU cores, torch {torch.__version__}, '
        f'{"CUDA" if torch.cuda.is_available() else "CPU only"}.', '',
        f'Search space {SPACE} (choice indices: 0 = 3x3, 1 = 5x5, 2 = 7x7), '
        'weight-entangled supernet; search score search-val mAP@0.5, '
        'backbone FLOPs held within 5% of the baseline.', '',
        '| subnet | architecture (choice indices) | backbone FLOPs (MMACs, '
        '224x224) | search-val mAP@0.5 (supernet) | Fashion-MNIST top-1 (%) '
        '| search-val mAP@0.5 (re-trained) | test mAP | test mAP@0.5 |',
        '|---|---|---|---|---|---|---|---|'
    ]
    for r in rows:
        idx = ''.join(map(str, arch_to_indices(r['arch'], space)))
        lines.append(f"| {r['name']} | `{idx}` | {r['flops'] / 1e6:.1f} | "
                     f"{_fmt(r['search_map'])} | {_fmt(r['top1'], '.1f')} | "
                     f"{_fmt(r['retrained_map'])} | {_fmt(r['test_map'])} | "
                     f"{_fmt(r['test_map50'])} |")
    lines += ['', '| stage | wall time (s) |', '|---|---|']
    lines += [f'| {k} | {v:.0f} |' for k, v in times.items()]
    lines += [f'| total | {wall:.0f} |', '']
    if args.jobs > 1:
        lines += [f'With --jobs {args.jobs} the two branches of retrain and '
                  'test ran side by side: their rows add both branches, the '
                  'total is the elapsed time.', '']
    lines += [
        f'Search plots: {wd}/search/search_curve.png, '
        f'{wd}/search/pareto.png'
    ]
    text = '\n'.join(lines) + '\n'
    with open(osp.join(wd, 'summary.md'), 'w') as f:
        f.write(text)
    print('\n' + text)

