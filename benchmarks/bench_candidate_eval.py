"""Benchmark 2: candidate evaluation overhead.

Scoring one candidate inside the search loop, without BN recalibration
(:class:`mmdetnas.engine.EvolutionSearchLoop` of the quickstart search
config: constraints check, path activation and ``runner.val_loop.run()`` on
the supernet, i.e. ``loop.evaluate_candidate(arch)`` with
``calibrate_bn=False``) vs
``tools/test.py`` on the exported static subnet (the runner built exactly as
``tools/test.py`` builds it, from the quickstart subnet config with
``model.backbone.arch=P`` and the checkpoint written by
``tools/model_converters/export_subnet.py``; its ``test_loop.run()``) over
the same images (the search_val split, same evaluator), in one process,
alternating, after warm-up.

Both sides load the same weights: an initialised quickstart supernet saved
as a checkpoint (a trained one would only change the number of detections,
which the test config caps), and the subnet sliced out of it. The mAP of the
two sides must be equal (checked). BN recalibration (the loop's
``recalibrate_bn``, the config's ``calib_iters x calib_batch_size`` training
images) is timed separately and reported per image.

The recalibration images go through a DataLoader with the config's
workers (``calib_num_workers``, default the training dataloader's: 1 in the
quickstart config); the time with the images loaded in the main process is
reported next to it.

Targets: time ratio candidate/subnet <= 1.05; BN recalibration per
calibration image <= 0.5x evaluation per image (``calib_scope='features'``,
with the config's workers,
the backbone and neck the issue asks a recalibration to run; the pixels per
image of both sides are reported next to it).

    python benchmarks/bench_candidate_eval.py [--smoke] [--json OUT]
"""
import contextlib
import os
import os.path as osp
import shutil
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import common  # noqa: E402


def parse_args(argv=None):
    p = common.base_parser(__doc__.split('\n')[0])
    p.add_argument('--paths', type=int, help='paths (default 2, smoke 1); '
                   'the first is COCO-FPN-300M')
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--repeats', type=int,
                   help='timed rounds per path (default 6, smoke 2)')
    p.add_argument('--images', type=int,
                   help='first N images of search_val (default: all 10, '
                   'smoke 2)')
    p.add_argument('--calib-repeats', type=int,
                   help='timed BN recalibrations (default 3, smoke 1)')
    p.add_argument('--work-dir', help='keep the runners\' files here '
                   '(default: a temporary directory, removed)')
    common.add_supernet_ckpt_arg(p)
    args = p.parse_args(argv)
    s = args.smoke
    for k, full, smoke in (('paths', 2, 1), ('repeats', 6, 2),
                           ('images', None, 2), ('calib_repeats', 3, 1)):
        if getattr(args, k) is None:
            setattr(args, k, smoke if s else full)
    return args


def find_searchable_backbones(model):
    from mmdetnas.models import find_searchable_backbones as find
    return find(model)


def _limit_images(dataloader_cfg, images):
    if images:
        dataloader_cfg.dataset.indices = images


def build_search_runner(work_dir, ckpt, images=None, smoke=False):
    """Runner of the quickstart search config with the supernet checkpoint
    loaded, hooks' ``before_run`` called, and its EvolutionSearchLoop built
    (``calibrate_bn=False``: :meth:`recalibrate_bn` is called explicitly).
    Returns ``(runner, loop, cfg)``."""
    from mmdetnas.apis.tool_setup import build_runner
    cfg = common.load_cfg(common.SEARCH_CFG)
    cfg.work_dir = osp.join(work_dir, 'search')
    cfg.load_from = ckpt
    cfg.log_level = 'WARNING'
    cfg.launcher = 'none'
    cfg.train_cfg.calibrate_bn = False
    if smoke:
        cfg.train_cfg.calib_iters = 1
        cfg.train_cfg.calib_batch_size = 2
    _limit_images(cfg.val_dataloader, images)
    runner = build_runner(cfg)
    loop = runner.train_loop  # builds the EvolutionSearchLoop
    runner.call_hook('before_run')
    runner.load_or_resume()
    return runner, loop, cfg


def build_test_runner(work_dir, sub_ckpt, arch, search_cfg):
    """The runner ``tools/test.py SUBNET_CFG SUB_CKPT`` builds, with the
    subnet's path and the search split/evaluator of ``search_cfg`` as its
    test set."""
    import argparse
    import copy

    from mmdetnas.apis.tool_setup import build_runner, prepare_cfg
    cfg = prepare_cfg(argparse.Namespace(
        config=common.SUBNET_CFG, launcher='none',
        work_dir=osp.join(work_dir, 'test_' + common.arch_label(arch))))
    cfg.load_from = sub_ckpt
    cfg.log_level = 'WARNING'
    cfg.model.backbone.arch = list(arch)
    cfg.test_dataloader = copy.deepcopy(search_cfg.val_dataloader)
    cfg.test_evaluator = copy.deepcopy(search_cfg.val_evaluator)
    return build_runner(cfg)


@contextlib.contextmanager
def quiet():
    with open(os.devnull, 'w') as devnull, \
            contextlib.redirect_stdout(devnull):
        yield


def compare_predictions(runner, trunner, arch):
    """Max abs difference of boxes and scores predicted by the supernet
    (path ``arch``) and the exported subnet on the first search_val batch
    (the initialised weights give mAP 0 on both sides, so the mAP check
    alone would be vacuous). Returns ``(max_diff, n_detections)``."""
    import torch
    for m in find_searchable_backbones(runner.model):
        m.set_arch(arch)
    batch = next(iter(runner.val_dataloader))
    runner.model.eval()
    trunner.model.eval()
    with torch.no_grad():
        a = runner.model.test_step(batch)
        b = trunner.model.test_step(batch)
    diff, n = 0.0, 0
    for x, y in zip(a, b):
        px, py = x.pred_instances, y.pred_instances
        if len(px) != len(py):
            return float('inf'), len(px)
        n += len(px)
        if len(px):
            diff = max(diff, (px.bboxes - py.bboxes).abs().max().item(),
                       (px.scores - py.scores).abs().max().item())
    return diff, n


def backbone_pixels_per_image(model, fn):
    """Mean padded input pixels (H x W) per image that ``model.backbone``
    sees while ``fn()`` runs."""
    shapes = []
    h = model.backbone.register_forward_pre_hook(
        lambda m, a: shapes.append(tuple(a[0].shape)))
    try:
        fn()
    finally:
        h.remove()
    return (sum(n * hh * w for n, _, hh, w in shapes)
            / max(1, sum(s[0] for s in shapes)))


def main(argv=None):
    args = parse_args(argv)
    device = common.setup(args)
    env = common.env_info(device)
    rep = common.Report(
        'candidate_eval',
        'Candidate evaluation overhead (search loop on the supernet vs '
        'tools/test.py on the exported subnet, search_val split)', env,
        args.smoke)
    tmp = args.work_dir or tempfile.mkdtemp(prefix='mmdetnas-bench-eval-')
    try:
        run(args, device, rep, tmp)
    finally:
        if not args.work_dir:
            shutil.rmtree(tmp, ignore_errors=True)
    rep.emit(args.json)


def run(args, device, rep, tmp):
    ckpt = common.supernet_checkpoint(args, rep, tmp)
    t0 = time.perf_counter()
    runner, loop, cfg = build_search_runner(tmp, ckpt, args.images,
                                            args.smoke)
    search_setup_s = time.perf_counter() - t0
    n_img = len(runner.val_dataloader.dataset)
    paths = common.benchmark_paths(args.paths)
    rows, one_off, data = [], [], []
    worst = 0.0
    for arch in paths:
        label = common.arch_label(arch)
        sub_ckpt = common.export_subnet(
            ckpt, arch, osp.join(tmp, f'subnet_{label}.pth'))
        t0 = time.perf_counter()
        trunner = build_test_runner(tmp, sub_ckpt, arch, cfg)
        with quiet():
            metrics = trunner.test()  # exactly tools/test.py: warm-up
        test_first_s = time.perf_counter() - t0
        one_off.append([label, f'{test_first_s:.2f}'])
        scores = {}

        pred_diff, n_det = compare_predictions(runner, trunner, arch)

        # pycocotools prints its summary: silenced on both sides alike
        def candidate(arch=arch):
            with quiet():
                rec = loop.evaluate_candidate(arch)
            scores['candidate'] = rec['score']
            return rec

        def subnet():
            with quiet():
                m = trunner.test_loop.run()
            scores['subnet'] = float(m[loop.score_key])
            return m

        t = common.alternate(dict(candidate=candidate, subnet=subnet),
                             args.warmup, args.repeats, device)
        cs, ss = (common.summarize(t['candidate']),
                  common.summarize(t['subnet']))
        ratio = common.paired_ratio(t['candidate'], t['subnet'])
        worst = max(worst, ratio['ratio'])
        same = abs(scores['candidate'] - scores['subnet']) < 1e-9
        rows.append([
            label, common.fmt_stat(cs, 1e3 / n_img),
            common.fmt_stat(ss, 1e3 / n_img), common.fmt_ratio(ratio),
            f"{'yes' if same else 'NO'} ({scores['candidate']:.4g} / "
            f"{scores['subnet']:.4g})", f'{pred_diff:.1e} ({n_det} boxes)'
        ])
        data.append(dict(arch=list(arch), label=label, times=t, ratio=ratio,
                         scores=scores, pred_diff=pred_diff,
                         first_test_s=test_first_s,
                         first_metrics={k: float(v) for k, v in
                                        metrics.items()
                                        if isinstance(v, (int, float))}))
        del trunner

    # BN recalibration (changes the supernet's BN statistics: last)
    lcfg = cfg.train_cfg
    n_cal = lcfg.calib_iters * lcfg.calib_batch_size
    cal = [loop.recalibrate_bn(paths[0])]  # warm-up
    cal = [loop.recalibrate_bn(paths[0]) for _ in range(args.calib_repeats)]
    cal_s = common.summarize(cal)
    # the backbone (+ neck) alone, other BN layers kept: what 'auto' costs
    # on a detector whose heads have no BN
    from mmdetnas.search.bn_recalibration import bn_forward_parts
    scope = loop.calib_scope
    runs_whole = bn_forward_parts(loop._model(), scope) is None
    loop.calib_scope = 'features'
    # the config's DataLoader workers (the loop's default: the training
    # dataloader's), then the images loaded in this process: the
    # statistics are the same (per-image seeds), the time is not
    workers = loop.calib_num_workers
    if workers is None:
        workers = getattr(loop.dataloader, 'num_workers', 0) or 0
    cal_f = [loop.recalibrate_bn(paths[0])
             for _ in range(args.calib_repeats)]
    cal_f0 = cal_f
    if workers:
        loop.calib_num_workers = 0
        cal_f0 = [loop.recalibrate_bn(paths[0])
                  for _ in range(args.calib_repeats)]
        loop.calib_num_workers = None
    # pixels per image that the backbone sees on each side (not timed)
    cal_px = backbone_pixels_per_image(
        loop._model(), lambda: loop.recalibrate_bn(paths[0]))
    loop.calib_scope = scope
    with quiet():
        eval_px = backbone_pixels_per_image(
            loop._model(), lambda: loop.evaluate_candidate(paths[0]))
    cand_med = common.summarize(data[0]['times']['candidate'])['median']
    rep.data = dict(
        paths=data, images=n_img, search_setup_s=search_setup_s,
        candidate_eval_seconds=cand_med,
        candidate_eval_seconds_all=[
            common.summarize(d['times']['candidate'])['median']
            for d in data],
        calib=dict(seconds=cal, images=n_cal, scope=scope,
                   runs_whole_model=runs_whole, features_seconds=cal_f,
                   workers=workers, features_seconds_no_workers=cal_f0,
                   pixels_per_image=cal_px, eval_pixels_per_image=eval_px,
                   iters=lcfg.calib_iters, batch=lcfg.calib_batch_size))
    rep.table(
        ['path P', 'candidate ms/image', 'tools/test.py subnet ms/image',
         'ratio candidate/subnet', 'same mAP (cand / subnet)',
         'max abs diff of predictions (first batch)'], rows,
        caption=f'Scoring one candidate on {n_img} search_val image(s) '
        '(inference + CocoMetric), per image; median [IQR] (min-max) of '
        f'{args.repeats} alternating rounds after {args.warmup} warm-up; '
        'ratio = ratio of medians, spread = per-round paired ratios.')
    cal_pi = common.summarize([c / n_cal for c in cal])
    cal_fpi = common.summarize([c / n_cal for c in cal_f])
    cal_fpi0 = common.summarize([c / n_cal for c in cal_f0])
    what = ('whole model, loss mode: BN layers outside backbone and neck'
            if runs_whole else 'backbone (+ neck with norms) only')
    with_cal = (cand_med + cal_s['median']) / common.summarize(
        data[0]['times']['subnet'])['median']
    rep.table(
        ['what', 'value'],
        [['BN recalibration per candidate (config: '
          f'{lcfg.calib_iters} iters x {lcfg.calib_batch_size} train '
          'images), s', common.fmt_stat(cal_s)],
         [f'BN recalibration per calibration image (calib_scope={scope!r}:'
          f' {what}), ms', common.fmt_stat(cal_pi, 1e3)],
         ["BN recalibration per calibration image (calib_scope='features'"
          f': backbone + neck only, other BN kept; {workers} DataLoader '
          'worker(s), the config\'s), ms', common.fmt_stat(cal_fpi, 1e3)],
         ["BN recalibration per calibration image (calib_scope='features'"
          ', images loaded in the main process: calib_num_workers=0), ms',
          common.fmt_stat(cal_fpi0, 1e3)],
         ['candidate with recalibration / subnet test '
          f'({common.arch_label(paths[0])}, {n_img} images)',
          f'{with_cal:.3f}'],
         ['one-off: search runner build + checkpoint load, s',
          f'{search_setup_s:.2f}']] +
        [[f'one-off: first tools/test.py run incl. runner build '
          f'({lbl}), s', v] for lbl, v in one_off],
        caption='BN recalibration (timed separately, not in the ratio above)'
        ' and one-off costs.')
    rep.headline('candidate/subnet evaluation time (worst path)', worst)
    rep.headline('BN recalibration per calibration image / evaluation per '
                 f'image (calib_scope={scope!r})',
                 cal_pi['median'] / (cand_med / n_img))
    feat_ratio = cal_fpi['median'] / (cand_med / n_img)
    rep.headline('BN recalibration per calibration image / evaluation per '
                 "image (calib_scope='features')", feat_ratio)
    rep.headline(f'BN recalibration per image, {workers} worker(s) / '
                 'none (calib_scope=\'features\')',
                 cal_fpi['median'] / cal_fpi0['median'])
    rep.headline('backbone input pixels per calibration image / per '
                 'evaluation image', cal_px / eval_px)
    rep.verdict(
        "BN recalibration per image <= 0.5x evaluation per image "
        "(calib_scope='features': backbone + neck)", feat_ratio,
        feat_ratio <= 0.5,
        '' if feat_ratio <= 0.5 else
        f'a calibration image is {cal_px / eval_px:.2f}x the pixels of an '
        'evaluation image (training pipeline: multi-scale resize, batch '
        f'padding), so per pixel the ratio is '
        f'{feat_ratio * eval_px / cal_px:.2f}')
    rep.verdict('candidate/subnet evaluation time ratio <= 1.05 '
                '(worst path)', worst, worst <= 1.05,
                '' if worst <= 1.05 else
                'the search loop evaluates a candidate more than 5% slower '
                'than tools/test.py on the static subnet')
    rep.note('the recalibration cost scales with calib_iters x '
             'calib_batch_size (reference DetNAS: 500 x 8 = 4000 images), '
             'independently of the size of the search split')
    if args.smoke:
        rep.note('smoke mode: 2 images, 1 path, 2 rounds; not a measurement')


if __name__ == '__main__':
    main()
