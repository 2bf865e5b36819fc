"""Benchmark 7: the latency lookup table as a predictor of deployed latency.

For each backend (ONNX Runtime and OpenVINO, CPU, one thread) and each
setting (the 300M and 1.3G DetNAS spaces, at 1x3x224x224 with the backbone
alone, and at 1x3x800x1333 with the backbone and FPN of the spaces'
Faster R-CNN configs):

1. build the latency table (``mmdetnas.deploy.build_latency_table``),
   timing its build;
2. draw 2000 random paths, sort them by backbone FLOPs and keep 20 at
   evenly spaced ranks (spread over the space, from light to heavy);
3. export each path's network once (shared by the backends), load the 20
   on the backend and time them end to end, their rounds interleaved
   (``LatencyBackend.time_many``);
4. compare the measured medians with the table's predictions (Kendall tau,
   Spearman rho, mean absolute percentage error) and with backbone FLOPs
   as a predictor (the same rank correlations; its MAPE is that of a
   least-squares line latency = a * FLOPs + b fitted on these same 20
   paths, which flatters FLOPs);
5. the seconds a search saves per candidate: exporting, loading and timing
   one candidate as the table times it, against one table prediction.

Targets (each backend, each setting): Kendall tau >= 0.8, MAPE <= 10%,
table tau above FLOPs tau; table build <= 5 minutes for the 300M space.

    python benchmarks/bench_latency_table.py [--smoke] [--json OUT]
        [--backends onnxruntime openvino] [--archs 20]
        [--settings 300M@224 300M@800 1.3G@224 1.3G@800]

Timing (``LatencyBackend``): every network warmed up, then timed one call
per round, the networks in turn: 5 warm-up calls and 100 rounds at
224x224; 1 warm-up call and 6 rounds at 800x1333 (one call of backbone +
FPN takes 1.8-2.8 s on the reference 2-core CPU).
"""
import os.path as osp
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import common  # noqa: E402

DET_CFG = {
    '300M': 'configs/detnas/detnas_supernet_faster-rcnn_shufflenetv2-300m_'
    'fpn_1x_coco.py',
    '1.3G': 'configs/detnas/detnas_supernet_faster-rcnn_shufflenetv2-1.3g_'
    'fpn_1x_coco.py',
}


def parse_args(argv=None):
    p = common.base_parser(__doc__.split('\n')[0])
    p.add_argument('--backends', nargs='+',
                   default=['onnxruntime', 'openvino'])
    p.add_argument('--archs', type=int,
                   help='paths compared per setting (default 20, smoke 3)')
    p.add_argument('--settings', nargs='+', metavar='SPACE@H',
                   help='run these settings only, e.g. 300M@224 1.3G@800 '
                   '(default: all four)')
    args = p.parse_args(argv)
    if args.archs is None:
        args.archs = 3 if args.smoke else 20
    return args


def settings(smoke: bool):
    """``(space, (H, W), model config, timing settings)``."""
    if smoke:
        return [('300M', (64, 64), None, dict(warmup=0, repeats=1,
                                              rounds=1))]
    small = dict(warmup=5, repeats=1, rounds=100)
    # one call of backbone + FPN at 800x1333 takes 1.8-2.8 s here
    det = dict(warmup=1, repeats=1, rounds=6)
    return [('300M', (224, 224), None, small),
            ('300M', (800, 1333), DET_CFG['300M'], det),
            ('1.3G', (224, 224), None, small),
            ('1.3G', (800, 1333), DET_CFG['1.3G'], det)]


def model_cfg(space: str, cfg_path):
    if cfg_path is None:
        return dict(type='mmdetnas.DetNASShuffleNetV2', search_space=space)
    return common.load_cfg(cfg_path).model


def spread_paths(space, n: int, seed: int = 0):
    """``n`` paths at evenly spaced FLOPs ranks of 2000 random ones."""
    from mmdetnas.search.flops import arch_flops
    rng = random.Random(seed)
    pool = {tuple(rng.choice(space.choices) for _ in range(space.num_layers))
            for _ in range(2000)}
    pool = sorted(pool, key=lambda a: (arch_flops(space, a), a))
    idx = [round(i * (len(pool) - 1) / max(n - 1, 1)) for i in range(n)]
    return [pool[i] for i in idx]


def mape(pred, meas) -> float:
    return 100.0 * sum(abs(p - m) / m for p, m in zip(pred, meas)) / len(
        meas)


def main(argv=None):
    import numpy as np
    from scipy.stats import kendalltau, spearmanr

    from mmdetnas.deploy import (DeployableModel, build_backend,
                                 build_latency_table, build_model,
                                 deployable_input, export_onnx)
    from mmdetnas.search.flops import arch_flops
    args = parse_args(argv)
    device = common.setup(args)
    env = common.env_info(device)
    rep = common.Report(
        'latency_table', 'Latency lookup table vs measured deployed latency '
        '(exported networks, CPU, 1 thread)', env, args.smoke)
    tmp = tempfile.mkdtemp(prefix='bench_latency_')
    rows, corr_rows, build_rows, save_rows = [], [], [], []
    data = []
    try:
        for space_name, shape, cfg_path, timing in settings(args.smoke):
            if args.settings and f'{space_name}@{shape[0]}' not in \
                    args.settings:
                continue
            mcfg = model_cfg(space_name, cfg_path)
            space = build_model(mcfg).backbone.search_space \
                if cfg_path else None
            if space is None:
                from mmdetnas.spaces.search_space import build_search_space
                space = build_search_space(space_name)
            paths = spread_paths(space, args.archs)
            what = (f"{space_name} {shape[0]}x{shape[1]} "
                    f"{'backbone' if cfg_path is None else 'backbone+FPN'}")
            # each path exported once, for every backend
            x = deployable_input(shape)
            files = []
            t = time.perf_counter()
            for i, arch in enumerate(paths):
                f = osp.join(tmp, f'{space_name}_{shape[0]}_{i}.onnx')
                export_onnx(DeployableModel(build_model(mcfg, arch)), x, f,
                            check=False)
                files.append(f)
            export_s = (time.perf_counter() - t) / len(paths)
            flops = [arch_flops(space, a) for a in paths]
            for backend_name in args.backends:
                backend = build_backend(backend_name, device='cpu',
                                        threads=args.threads, **timing)
                out = osp.join(tmp, f'{backend_name}_{space_name}_'
                               f'{shape[0]}.json')
                t = time.perf_counter()
                table = build_latency_table(mcfg, backend, shape, out,
                                            progress=False,
                                            logger=lambda *a: None)
                build_s = time.perf_counter() - t
                runs = [backend.load_onnx(f, (x, )) for f in files]
                measured = [m.median_ms for m in backend.time_many(
                    runs, [x.shape] * len(runs))]
                del runs
                pred = [table.predict(a) for a in paths]
                # plain floats: numpy scalars (and the numpy bools of the
                # verdicts below) do not survive the JSON report
                tau = float(kendalltau(pred, measured)[0])
                rho = float(spearmanr(pred, measured)[0])
                err = float(mape(pred, measured))
                ftau = float(kendalltau(flops, measured)[0])
                frho = float(spearmanr(flops, measured)[0])
                a, b = np.polyfit(np.asarray(flops, float),
                                  np.asarray(measured), 1)
                ferr = float(mape([a * f + b for f in flops], measured))
                # what a search pays per candidate without the table: export,
                # load and time it as the table times it; with it: predict
                t = time.perf_counter()
                f1 = osp.join(tmp, 'one.onnx')
                export_onnx(DeployableModel(build_model(mcfg, paths[0])), x,
                            f1, check=False)
                backend.time_onnx(f1, x)
                per_candidate = time.perf_counter() - t
                t = time.perf_counter()
                for a in paths * 50:
                    table.predict(a)
                per_predict = (time.perf_counter() - t) / (50 * len(paths))
                key = f'{backend_name}, {what}'
                corr_rows.append([
                    key, f'{tau:.3f}', f'{rho:.3f}', f'{err:.1f}%',
                    f'{ftau:.3f}', f'{frho:.3f}', f'{ferr:.1f}%',
                    f'{min(measured):.2f}-{max(measured):.2f}',
                    f'{table.scale:.3f}'])
                build_rows.append([key, len(table.entries),
                                   f'{build_s:.0f}'])
                save_rows.append([key, f'{per_candidate:.2f}',
                                  f'{per_predict * 1e6:.1f}',
                                  f'{per_candidate - per_predict:.2f}'])
                for p, m, fl, arch in zip(pred, measured, flops, paths):
                    rows.append([key, common.arch_label(arch),
                                 f'{fl / 1e6:.1f}', f'{p:.3f}', f'{m:.3f}',
                                 f'{100 * (p - m) / m:+.1f}%'])
                data.append(dict(backend=backend_name, setting=what,
                                 tau=tau, rho=rho, mape=err, flops_tau=ftau,
                                 flops_rho=frho, flops_mape=ferr,
                                 build_seconds=build_s,
                                 seconds_per_candidate=per_candidate,
                                 predict_seconds=per_predict,
                                 predicted=pred, measured=measured,
                                 flops=flops, export_seconds=export_s,
                                 table=table.built_for))
                rep.verdict(f'Kendall tau >= 0.8 ({key})', tau, tau >= 0.8)
                rep.verdict(f'MAPE <= 10% ({key})', err, err <= 10,
                            unit='%')
                rep.verdict(f'table tau > FLOPs tau ({key})', tau - ftau,
                            tau > ftau,
                            why=f'table {tau:.3f}, FLOPs {ftau:.3f}')
                if space_name == '300M':
                    rep.verdict(f'table build <= 300 s for the 300M space '
                                f'({key})', build_s, build_s <= 300,
                                unit=' s')
                print(f'{key}: tau {tau:.3f} (FLOPs {ftau:.3f}), MAPE '
                      f'{err:.1f}%, build {build_s:.0f} s', flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rep.table(['backend, setting', 'table tau', 'table rho', 'table MAPE',
               'FLOPs tau', 'FLOPs rho', 'FLOPs-line MAPE',
               'measured ms (min-max)', 'table scale'], corr_rows,
              f'{args.archs} paths per setting at evenly spaced backbone-'
              'FLOPs ranks of 2000 random ones; measured = median over '
              'interleaved rounds of the exported network; FLOPs-line MAPE '
              '= MAPE of a least-squares line latency ~ FLOPs fitted on the '
              'same paths (optimistic for FLOPs).')
    rep.table(['backend, setting', 'entries', 'build seconds'], build_rows,
              'Table build (entries include the one-element call graph and '
              'the calibration paths).')
    rep.table(['backend, setting', 'timing one candidate (s)',
               'table prediction (us)', 'saved per candidate (s)'],
              save_rows, 'What a search saves per candidate: exporting, '
              'loading and timing it as the table times it, against one '
              'table prediction.')
    rep.table(['backend, setting', 'path', 'backbone MFLOPs', 'predicted ms',
               'measured ms', 'error'], rows, 'Every path.')
    if data:
        rep.headline('worst table Kendall tau', min(d['tau'] for d in data))
        rep.headline('worst table MAPE (%)', max(d['mape'] for d in data))
    rep.data = dict(results=data)
    rep.emit(args.json)


if __name__ == '__main__':
    main()
