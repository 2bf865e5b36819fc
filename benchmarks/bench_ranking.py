"""Does the quickstart supernet rank architectures? (Yu et al., ICLR 2020)

    python benchmarks/bench_ranking.py [--smoke] [--json OUT]
        [--work-dir work_dirs/bench_ranking] [--num-archs 10]
        [--band 272e6 284e6] [--seeds 0 1] [--supernet-iters 300]
        [--standalone-iters 600] [--num-train 6000] [--num-val 5000]
        [--jobs 2] [--supernet-seeds 0 1] [--supernet-ckpt PATH ...]

Method, on Fashion-MNIST (classification, the stage-1 supernet of the
quickstart; the cheapest place on a CPU where stand-alone training of 10+
architectures is affordable). The benchmark writes its own copy of the data
(``data/fashion_mnist_ranking_<train>_<val>``, ``--num-train`` /
``--num-val`` class-balanced images; default 6000 / 5000): the
architectures of a narrow FLOPs band differ by about a point of top-1, and
on the quickstart's 1000 validation images one point is within the
binomial standard error of a single measurement (1.4 points at 70%); on
5000 it is 0.65. Every stage below reads that copy:

1. train the weight-entangled classification supernet of the quickstart
   (``tools/train.py``, ``--supernet-iters`` iterations), once per seed of
   ``--supernet-seeds`` (or reuse ``--supernet-ckpt``, one checkpoint per
   supernet); the first supernet is *the* supernet of the target, the others
   measure how much the supernet's ranking depends on its training seed;
2. pick ``--num-archs`` architectures spread evenly over a *narrow* band of
   backbone FLOPs (default 272-284M MACs, about 4%: size cannot explain the
   ranking) with the ranking tool
   (``tools/analysis_tools/ranking_correlation.py``), which scores each with
   the supernet exactly as the search does (BN recalibration, top-1 on the
   validation images);
3. train every architecture stand-alone from scratch with the quickstart
   subnet config for ``--standalone-iters`` iterations (default 600, the
   quickstart subnet's schedule), once per seed of ``--seeds`` (the same
   architectures for every seed; ``--jobs`` seeds at once, one process
   each);
4. report Kendall tau, Spearman rho and top-3 overlap of the supernet, of
   backbone FLOPs and of params against the stand-alone top-1 (mean over the
   seeds), and the seed-to-seed Kendall tau of stand-alone training (the noise
   ceiling: no predictor can be expected to agree with stand-alone training
   better than stand-alone training agrees with itself), with the two-sided
   p-value of each tau; the same for every further supernet, for the mean
   of the supernets' scores, and the supernet seed-to-seed Kendall tau (how
   far the supernet's own ranking is repeatable).

Target (issue): supernet tau >= 0.4 and above both proxies. A miss is
reported as a result.

With ``--quickstart-dir work_dirs/quickstart/seed_0`` (a finished quickstart
run) it also measures the paper's second claim (DetNAS Sec. 4.3: searching
on the detection task beats searching on classification): the quickstart's
classification supernet is searched with Fashion-MNIST top-1 as the score
(same loop, same FLOPs limit), the winner is re-trained exactly as the
quickstart re-trains its subnets (classification from scratch, then
detection fine-tuning, same seed) and tested; the table puts its test
mAP@0.5 next to the quickstart's detection-searched subnet and baseline.

Every training is resumable (the ranking tool keeps its state; finished
stages are skipped), so a killed benchmark continues where it stopped.
"""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, HERE)

import common  # noqa: E402

QS = 'configs/quickstart'
SUPERNET_CFG = f'{QS}/detnas_supernet_shufflenetv2-300m_quick_fashion-mnist.py'
SEARCH_CFG = f'{QS}/detnas_search_shufflenetv2-300m_quick_fashion-mnist.py'
SUBNET_CFG = f'{QS}/detnas_subnet_shufflenetv2-300m_quick_fashion-mnist.py'
TOOL = 'tools/analysis_tools/ranking_correlation.py'


def parse_args(argv=None):
    p = common.base_parser(__doc__.split('\n')[0])
    # the trainings are subprocesses: --threads sets their torch threads
    p.add_argument('--work-dir', default='work_dirs/bench_ranking')
    p.add_argument('--num-archs', type=int, default=10)
    p.add_argument('--band', nargs=2, type=float, default=(272e6, 284e6),
                   metavar=('LO', 'HI'), help='backbone MACs band')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    p.add_argument('--supernet-iters', type=int, default=300)
    p.add_argument('--standalone-iters', type=int, default=600)
    p.add_argument('--num-train', type=int, default=6000,
                   help='Fashion-MNIST training images of the copy')
    p.add_argument('--num-val', type=int, default=5000,
                   help='validation images (supernet and stand-alone '
                   'top-1)')
    p.add_argument('--jobs', type=int, default=2,
                   help='seeds trained at once (one process each)')
    p.add_argument('--supernet-seeds', type=int, nargs='+', default=[0, 1],
                   help='one supernet per seed; the first is scored '
                   'against the target, the others measure the supernet '
                   'seed-to-seed ranking')
    p.add_argument('--supernet-ckpt', nargs='+',
                   help='reuse trained supernets (one per supernet seed)')
    p.add_argument('--quickstart-dir',
                   help='a finished quickstart run: also compare searching '
                   'on classification vs on detection')
    p.add_argument('--quickstart-seed', type=int, default=0,
                   help='the seed that quickstart run used')
    return p.parse_args(argv)


def ensure_fashion_mnist(num_train: int, num_val: int) -> str:
    """The benchmark's own Fashion-MNIST copy (written once, deterministic);
    returns its folder, relative to the repository root."""
    root = f'data/fashion_mnist_ranking_{num_train}_{num_val}'
    val = osp.join(common.ROOT, root, 'meta', 'val.txt')
    if osp.isfile(val):
        with open(val) as f:
            if sum(1 for _ in f) == num_val:
                return root
    subprocess.run([
        sys.executable, 'tools/dataset_converters/prepare_fashion_mnist.py',
        '--out-dir', root, '--num-train', str(num_train), '--num-val',
        str(num_val)
    ], cwd=common.ROOT, check=True)
    return root


def run(cmd, log):
    print('$ ' + ' '.join(cmd), flush=True)
    with open(log, 'a') as f:
        proc = subprocess.run(cmd, cwd=common.ROOT, stdout=f,
                              stderr=subprocess.STDOUT)
    if proc.returncode:
        with open(log) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f'{cmd[1]} failed (rc {proc.returncode}); log '
                           f'{log}:\n{tail}')


def train_supernets(args, wd, log) -> list:
    """``[(label, checkpoint)]``: one supernet per ``--supernet-seeds``
    (the first in ``wd/supernet``, the others in ``wd/supernet_seed_S``),
    or the ``--supernet-ckpt`` checkpoints."""
    if args.supernet_ckpt:
        return [(f'checkpoint {i}', c)
                for i, c in enumerate(args.supernet_ckpt)]
    n = args.supernet_iters
    out = []
    for i, seed in enumerate(args.supernet_seeds):
        sdir = osp.join(wd, 'supernet' if i == 0 else f'supernet_seed_{seed}')
        ckpt = osp.join(sdir, f'iter_{n}.pth')
        if not osp.isfile(osp.join(common.ROOT, ckpt)):
            run([
                sys.executable, 'tools/train.py', SUPERNET_CFG, '--work-dir',
                sdir, '--cfg-options', f'randomness.seed={seed}',
                f'train_cfg.max_iters={n}', f'train_cfg.val_interval={n}',
                f'default_hooks.checkpoint.interval={n}',
                f'param_scheduler.0.end={n}', *args.data_opts
            ], log)
        out.append((f'seed {seed}', ckpt))
    return out


def tool_command(args, ckpt, out, seed, more=()) -> list:
    """The ranking tool's command line for one stand-alone seed (``more``:
    further supernets, ``--more-checkpoints``)."""
    n = args.standalone_iters
    return [
        sys.executable, TOOL, SEARCH_CFG, ckpt, '--subnet-config',
        SUBNET_CFG, '--work-dir', out, '--num-archs',
        str(args.num_archs), '--flops-band', str(args.band[0]),
        str(args.band[1]), '--seed', '0', '--topk', '3',
        '--standalone-key', 'accuracy/top1', '--cfg-options',
        *args.data_opts, '--standalone-opts',
        f'randomness.seed={seed}', f'train_cfg.max_iters={n}',
        f'train_cfg.val_interval={n}',
        f'default_hooks.checkpoint.interval={n}',
        f'param_scheduler.0.end={n}', *args.data_opts
    ] + (['--more-checkpoints', *more] if more else [])


def rank_with_seed(args, wd, ckpt, seed, log, more=()) -> dict:
    """One ranking-tool run; adds ``wall_seconds`` (of this call) and
    ``supernet_seconds`` (BN recalibration + evaluation, all archs, of the
    first supernet)."""
    out = osp.join(wd, f'seed_{seed}')
    t0 = time.time()
    run(tool_command(args, ckpt, out, seed, more), log)
    wall = time.time() - t0
    with open(osp.join(common.ROOT, out, 'ranking.json')) as f:
        result = json.load(f)
    with open(osp.join(common.ROOT, out, 'ranking_state.json')) as f:
        state = json.load(f)
    result['wall_seconds'] = wall
    result['supernet_seconds'] = sum(
        r['calib_seconds'] + r['eval_seconds']
        for r in state['supernet'].values())
    return result


def compare_search_tasks(args, wd, report, log) -> None:
    """Classification-searched vs detection-searched subnet (see the module
    docstring); adds a table to ``report``."""
    from mmdetnas.search import arch_flops
    from mmdetnas.spaces import load_arch_file, PRESETS
    from mmdetnas.utils.run_metrics import (TEST_METRICS, TRAIN_SCALARS,
                                            last_checkpoint, latest_metrics)
    qd = args.quickstart_dir
    seed = [f'randomness.seed={args.quickstart_seed}']
    out = osp.join(wd, 'cls_searched')
    search_dir = osp.join(out, 'search')
    if not osp.isfile(osp.join(search_dir, 'best_arch.yaml')):
        run([
            sys.executable, 'tools/search.py', SEARCH_CFG,
            last_checkpoint(osp.join(qd, 'pretrain')), '--work-dir',
            search_dir, '--cfg-options',
            f'train_cfg.seed={args.quickstart_seed}'
        ], log)
    arch_file = osp.join(search_dir, 'best_arch.yaml')
    arch_opt = f'model.backbone.arch={arch_file}'
    det_cfg = (f'{QS}/detnas_subnet_faster-rcnn_shufflenetv2-300m_fpn_'
               'quick_neon-trees.py')
    pdir, rdir, tdir = (osp.join(out, n)
                        for n in ('pretrain', 'retrain', 'test'))
    if not osp.isfile(osp.join(pdir, 'last_checkpoint')):
        run([sys.executable, 'tools/train.py', SUBNET_CFG, '--work-dir', pdir,
             '--cfg-options', arch_opt, *seed], log)
    if not osp.isfile(osp.join(rdir, 'last_checkpoint')):
        run([sys.executable, 'tools/train.py', det_cfg, '--work-dir', rdir,
             '--cfg-options', arch_opt, *seed,
             'model.backbone.init_cfg.checkpoint='
             + last_checkpoint(pdir)], log)
    if not glob.glob(osp.join(tdir, TEST_METRICS)):
        run([sys.executable, 'tools/test.py', det_cfg,
             last_checkpoint(rdir), '--work-dir', tdir,
             '--cfg-options', arch_opt, *seed], log)
    rows = []
    space = PRESETS['300M-kernel']
    for name, arch_path, test_dir, top1_dir in (
            ('searched on classification (top-1)', arch_file, tdir, pdir),
            ('searched on detection (mAP@0.5), quickstart',
             osp.join(qd, 'search', 'best_arch.yaml'),
             osp.join(qd, 'test_searched'), osp.join(qd,
                                                     'pretrain_searched')),
            ('baseline (all 3x3), quickstart',
             osp.join(qd, 'baseline_arch.yaml'),
             osp.join(qd, 'test_baseline'), osp.join(qd,
                                                     'pretrain_baseline'))):
        arch = load_arch_file(arch_path)[1]
        m = latest_metrics(test_dir, TEST_METRICS)
        top1 = latest_metrics(top1_dir, TRAIN_SCALARS).get(
            'accuracy/top1')
        rows.append([
            name, ''.join(str(space.choices.index(c)) for c in arch),
            f'{arch_flops(space, arch) / 1e6:.1f}', f'{top1:.1f}',
            f"{m['coco/bbox_mAP_50']:.4f}", f"{m['coco/bbox_mAP']:.4f}"
        ])
    report.table(
        ['subnet', 'architecture', 'FLOPs (MMACs)',
         'Fashion-MNIST top-1 after re-training', 'test mAP@0.5',
         'test mAP'], rows,
        caption='DetNAS Sec. 4.3 on the quickstart data: searching on the '
        f'detection task vs on classification (quickstart run {qd}, seed '
        f'{args.quickstart_seed}; both re-trained the same way).')


def main(argv=None):
    args = parse_args(argv)
    if args.smoke:
        args.num_archs, args.seeds = 3, args.seeds[:2] or [0, 1]
        args.supernet_iters, args.standalone_iters = 6, 4
        args.num_train, args.num_val = 1000, 200
        args.band = (262e6, 300e6)
        # a fresh folder: every smoke run trains (and times) its archs
        args.work_dir = tempfile.mkdtemp(prefix='mmdetnas-bench-ranking-')
    env = common.env_info(common.setup(args))
    report = common.Report(
        'ranking', 'Supernet ranking correlation (quickstart classification '
        'supernet vs stand-alone training, narrow FLOPs band)', env,
        args.smoke)
    from mmdetnas.search.ranking import kendall_tau, rank_report
    from mmdetnas.apis.tool_setup import data_root_options
    wd = args.work_dir
    os.makedirs(osp.join(common.ROOT, wd), exist_ok=True)
    log = osp.join(common.ROOT, wd, 'bench.log')
    data_root = ensure_fashion_mnist(args.num_train, args.num_val)
    args.data_opts = data_root_options(data_root)
    t0 = time.time()
    supernets = train_supernets(args, wd, log)
    ckpt = supernets[0][1]
    # one log per seed: the seeds may run at once
    from concurrent.futures import ThreadPoolExecutor
    # the first seed's run also scores the further supernets
    more = [c for _, c in supernets[1:]]
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = {
            s: pool.submit(rank_with_seed, args, wd, ckpt, s,
                           osp.join(common.ROOT, wd, f'bench_seed_{s}.log'),
                           more if i == 0 else ())
            for i, s in enumerate(args.seeds)}
        runs = {s: f.result() for s, f in futures.items()}
    first = runs[args.seeds[0]]
    keys = [a['key'] for a in first['archs']]
    for s, r in runs.items():
        if [a['key'] for a in r['archs']] != keys:
            raise RuntimeError(f'seed {s} ranked other architectures')
    alone = {s: [a['standalone_score'] for a in r['archs']]
             for s, r in runs.items()}
    mean_alone = [sum(alone[s][i] for s in args.seeds) / len(args.seeds)
                  for i in range(len(keys))]
    sup = [a['supernet_score'] for a in first['archs']]
    more_sup = {
        label: [a['more_supernet_scores'][j] for a in first['archs']]
        for j, (label, _) in enumerate(supernets[1:])
    }
    sup_by = {supernets[0][0]: sup, **more_sup}
    flops = [a['flops'] for a in first['archs']]
    params = [a['params'] for a in first['archs']]
    proxies = {}
    for label, v in more_sup.items():
        proxies[f'supernet {label}'] = v
    if more_sup:
        proxies['supernet, mean of all'] = [
            sum(v[i] for v in sup_by.values()) / len(sup_by)
            for i in range(len(keys))]
    proxies.update(flops=flops, params=params)
    rep = rank_report(sup, mean_alone, proxies, k=min(3, len(keys)))
    # ranking.json writes an undefined tau (constant scores) as null
    sup_ceilings = [float('nan') if a['tau'] is None else a['tau']
                    for a in first['supernet_agreement']]
    ceilings = [
        kendall_tau(alone[a], alone[b]) for i, a in enumerate(args.seeds)
        for b in args.seeds[i + 1:]
    ]
    rows = []
    for i, a in enumerate(first['archs']):
        rows.append([
            ''.join(map(str, a['arch_indices'])), f"{flops[i] / 1e6:.1f}",
            f"{params[i] / 1e6:.3f}", *[f'{v[i]:.1f}'
                                        for v in sup_by.values()],
            *[f'{alone[s][i]:.1f}' for s in args.seeds],
            f'{mean_alone[i]:.2f}'
        ])
    report.table(
        ['architecture (0=3x3, 1=5x5, 2=7x7)', 'FLOPs (MMACs)',
         'params (M)', *[f'supernet top-1 ({label})' for label in sup_by],
         *[f'stand-alone top-1 seed {s}' for s in args.seeds],
         'stand-alone mean'], rows,
        caption=f'{len(keys)} architectures in [{args.band[0] / 1e6:.0f}M, '
        f'{args.band[1] / 1e6:.0f}M] MACs; supernet(s) '
        f"{', '.join(c for _, c in supernets)} "
        f'({args.supernet_iters} iterations; the first is "supernet" '
        'below); stand-alone '
        f'{args.standalone_iters} iterations from scratch per seed; '
        f'Fashion-MNIST {args.num_train} training / {args.num_val} '
        f'validation images ({data_root}); {args.jobs} seed(s) trained at '
        'once.')

    def f(v):
        return 'nan' if v != v else f'{v:.3f}'

    report.table(
        ['predictor', 'Kendall tau', 'p (tau = 0)', 'Spearman rho',
         'top-3 overlap'],
        [[name, f(m['tau']), f(m['tau_p']), f(m['rho']), f(m['topk'])]
         for name, m in rep.items()] +
        [['stand-alone seed vs seed (noise ceiling)',
          ', '.join(f(c) for c in ceilings), '', '', '']] +
        ([['supernet vs supernet (training seed)',
           ', '.join(f(c) for c in sup_ceilings), '', '', '']]
         if sup_ceilings else []),
        caption='Agreement with the stand-alone ranking (mean over seeds).')
    tau = rep['supernet']['tau']
    report.headline('supernet Kendall tau', tau)
    report.headline('stand-alone seed-to-seed Kendall tau',
                    ceilings[0] if ceilings else None)
    report.headline('supernet seed-to-seed Kendall tau',
                    sup_ceilings[0] if sup_ceilings else None)
    # what the supernet saves: scoring one architecture (BN recalibration +
    # evaluation) vs training it stand-alone (wall time of the tool's
    # trainings, process start-up included; the first seed's run)
    n = len(keys)
    sup_s = first['supernet_seconds'] / n
    alone_s = max(first['wall_seconds'] - first['supernet_seconds'], 0) / n
    report.headline('supernet scoring / stand-alone training, seconds per '
                    'architecture', sup_s / alone_s if alone_s else None)
    report.note(f'Seconds per architecture: supernet scoring {sup_s:.1f} '
                f's, stand-alone training {alone_s:.1f} s (wall time of '
                'the ranking tool minus its supernet scoring, divided by '
                'the architectures; valid when the run trained them all).')
    met = (tau == tau and tau >= 0.4 and tau > rep['flops']['tau']
           and tau > rep['params']['tau'])
    report.verdict(
        'supernet Kendall tau >= 0.4 and above the FLOPs and params proxies',
        tau, None if args.smoke else met,
        why='smoke mode' if args.smoke else
        (f"flops tau {f(rep['flops']['tau'])}, params tau "
         f"{f(rep['params']['tau'])}, noise ceiling "
         f"{', '.join(f(c) for c in ceilings)}"))
    report.note('The per-architecture results (and ranking.png scatter '
                f'plots) are in {wd}/seed_*/; the whole benchmark took '
                f'{(time.time() - t0) / 60:.1f} min.')
    if args.quickstart_dir and not args.smoke:
        compare_search_tasks(args, wd, report, log)
    report.data.update(report_dict=rep, ceilings=ceilings,
                       supernet_ceilings=sup_ceilings, supernet=sup,
                       supernets=sup_by, standalone=alone, keys=keys)
    report.emit(args.json)


if __name__ == '__main__':
    main()
