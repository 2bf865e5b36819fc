"""Benchmark 3: FLOPs / constraint cost.

Seconds of one :meth:`mmdetnas.search.ArchConstraints.check` (the check the
search loop runs for every proposed architecture) with the constraint of the
quickstart search config, in three cache states:

* new architecture, block table built: ``arch_cost.cache_clear()`` and
  architectures never seen before (the steady state of a search);
* fully cold: the per-block (``_block_cost``) and stem (``_stem_cost``)
  tables cleared too, so blocks are traced with ``mmengine.analysis``
  (the first checks of a search process);
* cached: an architecture checked before (``arch_cost`` hit; the loop checks
  every evaluated candidate a second time).

Each is compared with one candidate evaluation (scoring on the quickstart
search split without BN recalibration), read from benchmark 2's JSON
(``--candidate-json``) or measured here with a quick evaluation. The cost
per *accepted* candidate divides by the acceptance rate of random
architectures under the constraint.

Target: < 2% of one candidate evaluation.

    python benchmarks/bench_constraint_cost.py [--smoke]
        [--candidate-json OUT_OF_bench_candidate_eval] [--json OUT]
"""
import json
import os.path as osp
import shutil
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import common  # noqa: E402


def parse_args(argv=None):
    p = common.base_parser(__doc__.split('\n')[0])
    p.add_argument('--archs', type=int,
                   help='new architectures checked (default 500, smoke 50)')
    p.add_argument('--cold-repeats', type=int,
                   help='fully cold checks (default 5, smoke 2)')
    p.add_argument('--candidate-json',
                   help='JSON of bench_candidate_eval.py (its candidate '
                   'evaluation time); default: measure a quick one here')
    p.add_argument('--images', type=int,
                   help='images of the quick evaluation when no '
                   '--candidate-json (default all 10, smoke 2)')
    args = p.parse_args(argv)
    for k, full, smoke in (('archs', 500, 50), ('cold_repeats', 5, 2),
                           ('images', None, 2)):
        if getattr(args, k) is None:
            setattr(args, k, smoke if args.smoke else full)
    return args


def quick_candidate_eval(args, device) -> dict:
    """Median seconds of scoring one candidate (1 warm-up, 3 runs)."""
    import bench_candidate_eval as b2
    tmp = tempfile.mkdtemp(prefix='mmdetnas-bench-constraint-')
    try:
        ckpt = common.make_supernet_checkpoint(osp.join(tmp, 'sup.pth'))
        runner, loop, _ = b2.build_search_runner(tmp, ckpt, args.images,
                                                 args.smoke)
        arch = common.benchmark_paths(1)[0]

        def ev():
            with b2.quiet():
                loop.evaluate_candidate(arch)

        t = common.alternate(dict(candidate=ev), 1, 3, device)
        return dict(seconds=common.summarize(t['candidate'])['median'],
                    images=len(runner.val_dataloader.dataset),
                    source='measured here (1 warm-up, median of 3)')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def timed_check(constraints, arch):
    t0 = time.perf_counter()
    ok, _ = constraints.check(arch)
    return time.perf_counter() - t0, ok


def main(argv=None):
    args = parse_args(argv)
    device = common.setup(args)
    env = common.env_info(device)
    rep = common.Report(
        'constraint_cost',
        'FLOPs / constraint check cost vs one candidate evaluation', env,
        args.smoke)
    from mmdetnas.search import UniformPathSampler, flops
    from mmdetnas.search.constraints import ArchConstraints
    from mmdetnas.spaces.search_space import build_search_space

    cfg = common.load_cfg(common.SEARCH_CFG)
    lcfg = cfg.train_cfg
    space = build_search_space(cfg.model.backbone.search_space)
    cons = ArchConstraints(space, flops=lcfg.get('flops'),
                           params=lcfg.get('params'))
    sampler = UniformPathSampler(space, seed=123)
    archs, seen = [], set()
    while len(archs) < args.archs + args.cold_repeats:
        a = sampler.sample()
        if a not in seen:
            seen.add(a)
            archs.append(a)
    cold_archs, new_archs = archs[:args.cold_repeats], archs[
        args.cold_repeats:]

    # fully cold: every table cleared before each check
    cold = []
    for a in cold_archs:
        flops._block_cost.cache_clear()
        flops._stem_cost.cache_clear()
        flops.arch_cost.cache_clear()
        cold.append(timed_check(cons, a)[0])
    traced = flops._block_cost.cache_info().currsize
    # build the whole block table from empty (what a search does over its
    # first proposals), then time never-seen architectures
    flops._block_cost.cache_clear()
    flops._stem_cost.cache_clear()
    flops.arch_cost.cache_clear()
    t0 = time.perf_counter()
    for a in new_archs:
        cons.check(a)
    fill_s = time.perf_counter() - t0
    table = flops._block_cost.cache_info().currsize
    flops.arch_cost.cache_clear()
    new, acc = [], 0
    for a in new_archs:
        dt, ok = timed_check(cons, a)
        new.append(dt)
        acc += ok
    cached = [timed_check(cons, a)[0] for a in new_archs]
    accept = acc / len(new_archs)

    if args.candidate_json and osp.isfile(args.candidate_json):
        with open(args.candidate_json) as f:
            d = json.load(f)['data']
        ev = dict(seconds=d['candidate_eval_seconds'], images=d['images'],
                  source=f'bench_candidate_eval ({d["images"]} images, '
                  'median, COCO-FPN-300M)')
    else:
        ev = quick_candidate_eval(args, device)
    ev_s = ev['seconds']

    rows = []
    results = {}
    for key, label, xs, per_acc in (
            ('new', 'new architecture, block table built', new, True),
            ('cold', 'fully cold (block + stem tables cleared; traces '
             f'~{traced} blocks)', cold, False),
            ('cached', 'cached architecture (arch_cost hit)', cached,
             False)):
        s = common.summarize(xs)
        pct = 100 * s['median'] / ev_s
        per_acc_pct = pct / accept if per_acc and accept else None
        results[key] = dict(stats=s, pct=pct, per_accepted_pct=per_acc_pct)
        rows.append([
            label, len(xs), common.fmt_stat(s, 1e6),
            f'{s["median"] / ev_s:.3g} ({pct:.3g}%)',
            '' if per_acc_pct is None else f'{per_acc_pct:.3g}%'
        ])
    rep.data = dict(results=results, candidate_eval=ev, acceptance=accept,
                    table_entries=table, constraint=dict(
                        flops=lcfg.get('flops'), params=lcfg.get('params')))
    rep.table(
        ['cache state', 'checks', 'us per check', 'ratio check / one '
         'candidate eval', 'per accepted candidate'], rows,
        caption=f'One ArchConstraints.check (flops={lcfg.get("flops")}, '
        f'the quickstart search constraint; acceptance of random '
        f'architectures {100 * accept:.1f}%, block table {table} entries) '
        f'vs one candidate evaluation of {ev_s:.3f} s ({ev["source"]}). '
        'Median [IQR] (min-max).')
    rep.headline('new-architecture check per accepted candidate / one '
                 'evaluation', results['new']['per_accepted_pct'] / 100)
    rep.headline('fully cold check / one evaluation',
                 results['cold']['pct'] / 100)
    rep.headline('cached check / one evaluation',
                 results['cached']['pct'] / 100)
    n_search = lcfg.max_generations * lcfg.population_size
    fill_pct = 100 * fill_s / (n_search * ev_s)
    rep.data.update(table_fill_s=fill_s, search_candidates=n_search,
                    table_fill_amortised_pct=fill_pct)
    rep.table(
        ['what', 'value'],
        [['building the whole block table from empty (checking '
          f'{len(new_archs)} new architectures), s', f'{fill_s:.3f}'],
         ['... amortised over the quickstart search '
          f'({lcfg.max_generations} x {lcfg.population_size} = {n_search} '
          'candidates), % of one evaluation', f'{fill_pct:.3f}%']],
        caption='One-off cost of the block table in a search process.')
    for key, what in (('new', 'new architecture'),
                      ('cold', 'fully cold'), ('cached', 'cached')):
        r = results[key]
        val = r['per_accepted_pct'] if key == 'new' else r['pct']
        rep.verdict(f'{what} check < 2% of one candidate evaluation'
                    + (' (per accepted candidate)' if key == 'new' else ''),
                    val, val < 2.0,
                    '' if val < 2.0 else
                    'the fully cold check traces ~a dozen blocks; it is '
                    'paid once per search process (whole table '
                    f'{fill_s:.2f} s = {fill_pct:.2f}% of one evaluation '
                    f'amortised over the {n_search} candidates of the '
                    'quickstart search)' if key == 'cold' else '',
                    unit='%')
    rep.note('the candidate evaluation here is the CPU quickstart one '
             f'({ev["images"]} small tiles); a COCO search split (5000 '
             'images) makes every ratio ~500x smaller still')
    if args.smoke:
        rep.note('smoke mode: few architectures; not a measurement')
    rep.emit(args.json)


if __name__ == '__main__':
    main()
