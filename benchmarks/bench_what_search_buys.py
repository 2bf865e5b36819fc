"""Benchmark 5: what the search buys.

Inference latency (ms/image) and backbone FLOPs of the official DetNAS
COCO-FPN-300M subnet vs ResNet-50, each in mmdet's Faster R-CNN FPN
(``mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py``; only the backbone
and the neck's ``in_channels`` differ), on the same input (800x1333 in full
mode), in one process, alternating, after warm-up.

* latency: :func:`mmdetnas.search.model_cost.measure_latency` (one forward
  of a ``1x3xHxW`` input, backbone to raw head outputs with RPN proposals,
  no post-processing of the R-CNN outputs), called once per side per round;
  the backbone alone is timed the same way.
* backbone FLOPs under the DetNAS convention (MACs of Conv2d/Linear at
  1x3x224x224): ``count_macs(backbone, (zeros(1, 3, 224, 224), ))`` for
  both (and ``arch_flops`` for the subnet, which must agree); the whole
  detector's MACs at the benchmark input (every operator,
  :func:`mmdetnas.search.model_cost.model_flops`) too.

Weights are initialised (no download): latency and FLOPs do not depend on
them.

    python benchmarks/bench_what_search_buys.py [--smoke] [--json OUT]
"""
import copy
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import common  # noqa: E402

R50_CFG = ('faster_rcnn', 'faster-rcnn_r50_fpn_1x_coco.py')


def parse_args(argv=None):
    from mmdetnas.spaces.arch import arch_argument
    p = common.base_parser(__doc__.split('\n')[0])
    p.add_argument('--shape', type=int, nargs=2,
                   help='input H W (default 800 1333, smoke 256 416)')
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--repeats', type=int,
                   help='timed rounds (default 5, smoke 2)')
    p.add_argument('--arch', default='COCO-FPN-300M', type=arch_argument,
                   help='the searched subnet (official name, architecture '
                   'file or comma-separated choices)')
    args = p.parse_args(argv)
    if args.shape is None:
        args.shape = [256, 416] if args.smoke else [800, 1333]
    if args.repeats is None:
        args.repeats = 2 if args.smoke else 5
    return args


def r50_config():
    """mmdet's own Faster R-CNN R50-FPN 1x COCO config."""
    import mmdet
    from mmengine.config import Config
    path = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', *R50_CFG)
    return Config.fromfile(path)


def build_pair(arch, device):
    """(ResNet-50 detector, searched-subnet detector), eval mode."""
    import torch
    from mmdet.registry import MODELS
    from mmdetnas.models.backbones import DetNASShuffleNetV2
    cfg = r50_config()
    r50_cfg = copy.deepcopy(cfg.model)
    r50_cfg.backbone.init_cfg = None
    sub_cfg = copy.deepcopy(cfg.model)
    probe = DetNASShuffleNetV2(arch=arch)
    sub_cfg.backbone = dict(
        type='mmdetnas.DetNASShuffleNetV2', arch=arch,
        out_indices=(0, 1, 2, 3), norm_cfg=dict(type='BN',
                                                requires_grad=True),
        init_cfg=None)
    sub_cfg.neck.in_channels = list(probe.out_channels)
    models = []
    for c in (r50_cfg, sub_cfg):
        torch.manual_seed(0)
        m = MODELS.build(c)
        m.init_weights()
        models.append(m.to(device).eval())
    return models[0], models[1], cfg, sub_cfg


def main(argv=None):
    args = parse_args(argv)
    import torch
    device = common.setup(args)
    env = common.env_info(device)
    from mmdetnas.search import arch_flops, count_macs
    from mmdetnas.spaces import resolve_arch
    from mmdetnas.search.model_cost import measure_latency, model_flops
    space, arch = resolve_arch(args.arch)
    label = args.arch if isinstance(args.arch, str) and ',' not in \
        args.arch else common.arch_label(arch)
    rep = common.Report(
        'what_search_buys',
        f'What the search buys: {label} vs ResNet-50 in Faster R-CNN FPN '
        '(inference)', env, args.smoke)
    r50, sub, _, sub_cfg = build_pair(arch, device)
    shape = tuple(args.shape)

    # whole detector, measure_latency (ms)
    t = common.alternate(
        {label: lambda: None, 'ResNet-50': lambda: None}, args.warmup,
        args.repeats, device,
        timer=lambda n, _: measure_latency(
            sub if n == label else r50, shape, warmup=0, repeats=1) / 1e3)
    det = common.paired_ratio(t[label], t['ResNet-50'])
    # backbone alone
    x = torch.zeros(1, 3, *shape, device=device)

    def bb(m):
        with torch.no_grad():
            return m.backbone(x)

    tb = common.alternate({label: lambda: bb(sub),
                           'ResNet-50': lambda: bb(r50)},
                          args.warmup, args.repeats, device)
    bbr = common.paired_ratio(tb[label], tb['ResNet-50'])

    # FLOPs (DetNAS convention for backbones; every op for the detector)
    z = torch.zeros(1, 3, 224, 224, device=device)
    f_sub = count_macs(sub.backbone, (z, ))
    f_tab = arch_flops(space, arch)
    f_r50 = count_macs(r50.backbone, (z, ))
    det_flops = None
    if not args.smoke:
        det_flops = (model_flops(sub, shape), model_flops(r50, shape))
    p_sub = sum(p.numel() for p in sub.backbone.parameters())
    p_r50 = sum(p.numel() for p in r50.backbone.parameters())

    ms = 1e3
    rows = [
        ['detector latency, ms/image (measure_latency, '
         f'{shape[0]}x{shape[1]})',
         common.fmt_stat(common.summarize(t[label]), ms),
         common.fmt_stat(common.summarize(t['ResNet-50']), ms),
         common.fmt_ratio(det)],
        [f'backbone latency, ms/image ({shape[0]}x{shape[1]})',
         common.fmt_stat(common.summarize(tb[label]), ms),
         common.fmt_stat(common.summarize(tb['ResNet-50']), ms),
         common.fmt_ratio(bbr)],
        ['backbone FLOPs, M MACs (DetNAS convention, 1x3x224x224)',
         f'{f_sub / 1e6:.1f} (arch_flops table: {f_tab / 1e6:.1f})',
         f'{f_r50 / 1e6:.1f}', f'{f_sub / f_r50:.3f}'],
        ['backbone parameters, M', f'{p_sub / 1e6:.2f}',
         f'{p_r50 / 1e6:.2f}', f'{p_sub / p_r50:.3f}'],
    ]
    if det_flops:
        rows.append([
            f'whole detector, G MACs (all ops, {shape[0]}x{shape[1]}, '
            'model_flops)', f'{det_flops[0] / 1e9:.1f}',
            f'{det_flops[1] / 1e9:.1f}', f'{det_flops[0] / det_flops[1]:.3f}'
        ])
    rep.table(['quantity', label, 'ResNet-50', f'ratio {label}/R50'], rows,
              caption='Faster R-CNN FPN from mmdet\'s R50 1x COCO config, '
              'only the backbone and neck.in_channels '
              f'({list(sub_cfg.neck.in_channels)} vs [256, 512, 1024, 2048])'
              f' differ; batch 1, eval mode; median [IQR] (min-max) of '
              f'{args.repeats} alternating rounds after {args.warmup} '
              'warm-up; ratio = ratio of medians, spread = per-round paired '
              'ratios.')
    rep.data = dict(latency=t, backbone_latency=tb, det_ratio=det,
                    backbone_ratio=bbr, flops=dict(subnet=f_sub,
                                                   subnet_table=f_tab,
                                                   r50=f_r50),
                    detector_flops=det_flops, params=dict(
                        subnet=p_sub, r50=p_r50), shape=shape)
    rep.headline(f'detector latency {label}/ResNet-50', det['ratio'])
    rep.headline(f'backbone latency {label}/ResNet-50', bbr['ratio'])
    rep.headline(f'backbone FLOPs {label}/ResNet-50', f_sub / f_r50)
    rep.verdict('the subnet\'s backbone FLOPs agree with the arch_flops '
                'table', None, f_sub == f_tab,
                '' if f_sub == f_tab else f'{f_sub} vs {f_tab}')
    rep.note('the detector latency includes the RPN on 5 FPN levels with '
             '256 channels and the R-CNN head on up to 1000 proposals, which '
             'do not depend on the backbone: the detector-level gain is much '
             'smaller than the backbone-level one')
    rep.note('no numeric target: this is what replacing ResNet-50 by the '
             'searched backbone buys in latency at equal FPN/heads (the '
             'mAP side is in the DetNAS paper, not measured here)')
    if args.smoke:
        rep.note(f'smoke mode: {shape[0]}x{shape[1]} input, 2 rounds; not '
                 'a measurement')
    rep.emit(args.json)


if __name__ == '__main__':
    main()
