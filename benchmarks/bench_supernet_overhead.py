"""Benchmark 1: supernet training overhead.

One training iteration (data preprocessing, forward, backward, gradient
clipping, SGD step: mmengine's ``model.train_step``) of the quickstart
Faster R-CNN FPN **supernet** running path P, vs the same detector built as
the **fixed subnet** P (``model.backbone.arch=P``), with the same batch, the
same weights (the supernet's state dict sliced into the subnet, restored
before every iteration on both sides) and the same RNG seed (so RPN/R-CNN
sampling is identical and the losses must match), for several paths.

Targets: time ratio supernet/subnet <= 1.03, peak memory ratio <= 1.10.

Memory: each side runs in a fresh subprocess (alternating order). On CPU the
peak is ``VmHWM - VmRSS`` of that process, the baseline taken after imports
and data loading and before the model is built, with ``VmHWM`` reset to the
baseline (``/proc/self/clear_refs``): it covers parameters, gradients,
optimizer state, activations and allocator slack of the training
iterations. On CUDA it is ``torch.cuda.max_memory_allocated``. The bytes of
parameters + buffers + gradients + optimizer state that exist after the
iterations are reported too (the persistent part).

    python benchmarks/bench_supernet_overhead.py [--smoke] [--json OUT]
"""
import json
import os.path as osp
import subprocess
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import common  # noqa: E402


def parse_args(argv=None):
    p = common.base_parser(__doc__.split('\n')[0])
    p.add_argument('--paths', type=int, help='number of paths (default 3, '
                   'smoke 1); the first is COCO-FPN-300M')
    p.add_argument('--warmup', type=int, help='warm-up rounds (default 2)')
    p.add_argument('--repeats', type=int, help='timed rounds per path '
                   '(default 10, smoke 2)')
    p.add_argument('--batch-size', type=int,
                   help='images per iteration (default 4 as in the config, '
                   'smoke 1)')
    p.add_argument('--mem-iters', type=int,
                   help='iterations of a memory worker (default 3, smoke 1)')
    # internal: one memory measurement in this (fresh) process
    p.add_argument('--mem-worker', choices=['supernet', 'subnet'],
                   help=common.argparse.SUPPRESS)
    p.add_argument('--arch', help=common.argparse.SUPPRESS)
    args = p.parse_args(argv)
    s = args.smoke
    for k, full, smoke in (('paths', 3, 1), ('warmup', 2, 1),
                           ('repeats', 10, 2), ('batch_size', 4, 1),
                           ('mem_iters', 3, 1)):
        if getattr(args, k) is None:
            setattr(args, k, smoke if s else full)
    return args


def build_side(cfg, side, arch, device, supernet_state=None):
    """Model + optimizer wrapper of one side, weights from the supernet's
    (possibly sliced) state dict."""
    from mmengine.optim import build_optim_wrapper
    from mmdetnas.models.backbones import slice_supernet_state_dict
    if side == 'supernet':
        model = common.build_detector(cfg, device=device)
        if supernet_state is not None:
            model.load_state_dict(supernet_state, strict=True)
        model.backbone.set_arch(arch)
    else:
        model = common.build_detector(cfg, arch=arch, device=device)
        if supernet_state is not None:
            model.load_state_dict(
                slice_supernet_state_dict(supernet_state, arch), strict=True)
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    return model, optim


def prefill_momentum(optimizer) -> None:
    """Give every trainable parameter its SGD momentum buffer, as in the
    steady state of training: a supernet trained for a while holds one for
    every block of every choice (a block keeps its buffer once it has been
    on a sampled path), not only for the path of the last iterations.
    Zeros give the same update as SGD's first-step initialisation."""
    import torch
    for group in optimizer.param_groups:
        if not group.get('momentum', 0):
            continue
        for p in group['params']:
            if p.requires_grad:
                optimizer.state[p]['momentum_buffer'] = torch.zeros_like(p)


def mem_worker(args) -> None:
    """Peak memory of ``mem_iters`` training iterations of one side (in a
    fresh process); prints one JSON line."""
    import torch
    device = common.setup(args)
    from mmdetnas.spaces import resolve_arch
    arch = resolve_arch(args.arch)[1]
    cfg = common.load_cfg(common.SUPERNET_CFG)
    batch = common.real_batch(cfg, args.batch_size)
    common.trim_heap()
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        reset_ok = True
    else:
        base = common.proc_status_kb('VmRSS') * 1024
        reset_ok = common.reset_peak_rss()
    model, optim = build_side(cfg, args.mem_worker, arch, device)
    prefill_momentum(optim.optimizer)
    for i in range(args.mem_iters):
        torch.manual_seed(1000 + i)
        model.train_step(batch, optim)
    common.sync(device)
    if device == 'cuda':
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = common.proc_status_kb('VmHWM') * 1024
    state = common.tensor_state_bytes(model, optim.optimizer)
    print('MEMRESULT ' + json.dumps(dict(
        side=args.mem_worker, base=base, peak=peak, delta=peak - base,
        reset_ok=reset_ok, state=state)), flush=True)


def run_mem_worker(args, side, arch) -> dict:
    cmd = [sys.executable, osp.abspath(__file__), '--mem-worker', side,
           '--arch', ','.join(arch), '--batch-size', str(args.batch_size),
           '--mem-iters', str(args.mem_iters), '--threads',
           str(args.threads), '--device', args.device]
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          cwd=common.ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith('MEMRESULT '):
            return json.loads(line[len('MEMRESULT '):])
    raise RuntimeError(f'memory worker {side} failed (rc {proc.returncode})'
                       f':\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')


def main(argv=None):
    args = parse_args(argv)
    if args.mem_worker:
        return mem_worker(args)
    import torch
    device = common.setup(args)
    env = common.env_info(device)
    rep = common.Report(
        'supernet_overhead',
        'Supernet training overhead (Faster R-CNN FPN, one training '
        'iteration, path P vs fixed subnet P)', env, args.smoke)
    cfg = common.load_cfg(common.SUPERNET_CFG)
    batch = common.real_batch(cfg, args.batch_size)
    paths = common.benchmark_paths(args.paths)

    supernet, sup_optim = build_side(cfg, 'supernet', paths[0], device)
    padded = supernet.data_preprocessor(batch, True)['inputs']
    shape = tuple(padded.shape[-2:])
    sup_state = {k: v.detach().clone()
                 for k, v in supernet.state_dict().items()}
    rows, mem_rows, data = [], [], []
    all_ratios, mem_ratios = [], []
    for arch in paths:
        label = common.arch_label(arch)
        supernet.backbone.set_arch(arch)
        subnet, sub_optim = build_side(cfg, 'subnet', arch, device,
                                       sup_state)
        sub_state = {k: v.detach().clone()
                     for k, v in subnet.state_dict().items()}
        sides = dict(
            supernet=(supernet, sup_optim, sup_state),
            subnet=(subnet, sub_optim, sub_state))
        losses = {}

        def before(name, r):
            model, _, state = sides[name]
            model.load_state_dict(state, strict=True)  # same weights
            torch.manual_seed(1000 + r)  # same sampling on both sides

        def after(name, r, log_vars):
            losses.setdefault(r, {})[name] = float(log_vars['loss'].detach())

        fns = {
            name: (lambda m=m, o=o: m.train_step(batch, o))
            for name, (m, o, _) in sides.items()
        }
        t = common.alternate(fns, args.warmup, args.repeats, device,
                             before=before, after=after)
        dloss = max(abs(v['supernet'] - v['subnet']) for v in losses.values())
        sup_s, sub_s = (common.summarize(t['supernet']),
                        common.summarize(t['subnet']))
        ratio = common.paired_ratio(t['supernet'], t['subnet'])
        all_ratios.append(ratio['ratio'])
        rows.append([label, common.fmt_stat(sup_s, 1e3),
                     common.fmt_stat(sub_s, 1e3), common.fmt_ratio(ratio),
                     f'{dloss:.1e}'])

        # memory: one fresh process per side, alternating order
        order = ['supernet', 'subnet'] if len(mem_rows) % 2 == 0 else \
            ['subnet', 'supernet']
        mem = {side: run_mem_worker(args, side, arch) for side in order}
        mratio = mem['supernet']['delta'] / mem['subnet']['delta']
        sratio = (mem['supernet']['state']['total']
                  / mem['subnet']['state']['total'])
        mem_ratios.append(mratio)
        mib = 1 / 2**20
        mem_rows.append([
            label, f"{mem['supernet']['delta'] * mib:.1f}",
            f"{mem['subnet']['delta'] * mib:.1f}", f'{mratio:.3f}',
            f"{mem['supernet']['state']['total'] * mib:.1f}",
            f"{mem['subnet']['state']['total'] * mib:.1f}", f'{sratio:.3f}'])
        data.append(dict(arch=list(arch), label=label, times=t,
                         ratio=ratio, max_loss_diff=dloss, memory=mem))
        del subnet, sub_optim, sub_state, sides
        common.trim_heap()

    rep.data = dict(paths=data, batch_size=args.batch_size, shape=shape)
    rep.table(
        ['path P', 'supernet ms/iter', 'subnet ms/iter',
         'ratio supernet/subnet', 'max abs loss diff'], rows,
        caption=f'Time of one training iteration (batch {args.batch_size} '
        f'real training tiles, padded batch {shape[0]}x{shape[1]}; median '
        f'[IQR] (min-max) of {args.repeats} alternating rounds after '
        f'{args.warmup} warm-up; '
        'ratio = ratio of medians, spread = per-round paired ratios). '
        'Path labels: official name or choice indices.')
    mem_method = ('torch.cuda.max_memory_allocated' if device == 'cuda' else
                  'VmHWM - VmRSS baseline in a fresh process per side '
                  '(baseline after imports and data loading, before the '
                  'model is built; VmHWM reset at the baseline'
                  + ('' if all(d['memory'][s]['reset_ok'] for d in data
                               for s in ('supernet', 'subnet'))
                     else '; RESET FAILED, peak may include start-up')
                  + ')')
    rep.table(
        ['path P', 'supernet peak MiB', 'subnet peak MiB', 'peak ratio',
         'supernet state MiB', 'subnet state MiB', 'state ratio'], mem_rows,
        caption=f'Peak memory of {args.mem_iters} training iteration(s), '
        f'method: {mem_method}. SGD momentum buffers exist for every '
        'trainable parameter (the steady state of training; for the '
        'supernet: every block of every choice); the workers use seeded '
        'initial weights (memory does not depend on the values). "state" = '
        'bytes of '
        'parameters + buffers + gradients + optimizer state that exist after '
        'the iterations.')
    worst_t, worst_m = max(all_ratios), max(mem_ratios)
    rep.headline('time supernet/subnet (worst path)', worst_t)
    rep.headline('peak memory supernet/subnet (worst path)', worst_m)
    rep.verdict('time ratio <= 1.03 (worst path)', worst_t,
                worst_t <= 1.03,
                '' if worst_t <= 1.03 else
                'the supernet iteration is slower than the subnet\'s '
                'beyond 3% for at least one path')
    rep.verdict('peak memory ratio <= 1.10 (worst path)', worst_m,
                worst_m <= 1.10,
                '' if worst_m <= 1.10 else
                'the supernet holds the weights and SGD momentum of all 4 '
                'choices of every searchable layer (see the state columns); '
                'activations, which dominate the peak, are the same')
    rep.note('the supernet run and the subnet run see the same batch, '
             'weights and seed every round: the loss difference column is '
             'the check that they compute the same function')
    if args.smoke:
        rep.note('smoke mode: 1 path, batch 1, 2 rounds; not a measurement')
    rep.emit(args.json)


if __name__ == '__main__':
    main()
