"""Run every benchmark and collect the tables in ``benchmarks/RESULTS.md``.

    python benchmarks/run_all.py          # full: writes benchmarks/RESULTS.md
    python benchmarks/run_all.py --smoke    # quick check; RESULTS.md untouched
    python benchmarks/run_all.py --only constraint_cost candidate_eval
    python benchmarks/run_all.py --reuse ranking=work_dirs/bench_ranking/r.json

Each benchmark runs as its own process (``--json`` to a temporary folder),
in this order (benchmark 3 reads benchmark 2's candidate evaluation time).
Smoke mode writes its report to a temporary file (or ``--out``) and prints
it. The exit status is non-zero when a benchmark script itself failed (a
measured target that is not met is a result, not a failure).
"""
import argparse
import datetime
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, HERE)

import common  # noqa: E402

BENCHMARKS = [
    ('supernet_overhead', 'bench_supernet_overhead.py'),
    ('candidate_eval', 'bench_candidate_eval.py'),
    ('constraint_cost', 'bench_constraint_cost.py'),
    ('search_throughput', 'bench_search_throughput.py'),
    ('what_search_buys', 'bench_what_search_buys.py'),
    ('ranking', 'bench_ranking.py'),
    ('latency_table', 'bench_latency_table.py'),
]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--smoke', action='store_true',
                   help='every benchmark in smoke mode; does not touch '
                   'RESULTS.md')
    p.add_argument('--only', nargs='+', choices=[n for n, _ in BENCHMARKS],
                   help='run these benchmarks only')
    p.add_argument('--out', help='report path (default: benchmarks/'
                   'RESULTS.md, or a temporary file with --smoke)')
    p.add_argument('--device', default='auto',
                   choices=['auto', 'cpu', 'cuda'])
    p.add_argument('--threads', type=int, default=1,
                   help='torch threads per benchmark process (default 1)')
    p.add_argument('--reuse', nargs='+', default=[], metavar='NAME=JSON',
                   help='take these benchmarks from the --json file of a '
                   'finished run instead of running them (e.g. ranking='
                   'work_dirs/bench_ranking/result.json: an hour of '
                   'training); the report says so')
    args = p.parse_args(argv)
    names = [n for n, _ in BENCHMARKS]
    reuse = {}
    for item in args.reuse:
        name, sep, path = item.partition('=')
        if not sep or name not in names:
            p.error(f'--reuse {item!r}: expected NAME=JSON with NAME one of '
                    f'{names}')
        if not osp.isfile(path):
            p.error(f'--reuse {item!r}: no such file {path!r}')
        reuse[name] = path
    args.reuse = reuse
    return args


def reuse_one(name, script, path) -> dict:
    """A benchmark result read from an earlier run's ``--json`` file."""
    with open(path) as f:
        result = json.load(f)
    result['markdown'] = result['markdown'].rstrip() + (
        f'\n- Note: taken from an earlier run of `{script}` ({path}), not '
        'run by this `run_all.py` invocation; its environment line is that '
        "run's.")
    return dict(name=name, script=script, rc=0,
                seconds=result.get('seconds') or 0.0, log_tail='',
                result=result)


def run_one(name, script, args, tmp) -> dict:
    out = osp.join(tmp, f'{name}.json')
    cmd = [sys.executable, osp.join(HERE, script), '--json', out,
           '--device', args.device, '--threads', str(args.threads)]
    if args.smoke:
        cmd.append('--smoke')
    if name == 'constraint_cost':
        cand = osp.join(tmp, 'candidate_eval.json')
        if osp.isfile(cand):
            cmd += ['--candidate-json', cand]
    print(f'\n=== {name}: {" ".join(cmd)}', flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=common.ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - t0
    res = dict(name=name, script=script, rc=proc.returncode,
               seconds=seconds, log_tail=proc.stdout[-5000:])
    if proc.returncode == 0 and osp.isfile(out):
        with open(out) as f:
            res['result'] = json.load(f)
        print(res['result']['markdown'], flush=True)
    else:
        print(proc.stdout[-5000:], flush=True)
        print(f'=== {name} FAILED (rc {proc.returncode})', flush=True)
    print(f'=== {name}: {seconds:.1f} s', flush=True)
    return res


def summary_rows(results):
    rows = []
    for r in results:
        res = r.get('result')
        if res is None:
            rows.append([r['name'], 'script failed', f"rc {r['rc']}", '',
                         f"{r['seconds']:.0f}"])
            continue
        ratios = '; '.join(
            f"{h['label']}: "
            + ('n/a' if h['ratio'] is None else f"{h['ratio']:.4g}")
            for h in res.get('headlines', []))
        verdicts = '; '.join(common.verdict_line(v)
                             for v in res['verdicts'])
        rows.append([r['name'], res['title'], ratios, verdicts,
                     f"{r['seconds']:.0f}"])
    return rows


def report(results, args, env, total_s) -> str:
    mode = 'SMOKE (numbers not meaningful)' if args.smoke else 'full'
    lines = [
        '# mmdetnas benchmarks', '',
        'Generated by `python benchmarks/run_all.py'
        + (' --smoke' if args.smoke else '') + '` on '
        f"{env['date']} ({mode} mode, total {total_s / 60:.1f} min).", '',
        f"- Machine: {os.cpu_count()}-core CPU ({common._cpu_name()}), "
        + ('GPU: ' + env['device'] if env['cuda_available'] else
           'no GPU (CUDA not available): every number is a CPU number')
        + f"; benchmark processes use {args.threads} torch thread(s)",
        f"- Versions: torch {env['torch']}, mmdet {env['mmdet']}, mmengine "
        f"{env['mmengine']}, mmcv {env['mmcv']}, mmdetnas "
        f"{env['mmdetnas']}, python {env['python']}",
        '- Load average (1/5/15 min) at start: '
        + '/'.join(f'{x:.2f}' for x in env['load'][0]) + ', at end: '
        + '/'.join(f'{x:.2f}' for x in env['load'][1])
        + ' (the machine is shared; benchmarks run with nice and one '
        'torch thread per process unless --threads)',
        '- Method: both sides of every ratio are measured in the same run, '
        'alternating (A B / B A rounds) after warm-up; tables give the '
        'median [IQR] (min-max); a ratio is the ratio of the medians, its '
        'spread the per-round paired ratios. Each script documents its '
        'method in its docstring (`benchmarks/bench_*.py`).', '',
        '## Summary', '',
        common.markdown_table(
            ['benchmark', 'what', 'ratio(s)', 'verdicts', 'seconds'],
            summary_rows(results)), ''
    ]
    for r in results:
        res = r.get('result')
        if res is None:
            lines += [f"## {r['name']}: FAILED (rc {r['rc']})", '', '```',
                      r['log_tail'][-4000:], '```', '']
        else:
            lines += [res['markdown'], '']
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    load_start = os.getloadavg()
    tmp = tempfile.mkdtemp(prefix='mmdetnas-bench-all-')
    results = []
    try:
        for name, script in BENCHMARKS:
            if args.only and name not in args.only:
                continue
            if name in args.reuse:
                results.append(reuse_one(name, script, args.reuse[name]))
                continue
            results.append(run_one(name, script, args, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = time.perf_counter() - t0
    import torch
    torch.set_num_threads(max(1, args.threads))
    env = common.env_info(common.pick_device(args.device))
    env['date'] = datetime.datetime.now().strftime('%Y-%m-%d %H:%M')
    env['load'] = (load_start, os.getloadavg())
    text = report(results, args, env, total)
    if args.out:
        out = args.out
    elif args.smoke:
        fd, out = tempfile.mkstemp(prefix='mmdetnas-bench-smoke-',
                                   suffix='.md')
        os.close(fd)
    else:
        out = osp.join(HERE, 'RESULTS.md')
    with open(out, 'w') as f:
        f.write(text)
    print('\n=== summary')
    for row in summary_rows(results):
        print(f'{row[0]}: {row[2]} | {row[3]} | {row[4]} s')
    print(f'=== total {total:.0f} s; report written to {out}')
    failed = [r['name'] for r in results if r.get('result') is None]
    if failed:
        print(f'=== FAILED: {", ".join(failed)}')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
