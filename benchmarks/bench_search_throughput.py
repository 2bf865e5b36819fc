"""Benchmark 4: search throughput and scaling.

Candidates per hour of ``tools/search.py`` with the quickstart search config
(search_val split, BN recalibration on) with 1 process and with 2 processes
(``torchrun --nproc_per_node 2 tools/search.py ... --launcher pytorch``;
gloo on CPU, NCCL on GPU), alternating 1/2/2/1... over rounds, each a fresh
tiny search: ``max_generations=1 population_size=P num_mutation=0
num_crossover=0 calib_iters=1``. Seconds come from ``candidates.jsonl``
(``calib_seconds + eval_seconds`` per candidate) and from the wall time of
the whole command (process start-up, checkpoint loading and outputs
included). Scaling efficiency = throughput(2) / (2 x throughput(1)).
Target (candidate-parallel mode): scaling efficiency >= 0.9 by the loop's
candidates per hour (sum of calib + eval seconds), identical results.

Every process runs with ``OMP_NUM_THREADS`` = ``--threads`` (default 1), so
on a 2-core machine the 2-process run uses both cores and the 1-process run
one.

The supernet checkpoint is an initialised quickstart supernet (see
``common.make_supernet_checkpoint``).

    python benchmarks/bench_search_throughput.py [--smoke] [--json OUT]
"""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import common  # noqa: E402


def parse_args(argv=None):
    p = common.base_parser(__doc__.split('\n')[0])
    p.add_argument('--rounds', type=int,
                   help='searches per process count (default 3, smoke 1)')
    p.add_argument('--population', type=int,
                   help='candidates per search (default 4, smoke 2)')
    p.add_argument('--images', type=int,
                   help='first N search_val images (default all, smoke 2)')
    p.add_argument('--nproc', type=int, default=2,
                   help='process count compared with 1 (default 2)')
    p.add_argument('--parallel', choices=['candidate', 'data'],
                   default='candidate',
                   help="train_cfg.parallel of the multi-process search "
                   "(default 'candidate': each rank scores whole candidates;"
                   " 'data': all ranks score each candidate together)")
    p.add_argument('--timeout', type=int, default=900,
                   help='seconds before a search command is killed')
    common.add_supernet_ckpt_arg(p)
    args = p.parse_args(argv)
    for k, full, smoke in (('rounds', 3, 1), ('population', 4, 2),
                           ('images', None, 2)):
        if getattr(args, k) is None:
            setattr(args, k, smoke if args.smoke else full)
    return args


def search_cmd(args, nproc, ckpt, work_dir, device):
    opts = [
        'train_cfg.max_generations=1',
        f'train_cfg.population_size={args.population}',
        'train_cfg.num_mutation=0', 'train_cfg.num_crossover=0',
        'train_cfg.calib_iters=1',
        f'train_cfg.top_k={min(3, args.population)}', 'log_level=WARNING',
        # the paper's supernet layout (see common.load_cfg)
        'model.backbone.search_space=300M',
        'model.backbone.weight_sharing=none', 'train_cfg.flops=[None,3e8]',
        'train_cfg.max_tries_factor=10'
    ]
    if args.images:
        opts.append(f'val_dataloader.dataset.indices={args.images}')
    if args.smoke:
        opts.append('train_cfg.calib_batch_size=2')
    tool = osp.join(common.ROOT, 'tools', 'search.py')
    common_args = [common.SEARCH_CFG, ckpt, '--work-dir', work_dir]
    if nproc == 1:
        return [sys.executable, tool] + common_args + ['--cfg-options'] + \
            opts
    opts.append(f'train_cfg.parallel={args.parallel}')
    if device == 'cuda':
        opts.append('env_cfg.dist_cfg.backend=nccl')
    return [
        sys.executable, '-m', 'torch.distributed.run', '--nnodes', '1',
        '--nproc_per_node', str(nproc), '--master_addr', '127.0.0.1',
        '--master_port', str(common.free_port()), tool
    ] + common_args + ['--launcher', 'pytorch', '--cfg-options'] + opts


def run_search(args, nproc, ckpt, work_dir, device) -> dict:
    cmd = search_cmd(args, nproc, ckpt, work_dir, device)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               PYTHONUNBUFFERED='1')
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              cwd=common.ROOT, env=env,
                              timeout=args.timeout)
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = 'timeout', str(e.stdout or ''), str(e.stderr or '')
    wall = time.perf_counter() - t0
    records = []
    path = osp.join(work_dir, 'candidates.jsonl')
    if osp.isfile(path):
        with open(path) as f:
            records = [json.loads(line) for line in f if line.strip()]
    ok = rc == 0 and len(records) > 0
    return dict(nproc=nproc, rc=rc, ok=ok, wall=wall, records=records,
                cmd=' '.join(cmd), log_tail=(out + '\n' + err)[-6000:])


def throughput(runs, concurrent: int = 1) -> dict:
    """Candidates/hour over the successful runs of one process count;
    ``concurrent`` candidates are scored at once (the process count in
    'candidate' mode, else 1)."""
    per_cand = [r['calib_seconds'] + r['eval_seconds'] for run in runs
                for r in run['records']]
    evals = [r['eval_seconds'] for run in runs for r in run['records']]
    calibs = [r['calib_seconds'] for run in runs for r in run['records']]
    n = sum(len(run['records']) for run in runs)
    wall = sum(run['wall'] for run in runs)
    return dict(
        n=n, per_cand=common.summarize(per_cand),
        eval=common.summarize(evals), calib=common.summarize(calibs),
        loop_cph=concurrent * 3600 * n / sum(per_cand),
        median_cph=concurrent * 3600 / common.summarize(per_cand)['median'],
        wall_cph=3600 * n / wall, wall=[run['wall'] for run in runs])


def main(argv=None):
    args = parse_args(argv)
    device = common.setup(args)
    env = common.env_info(device)
    rep = common.Report(
        'search_throughput',
        f'Search throughput and scaling (tools/search.py, 1 vs {args.nproc}'
        ' processes)', env, args.smoke)
    tmp = tempfile.mkdtemp(prefix='mmdetnas-bench-search-')
    try:
        run(args, device, rep, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rep.emit(args.json)


def run(args, device, rep, tmp):
    ckpt = common.supernet_checkpoint(args, rep, tmp)
    n2 = args.nproc
    if device == 'cuda':
        import torch
        if torch.cuda.device_count() < n2:
            rep.headline(f'scaling efficiency {n2} vs 1 process', None)
            rep.verdict(f'{n2}-process search', None, None,
                        f'needs {n2} GPUs (NCCL, one per process); this '
                        f'machine has {torch.cuda.device_count()}. Run with '
                        '--device cpu for the gloo comparison')
            return
    runs = {1: [], n2: []}
    for r in range(args.rounds):
        order = [1, n2] if r % 2 == 0 else [n2, 1]
        for n in order:
            res = run_search(args, n, ckpt, osp.join(tmp, f'{n}p_{r}'),
                             device)
            print(f'[search_throughput] round {r} {n} process(es): '
                  f"rc={res['rc']}, {len(res['records'])} candidates, "
                  f"{res['wall']:.1f} s wall", flush=True)
            runs[n].append(res)
    ok = {n: [x for x in v if x['ok']] for n, v in runs.items()}
    failed = {n: [x for x in v if not x['ok']] for n, v in runs.items()}
    rep.data = dict(runs={str(n): [{k: v for k, v in x.items()}
                                   for x in rs] for n, rs in runs.items()},
                    population=args.population, images=args.images)
    cores = os.cpu_count()
    where = ('gloo, CPU' if device == 'cpu' else 'NCCL, GPU')
    rows, tp = [], {}
    for n in (1, n2):
        if not ok[n]:
            rows.append([n, 'FAILED', '', '', '', '', ''])
            continue
        t = tp[n] = throughput(
            ok[n], n if args.parallel == 'candidate' else 1)
        rows.append([
            n, t['n'], common.fmt_stat(t['eval']),
            common.fmt_stat(t['calib']), f"{t['median_cph']:.0f}",
            f"{t['loop_cph']:.0f}", f"{t['wall_cph']:.0f}"
        ])
    if 1 in tp and n2 in tp:
        eff = {k: tp[n2][k] / (n2 * tp[1][k])
               for k in ('median_cph', 'loop_cph', 'wall_cph')}
        eval_speedup = tp[1]['eval']['median'] / tp[n2]['eval']['median']
        calib_speedup = (tp[1]['calib']['median']
                         / tp[n2]['calib']['median'])
        rows.append([
            f'scaling efficiency {n2} vs 1', '',
            f'eval speed-up x{eval_speedup:.2f}',
            f'calib speed-up x{calib_speedup:.2f}',
            f"{eff['median_cph']:.2f}", f"{eff['loop_cph']:.2f}",
            f"{eff['wall_cph']:.2f}"
        ])
        rep.data['efficiency'] = eff
        rep.headline(f'scaling efficiency {n2} vs 1 process (median '
                     'candidates/hour)', eff['median_cph'])
        rep.headline(f'scaling efficiency {n2} vs 1 process (loop total '
                     'candidates/hour)', eff['loop_cph'])
        if args.parallel == 'candidate':
            # issue #11: candidates per hour of the search loop (process
            # start-up, a fixed cost of every run, is in the wall column)
            good = eff['loop_cph'] >= 0.9
            rep.verdict(
                f'scaling efficiency >= 0.9 at {n2} processes (loop total '
                'candidates/hour)', eff['loop_cph'], good,
                '' if good else
                f"eval speed-up x{eval_speedup:.2f} and calib speed-up "
                f"x{calib_speedup:.2f} per candidate with {n2} processes "
                'running at once')
        rep.headline(f'scaling efficiency {n2} vs 1 process (wall time)',
                     eff['wall_cph'])
        # same candidates, same scores with 1 and n2 processes
        a = {tuple(r['arch']): r['metrics'] for r in ok[1][0]['records']}
        b = {tuple(r['arch']): r['metrics'] for r in ok[n2][0]['records']}
        same = a == b
        rep.verdict(f'{n2}-process search evaluates the same candidates '
                    'with the same (unrounded) metrics as 1 process', None,
                    same, '' if same else f'1 process: {a}; {n2}: {b}')
    rep.table(
        ['processes', 'candidates', 'eval s/candidate', 'calib s/candidate',
         'cand/hour (median)', 'cand/hour (loop total)',
         'cand/hour (wall)'], rows,
        caption=f'{args.rounds} search(es) of {args.population} candidates'
        f' per process count ({where}; {cores} CPU cores, '
        f'OMP_NUM_THREADS={args.threads} per process), search_val '
        f"{'first %d images' % args.images if args.images else 'all images'}"
        ', calib_iters=1. Per-candidate seconds from candidates.jsonl: '
        'median [IQR] (min-max); cand/hour (median) = 3600 / median '
        '(calib + eval); (loop total) = candidates / sum(calib + eval); '
        '(wall) = candidates / wall time of the commands (start-up '
        'included).')
    if device == 'cpu':
        rep.note(f'the {n2} processes share the {cores} CPU cores of this '
                 'machine (one thread each), and the machine is shared with '
                 'other work: the scaling numbers are an upper-bounded, '
                 'noisy estimate')
    if args.parallel == 'candidate':
        rep.note("train_cfg.parallel='candidate': each rank recalibrates and "
                 'scores whole candidates, so per-candidate seconds do not '
                 f'drop; {n2} candidates are scored at once (cand/hour '
                 f'(median) and (loop total) count {n2} concurrent '
                 'candidates)')
    else:
        rep.note("train_cfg.parallel='data': BN recalibration runs the same "
                 'calibration batches on every rank, so it does not speed '
                 'up with more processes; evaluation is split across ranks')
    if not (1 in tp and n2 in tp):
        rep.headline(f'scaling efficiency {n2} vs 1 process', None)
    for n, fs in failed.items():
        for f in fs:
            done = len(f['records']) >= args.population
            rep.verdict(f'{n}-process search runs', None, False,
                        f"rc={f['rc']}, {len(f['records'])} of "
                        f'{args.population} candidates recorded'
                        + ('; the search itself finished: the crash came '
                           'at the end (outputs / process exit)'
                           if done else ''))
            rep.note(f"FAILED: `{f['cmd']}`\n\n```\n"
                     f"{f['log_tail'][-3000:]}\n```")
    if args.smoke:
        rep.note('smoke mode: 2 candidates on 2 images; not a measurement')


if __name__ == '__main__':
    main()
