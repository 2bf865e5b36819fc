"""Shared helpers of the benchmark scripts (one copy, used by all).

* :func:`base_parser` / :func:`setup`: the common flags (``--smoke``,
  ``--device``, ``--threads``, ``--json``) and process set-up.
* :func:`alternate`: the timing loop. Both (or all) sides are timed in the
  same process, after warm-up, alternating ``A B`` / ``B A`` round by round
  so that drift (thermal, other load on a shared machine) hits both sides.
* :func:`summarize`, :func:`paired_ratio`, :func:`markdown_table`,
  :func:`env_info`: median / spread, the ratio, the table and the
  environment line every benchmark prints.
* :class:`Report`: what a benchmark prints and writes (``--json``) for
  ``benchmarks/run_all.py``.
* Model helpers for the quickstart Faster R-CNN FPN supernet (configs,
  building the detector with BN and no pre-trained weights, a fixed real
  batch, a supernet checkpoint, exporting a subnet with the project's tool).
"""
import argparse
import copy
import datetime
import gc
import json
import logging
import math
import os
import os.path as osp
import platform
import socket
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

QUICK = osp.join(ROOT, 'configs', 'quickstart')
SUPERNET_CFG = osp.join(
    QUICK, 'detnas_supernet_faster-rcnn_shufflenetv2-300m_fpn_quick_'
    'neon-trees.py')
SEARCH_CFG = osp.join(
    QUICK, 'detnas_search_faster-rcnn_shufflenetv2-300m_fpn_quick_'
    'neon-trees.py')
SUBNET_CFG = osp.join(
    QUICK, 'detnas_subnet_faster-rcnn_shufflenetv2-300m_fpn_quick_'
    'neon-trees.py')
DATA_ROOT = osp.join(ROOT, 'data', 'neon_trees')


# ---------------------------------------------------------------- set-up
def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        '--smoke', action='store_true',
        help='tiny repeats and inputs: checks that the benchmark runs')
    parser.add_argument(
        '--device', default='auto', choices=['auto', 'cpu', 'cuda'],
        help='auto: CUDA when available, else CPU')
    parser.add_argument(
        '--threads', type=int, default=1,
        help='torch intra-op threads on CPU (default 1: the benchmark '
        'machines are small and shared; recorded in the environment line)')
    parser.add_argument(
        '--json', help='also write the result (table, verdicts, raw data) '
        'to this JSON file (used by run_all.py)')
    return parser


def pick_device(name: str = 'auto') -> str:
    import torch
    if name == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if name == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: CUDA is not available')
    return name


def setup(args) -> str:
    """Threads, working directory (configs use paths relative to the
    repository), registries and default scope; returns the device."""
    import torch
    os.chdir(ROOT)
    torch.set_num_threads(max(1, args.threads))
    os.environ.setdefault('OMP_NUM_THREADS', str(max(1, args.threads)))
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    from mmdetnas.utils.setup_env import register_all_modules
    # mmengine logs every parameter's initialisation at INFO: keep the
    # benchmark output to warnings and results
    MMLogger.get_instance('mmengine').setLevel(logging.WARNING)
    register_all_modules()
    init_default_scope('mmdet')
    check_data()
    return pick_device(args.device)


def check_data() -> None:
    """Prepare the tree-crown tiles when they are missing (fresh clone).

    The benchmarks read the quickstart data; on a fresh clone it does not
    exist yet, so the (deterministic) preparation script is run here, the
    same call the quickstart makes. Raises ``SystemExit`` naming the command
    when it fails."""
    ann = osp.join(DATA_ROOT, 'annotations', 'search_val.json')
    if osp.isfile(ann):
        return
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'dataset_converters',
                                    'prepare_neon_trees.py'),
           '--out-dir', DATA_ROOT]
    print(f'{ann} is missing: preparing it with: {" ".join(cmd)}',
          flush=True)
    rc = subprocess.run(cmd, cwd=ROOT).returncode
    if rc != 0 or not osp.isfile(ann):
        raise SystemExit(
            f'preparing the data failed (rc {rc}); run `python tools/'
            'dataset_converters/prepare_neon_trees.py --out-dir '
            'data/neon_trees` and read its error')


def _cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def env_info(device: str) -> dict:
    """Versions, device and date of this run."""
    import mmcv
    import mmdet
    import mmengine
    import torch
    import mmdetnas
    if device == 'cuda':
        dev = (f'cuda: {torch.cuda.get_device_name(0)} '
               f'(CUDA {torch.version.cuda})')
    else:
        dev = (f'cpu: {_cpu_name()}, {os.cpu_count()} cores, '
               f'{torch.get_num_threads()} torch thread(s)')
    return dict(
        date=datetime.datetime.now().strftime('%Y-%m-%d %H:%M'),
        host=socket.gethostname(), python=platform.python_version(),
        torch=torch.__version__, mmdet=mmdet.__version__,
        mmengine=mmengine.__version__, mmcv=mmcv.__version__,
        mmdetnas=mmdetnas.__version__, device=dev,
        cuda_available=torch.cuda.is_available())


def env_line(info: dict) -> str:
    return (f"{info['date']} | torch {info['torch']}, mmdet {info['mmdet']},"
            f" mmengine {info['mmengine']}, mmcv {info['mmcv']}, "
            f"python {info['python']} | {info['device']}")


# ---------------------------------------------------------------- timing
def sync(device: str) -> None:
    if device == 'cuda':
        import torch
        torch.cuda.synchronize()


def alternate(fns: Dict[str, Callable[[], object]],
              warmup: int = 1,
              repeats: int = 5,
              device: str = 'cpu',
              before: Optional[Callable[[str, int], None]] = None,
              after: Optional[Callable[[str, int, object], None]] = None,
              timer: Optional[Callable[[str, Callable], float]] = None
              ) -> Dict[str, List[float]]:
    """Time every function of ``fns`` in the same process, alternating.

    ``warmup`` untimed rounds, then ``repeats`` timed rounds; round ``r``
    runs the sides in the given order when ``r`` is even and reversed when
    odd (A B, B A, A B, ...), so slow drift affects both sides equally.

    Args:
        fns: name -> function to time (its return value goes to ``after``).
        before: untimed ``(name, round)`` hook run just before each call
            (e.g. restoring weights or seeding); ``round`` < 0 in warm-up.
        after: untimed ``(name, round, result)`` hook after each call.
        timer: ``(name, fn) -> seconds`` replacing wall-clock timing of
            the call (e.g. a function that reports its own time).

    Returns:
        dict: name -> list of ``repeats`` durations in seconds.
    """
    names = list(fns)
    times = {n: [] for n in names}
    for r in range(-warmup, repeats):
        order = names if (r % 2 == 0) else names[::-1]
        for n in order:
            if before is not None:
                before(n, r)
            if timer is not None:
                dt = timer(n, fns[n])
                out = None
            else:
                sync(device)
                t0 = time.perf_counter()
                out = fns[n]()
                sync(device)
                dt = time.perf_counter() - t0
            if after is not None:
                after(n, r, out)
            if r >= 0:
                times[n].append(dt)
    return times


def _quantile(xs: Sequence[float], q: float) -> float:
    xs = sorted(xs)
    if len(xs) == 1:
        return xs[0]
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize(xs: Sequence[float]) -> dict:
    """median, IQR (q1, q3), min, max and n of a sample."""
    xs = list(xs)
    return dict(
        median=statistics.median(xs), q1=_quantile(xs, 0.25),
        q3=_quantile(xs, 0.75), min=min(xs), max=max(xs), n=len(xs))


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> dict:
    """Ratio of medians ``median(a) / median(b)`` (the headline number) and
    the spread of the per-round ratios ``a[i] / b[i]`` (each pair measured
    back to back)."""
    per = [x / y for x, y in zip(a, b)]
    s = summarize(per)
    s['ratio'] = statistics.median(a) / statistics.median(b)
    return s


def fmt_num(x: float, digits: int = 3) -> str:
    """``digits`` significant digits, without exponent between 1e-3 and
    1e6 (``1942``, ``22.1``, ``0.381``)."""
    if x == 0 or not math.isfinite(x):
        return str(x)
    if 1e-3 <= abs(x) < 1e6:
        decimals = max(digits - 1 - int(math.floor(math.log10(abs(x)))), 0)
        return f'{x:.{decimals}f}'
    return f'{x:.{digits}g}'


def fmt_stat(s: dict, scale: float = 1.0, digits: int = 3) -> str:
    """``median [q1, q3] (min-max)`` scaled."""
    def f(k):
        return fmt_num(s[k] * scale, digits)
    return f"{f('median')} [{f('q1')}, {f('q3')}] ({f('min')}-{f('max')})"


def fmt_ratio(s: dict) -> str:
    return (f"{s['ratio']:.3f} (per-round {s['q1']:.3f}-{s['q3']:.3f} IQR, "
            f"{s['min']:.3f}-{s['max']:.3f} range)")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    rows = [[str(c) for c in r] for r in rows]
    lines = ['| ' + ' | '.join(headers) + ' |',
             '|' + '|'.join('---' for _ in headers) + '|']
    lines += ['| ' + ' | '.join(r) + ' |' for r in rows]
    return '\n'.join(lines)


# ---------------------------------------------------------------- report
class Report:
    """What one benchmark prints and writes for ``run_all.py``.

    Args:
        name: short name (the script's, without ``bench_``).
        title: one-line title.
        env: :func:`env_info`.
        smoke: smoke mode (numbers are not meaningful).
    """

    def __init__(self, name: str, title: str, env: dict, smoke: bool):
        self.name = name
        self.title = title
        self.env = env
        self.smoke = smoke
        self.tables: List[dict] = []
        self.verdicts: List[dict] = []
        self.notes: List[str] = []
        self.data: dict = {}
        self.headlines: List[dict] = []
        self.t0 = time.perf_counter()
        self.load_start = os.getloadavg()

    def headline(self, label: str, ratio: Optional[float]) -> None:
        """The ratio(s) summarised by run_all.py (None: not measured)."""
        self.headlines.append(dict(label=label, ratio=ratio))

    def table(self, headers, rows, caption: str = '') -> None:
        self.tables.append(dict(caption=caption,
                                markdown=markdown_table(headers, rows)))

    def verdict(self, target: str, value: Optional[float],
                met: Optional[bool], why: str = '', unit: str = '') -> None:
        """``met`` None: not measurable in this run (say why)."""
        self.verdicts.append(dict(target=target, value=value, met=met,
                                  why=why, unit=unit))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def markdown(self, level: int = 2) -> str:
        h = '#' * level
        load = '/'.join(f'{x:.2f}' for x in self.load_start) + ' -> ' + \
            '/'.join(f'{x:.2f}' for x in os.getloadavg())
        out = [f'{h} {self.title}', '', f'Environment: {env_line(self.env)}'
               f' | load avg (1/5/15 min) {load}'
               + ('  (SMOKE MODE: numbers not meaningful)'
                  if self.smoke else ''), '']
        for t in self.tables:
            if t['caption']:
                out += [t['caption'], '']
            out += [t['markdown'], '']
        for h in self.headlines:
            r = 'n/a' if h['ratio'] is None else f"{h['ratio']:.4g}"
            out.append(f"- Ratio {h['label']}: {r}")
        for v in self.verdicts:
            out.append(f'- {verdict_line(v)}')
        if self.verdicts or self.headlines:
            out.append('')
        for n in self.notes:
            out.append(f'- Note: {n}')
        if self.notes:
            out.append('')
        return '\n'.join(out)

    def emit(self, json_path: Optional[str] = None) -> None:
        print('\n' + self.markdown(), flush=True)
        if json_path:
            payload = dict(
                name=self.name, title=self.title, env=self.env,
                smoke=self.smoke, tables=self.tables,
                verdicts=self.verdicts, notes=self.notes, data=self.data,
                headlines=self.headlines,
                seconds=time.perf_counter() - self.t0,
                markdown=self.markdown(level=2))
            os.makedirs(osp.dirname(osp.abspath(json_path)), exist_ok=True)
            with open(json_path, 'w') as f:
                json.dump(payload, f, indent=1, default=str)


def verdict_line(v: dict) -> str:
    state = {True: 'MET', False: 'NOT MET', None: 'NOT MEASURED'}[v['met']]
    val = '' if v['value'] is None else \
        f" (measured {v['value']:.4g}{v.get('unit', '')})"
    why = f": {v['why']}" if v['why'] else ''
    return f"Target `{v['target']}`{val}: **{state}**{why}"


# ---------------------------------------------------------------- memory
def proc_status_kb(key: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise KeyError(key)


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs`` 5)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def trim_heap() -> None:
    """Return freed heap pages to the OS (glibc), so RSS reflects live
    memory."""
    gc.collect()
    try:
        import ctypes
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def tensor_state_bytes(model, optimizer=None) -> dict:
    """Bytes of parameters, gradients and optimizer state that exist."""
    import torch
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    grads = sum(p.grad.numel() * p.grad.element_size()
                for p in model.parameters() if p.grad is not None)
    opt = 0
    if optimizer is not None:
        for st in optimizer.state.values():
            for v in st.values():
                if isinstance(v, torch.Tensor):
                    opt += v.numel() * v.element_size()
    return dict(params=params, buffers=buffers, grads=grads, optimizer=opt,
                total=params + buffers + grads + opt)


# ---------------------------------------------------------------- models
def load_cfg(path: str):
    """A config with SyncBN turned into BN (what the tools do on CPU /
    in one process). A supernet backbone gets the paper's layout (the 300M
    space, 4 choices with independent weights) instead of the quickstart's
    entangled kernel-size space: these benchmarks measure DetNAS's own
    supernet and its official paths."""
    from mmengine.config import Config
    from mmdetnas.utils.setup_env import sync_bn_to_bn
    cfg = Config.fromfile(path)
    sync_bn_to_bn(cfg._cfg_dict)
    bb = cfg.model.get('backbone', {})
    if bb.get('arch') is None and 'weight_sharing' in bb:
        bb.search_space, bb.weight_sharing = '300M', 'none'
        flops = cfg.get('train_cfg', {}).get('flops')
        if flops is not None:  # the paper's limit, not the quickstart's
            cfg.train_cfg.flops = (None, 300e6)
            cfg.train_cfg.max_tries_factor = 10
    return cfg


def build_detector(cfg, arch=None, seed: int = 0, device: str = 'cpu'):
    """The detector of ``cfg`` with the backbone's ``init_cfg=None`` (no
    pre-trained file) and mmdet's own initialisation of neck and heads;
    ``arch`` makes the backbone the fixed subnet ``arch``."""
    import torch
    from mmdet.registry import MODELS
    mcfg = copy.deepcopy(cfg.model)
    mcfg.backbone.init_cfg = None
    if arch is not None:
        mcfg.backbone.arch = list(arch)
    torch.manual_seed(seed)
    model = MODELS.build(mcfg)
    model.init_weights()
    return model.to(device)


def benchmark_paths(n: int, seed: int = 0) -> List[tuple]:
    """The official COCO-FPN-300M path, then ``n - 1`` uniformly sampled
    300M paths (fixed seed)."""
    from mmdetnas.search import UniformPathSampler
    from mmdetnas.spaces import resolve_arch
    paths = [resolve_arch('COCO-FPN-300M')[1]]
    sampler = UniformPathSampler('300M', seed=seed)
    while len(paths) < n:
        a = sampler.sample()
        if a not in paths:
            paths.append(a)
    return paths


def arch_label(arch) -> str:
    from mmdetnas.spaces import arch_to_indices, OFFICIAL_ARCHS, PRESETS
    idx = arch_to_indices(tuple(arch), PRESETS['300M'])
    for name, (_, ref) in OFFICIAL_ARCHS.items():
        if list(ref) == list(idx):
            return name
    return ''.join(str(i) for i in idx)


def real_batch(cfg, batch_size: int, seed: int = 0) -> dict:
    """A fixed batch of ``batch_size`` training tiles (the training
    pipeline, random flips drawn once with ``seed``), collated as the
    training dataloader does."""
    import random

    import numpy as np
    import torch
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    dataset = DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset))
    return pseudo_collate([dataset[i] for i in range(batch_size)])


def make_supernet_checkpoint(path: str, seed: int = 0) -> str:
    """Save an initialised quickstart detection supernet (BN, seeded) as an
    mmengine-style checkpoint: stands in for a trained supernet (costs do
    not depend on the weight values beyond the capped number of
    detections)."""
    import torch
    cfg = load_cfg(SEARCH_CFG)
    model = build_detector(cfg, seed=seed)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(note='initialised supernet (benchmarks)')),
               path)
    return path


def add_supernet_ckpt_arg(parser: argparse.ArgumentParser) -> None:
    """``--supernet-ckpt``: the supernet the benchmark scores (see
    :func:`supernet_checkpoint`)."""
    parser.add_argument(
        '--supernet-ckpt',
        help='a trained quickstart supernet checkpoint (default: an '
        'initialised one, saved in a temporary folder)')


def supernet_checkpoint(args, rep: 'Report', tmp: str) -> str:
    """``args.supernet_ckpt``, or an initialised supernet saved in ``tmp``
    (:func:`make_supernet_checkpoint`); the choice is noted in the
    report."""
    if args.supernet_ckpt:
        rep.note('supernet checkpoint: ' + args.supernet_ckpt)
        return args.supernet_ckpt
    rep.note('supernet checkpoint: an initialised quickstart supernet '
             '(benchmarks/common.py make_supernet_checkpoint); pass '
             '--supernet-ckpt for a trained one')
    return make_supernet_checkpoint(osp.join(tmp, 'supernet.pth'))


def export_subnet(src: str, arch, dst: str) -> str:
    """Slice ``arch`` out of supernet checkpoint ``src``
    (:func:`mmdetnas.search.export_subnet`)."""
    from mmdetnas.search import export_subnet as export
    export(src, list(arch), dst)
    return dst


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
