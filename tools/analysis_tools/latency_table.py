"""Latency lookup tables: build one on the target machine, predict and
check an architecture's latency from it.

    # build (resumes after a kill; progress bar with ETA)
    python tools/analysis_tools/latency_table.py CONFIG \
        --backend {torch,onnxruntime,openvino} --shape H W --out TABLE.json \
        [--device auto|cpu|cuda] [--threads 1] [--warmup 5] [--repeats 1] \
        [--rounds 100] [--batch 1]
    # predicted latency of an architecture (ms)
    python tools/analysis_tools/latency_table.py --table TABLE.json \
        --predict ARCH
    # time the exported network on the table's backend, as the table was
    python tools/analysis_tools/latency_table.py CONFIG --table TABLE.json \
        --measure ARCH

ARCH is what every tool takes: comma-separated choice names or indices, an
official name or an architecture file. See :mod:`mmdetnas.deploy.
latency_table` for what a table holds and how it predicts.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from mmengine.config import Config, DictAction  # noqa: E402

from mmdetnas.deploy.backends import DEFAULT_TIMING  # noqa: E402
from mmdetnas.spaces.arch import arch_argument  # noqa: E402
from mmdetnas.utils.setup_env import register_all_modules  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Latency lookup tables')
    parser.add_argument('config', nargs='?',
                        help='config with a DetNAS backbone (building a '
                        'table, --measure)')
    parser.add_argument('--backend',
                        choices=['torch', 'onnxruntime', 'openvino'])
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'))
    parser.add_argument('--out', help='table file to build')
    parser.add_argument('--device', default='auto',
                        choices=['auto', 'cpu', 'cuda'])
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--warmup', type=int,
                        default=DEFAULT_TIMING['warmup'],
                        help='untimed calls of every entry before its '
                        'first round (default %(default)s)')
    parser.add_argument('--repeats', type=int,
                        default=DEFAULT_TIMING['repeats'],
                        help='timed calls of every entry per round '
                        '(default %(default)s)')
    parser.add_argument('--rounds', type=int,
                        default=DEFAULT_TIMING['rounds'],
                        help='rounds, every entry timed in turn in each '
                        '(default %(default)s; at detection sizes, where one call '
                        'takes seconds on a CPU, e.g. 6)')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--table', help='a built table')
    parser.add_argument('--predict', type=arch_argument, metavar='ARCH')
    parser.add_argument('--measure', type=arch_argument, metavar='ARCH')
    parser.add_argument('--json', action='store_true',
                        help='print the result as JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser, parser.parse_args(argv)


def _cfg(args, parser, what):
    if not args.config:
        parser.error(f'{what} needs CONFIG')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def main(argv=None):
    from mmdetnas.apis.deploy import measure_arch
    from mmdetnas.deploy import (LatencyTable, build_backend,
                                 build_latency_table)
    parser, args = parse_args(argv)
    register_all_modules()
    if args.table:
        if (args.predict is None) == (args.measure is None):
            parser.error('--table takes one of --predict ARCH or '
                         '--measure ARCH')
        table = LatencyTable.load(args.table)
        table.check()  # complete
        if args.predict is not None:
            ms = table.predict(args.predict)
            r = dict(arch=args.predict, predicted_ms=ms,
                     table=table.describe())
            print(json.dumps(r) if args.json else
                  f'predicted latency: {ms:.3f} ms ({table.describe()})')
            return r
        r = measure_arch(_cfg(args, parser, '--measure'), table,
                         args.measure)
        if r['device_warning']:
            print(f"WARNING: {r['device_warning']}", file=sys.stderr)
        t = r['timing']
        print(json.dumps(r) if args.json else
              f"predicted {r['predicted_ms']:.3f} ms, measured "
              f"{t['median_ms']:.3f} ms (IQR {t['iqr_ms']:.3f}, "
              f"{t['repeats']} runs, {t['backend']} "
              f"{t['backend_version']}, {t['device']}): error "
              f"{r['error_pct']:+.1f}%")
        return r
    if not (args.backend and args.shape and args.out):
        parser.error('building a table needs CONFIG, --backend, --shape '
                     'and --out (or --table with --predict / --measure)')
    cfg = _cfg(args, parser, 'building a table')
    backend = build_backend(args.backend, device=args.device,
                            threads=args.threads, warmup=args.warmup,
                            repeats=args.repeats, rounds=args.rounds)
    table = build_latency_table(cfg.model, backend, args.shape, args.out,
                                batch=args.batch)
    print(f"{args.out}: {len(table.entries)} entries, "
          f"{table.built_for.get('build_seconds', 0):.0f} s; "
          f"{table.describe()}; calibration scale {table.scale:.3f}")
    return table


if __name__ == '__main__':
    from tools.common import cli
    cli(main)
