"""The prepared GPU check: the GPU and cluster path of mmdetnas run on tiny
synthetic data (built here, no download), reported as one table
(:func:`run_gpu_check`; its command line is ``python tools/gpu_check.py
[--work-dir DIR] [--gpus N] [--smoke] [--out TABLE.md]``).

Checks, in order (each a row: PASS, FAIL or SKIP, a measured value, seconds):

1. ``mmcv CUDA ops``: ``nms`` and ``RoIAlign`` on CUDA tensors
   (:func:`mmdetnas.utils.install_check.check_cuda_ops`).
2. ``supernet training, torchrun``: the quickstart Faster R-CNN supernet
   trained ``iters`` iterations (30) under ``torchrun`` with ``--launcher
   pytorch`` on ``gpus`` processes (nccl and ``--amp`` on CUDA; gloo, no
   AMP on a CPU, where mmengine refuses AMP), first to half the iterations,
   then continued with ``--resume``: the second run must say it resumed at
   the half, write the last checkpoint, and (AMP) hold a loss scaler.
3. ``DetNAS search (4 candidates)``: ``tools/search.py`` on that supernet,
   one generation of 4 candidates with BN recalibration, on the device.
4. ``DetNAS search CUDA = CPU``: the same search with CUDA hidden; the
   same architectures, scores within ``SCORE_TOL``.
5. ``BN recalibration kernels``: one path's backbone and neck
   recalibrated with the custom reduction kernel and with torch's, on the
   device: each one's error against the same recalibration in float64
   (worst layer, relative to the layer's norm; at most ``STATS_TOL``) and
   the time per calibration image of each (ms).
6. ``latency spread``: the median latency of one path (ms, 5 repeats after
   2 warm-up forwards), measured 5 times: the median of the 5 and their
   spread ``(max - min) / median``.
7. ``SM-NAS structural search (2 candidates)``: the quick structural
   search config, 2 candidates of 2 iterations, in this process.
8. ``device memory after candidate Runners``: CUDA memory allocated after
   that search, against before it: the growth must stay below half the
   parameter bytes of the smallest candidate (a leaked candidate model
   alone would exceed it).

Without CUDA it runs what a CPU can (2, 3, 5, 6, 7) and reports the rest as
skipped. ``smoke`` shrinks every step (the test suite runs it so on a
CPU). Fails (exit status 1) when any check fails. The table is also written
as Markdown to ``out`` (default ``WORK_DIR/gpu_check.md``), ready for
``benchmarks/RESULTS.md``.
"""
import argparse
import gc
import json
import math
import os
import os.path as osp
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import traceback
from typing import Optional

from mmdetnas.apis.tool_setup import (REPO_ROOT, parse_cfg_options,
                                      prepare_cfg)

__all__ = ['SCORE_TOL', 'STATS_TOL', 'PASS', 'FAIL', 'SKIP', 'Check',
           'run_gpu_check']

ROOT = REPO_ROOT

QS = osp.join('configs', 'quickstart')
SUPERNET = osp.join(
    QS, 'detnas_supernet_faster-rcnn_shufflenetv2-300m_fpn_quick_'
    'neon-trees.py')
SEARCH = osp.join(
    QS, 'detnas_search_faster-rcnn_shufflenetv2-300m_fpn_quick_neon-trees.py')
STRUCTURAL = osp.join(
    'configs', 'smnas',
    'smnas_structural_faster-rcnn_mixed_fpn_quick_neon-trees.py')

#: largest |score difference| of one candidate between CUDA and CPU (COCO
#: mAP in [0, 1]): convolutions on cuDNN and on the CPU round differently,
#: which may move a box across an IoU or score threshold on this tiny set
SCORE_TOL = 0.02
#: largest error of a BN kernel's running statistics against float64
#: (the bound of tests/test_search/test_bn_recalibration.py)
STATS_TOL = 1e-2

PASS, FAIL, SKIP = 'PASS', 'FAIL', 'SKIP'


class Check:
    """The rows of the table and the shared state of the checks.

    Args:
        args: the options (``work_dir``, ``gpus``, ``iters``, ``smoke``;
            see :func:`run_gpu_check`).
    """

    def __init__(self, args):
        import torch
        self.args = args
        self.cuda = torch.cuda.is_available()
        self.rows = []
        self.work = osp.abspath(args.work_dir)
        self.env = dict(os.environ, PYTHONWARNINGS='ignore')
        self.coco = None
        self.supernet_ckpt = None
        self.search_rows = None

    # ------------------------------------------------------------ plumbing
    def row(self, name, fn, needs=()):
        """Run one check: ``fn()`` returns ``(status, value)``; an
        exception is a FAIL with its message. ``needs`` names attributes
        that earlier checks must have set (else SKIP)."""
        missing = [n for n in needs if getattr(self, n) is None]
        t = time.time()
        if missing:
            status, value = SKIP, f'needs {", ".join(missing)} (failed ' \
                'above)'
        else:
            try:
                status, value = fn()
            except Exception as e:  # noqa: BLE001 (reported in the table)
                traceback.print_exc()
                status, value = FAIL, f'{type(e).__name__}: {e}'
        self.rows.append((name, status, str(value), time.time() - t))
        print(f'[gpu_check] {status} {name}: {value}', flush=True)

    def run_tool(self, argv, env=None, timeout=600):
        """A tool in a subprocess; returns its stdout + stderr, raises with
        their tail when it fails."""
        proc = subprocess.run(argv, cwd=ROOT, env=env or self.env,
                              capture_output=True, text=True,
                              timeout=timeout)
        out = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise RuntimeError(f'{" ".join(argv[:4])} ... exited with '
                               f'{proc.returncode}:\n{out[-3000:]}')
        return out

    def opts(self):
        from mmdetnas.datasets.synthetic import coco_options
        return coco_options(self.coco)

    # -------------------------------------------------------------- checks
    def cuda_ops(self):
        if not self.cuda:
            return SKIP, 'no CUDA'
        from mmdetnas.utils.install_check import check_cuda_ops
        check_cuda_ops('cuda')
        return PASS, 'nms and RoIAlign on cuda:0 match the expected values'

    def supernet_training(self):
        import torch
        n = self.args.iters
        half = n // 2
        nproc = min(self.args.gpus, torch.cuda.device_count()) \
            if self.cuda else 1
        wd = osp.join(self.work, 'supernet')
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        base = [
            sys.executable, '-m', 'torch.distributed.run',
            f'--nproc_per_node={nproc}', f'--master_port={port}',
            'tools/train.py', SUPERNET, '--launcher', 'pytorch',
            '--work-dir', wd
        ] + (['--amp'] if self.cuda else [])
        common = self.opts() + [
            'model.backbone.init_cfg=None', 'train_cfg.val_interval=100000',
            f'default_hooks.checkpoint.interval={half}'
        ]
        out1 = self.run_tool(base + ['--cfg-options', *common,
                                     f'train_cfg.max_iters={half}'])
        out2 = self.run_tool(base + ['--resume', '--cfg-options', *common,
                                     f'train_cfg.max_iters={n}'])
        backend = 'nccl' if self.cuda else 'gloo'
        if f'started the {backend} process group' not in out1:
            raise RuntimeError(f'the tool did not start the {backend} '
                               f'process group itself:\n{out1[-2000:]}')
        if f'resumed epoch: 0, iter: {half}' not in out2:
            raise RuntimeError(f'--resume did not continue from iteration '
                               f'{half}:\n{out2[-2000:]}')
        ckpt = osp.join(wd, f'iter_{n}.pth')
        if not osp.isfile(ckpt):
            raise RuntimeError(f'no {ckpt} after the resumed run')
        state = torch.load(ckpt, map_location='cpu', weights_only=False)
        amp = 'loss_scaler' in state.get('optimizer', {})
        if self.cuda and not amp:
            raise RuntimeError('--amp given, but the checkpoint holds no '
                               'loss scaler (AmpOptimWrapper not used)')
        self.supernet_ckpt = ckpt
        return PASS, (f'{nproc} x {"cuda" if self.cuda else "cpu"}, '
                      f'{backend}, AMP {"on" if amp else "off"}, {half} it '
                      f'+ --resume to {n}')

    def _search(self, work_dir, env):
        self.run_tool([
            sys.executable, 'tools/search.py', SEARCH, self.supernet_ckpt,
            '--work-dir', work_dir, '--cfg-options', *self.opts(),
            'train_cfg.max_generations=1', 'train_cfg.population_size=4',
            'train_cfg.num_mutation=1', 'train_cfg.num_crossover=1',
            'train_cfg.top_k=2', 'train_cfg.calib_iters=2',
            'train_cfg.calib_batch_size=2'
        ], env=env)
        with open(osp.join(work_dir, 'candidates.jsonl')) as f:
            rows = [json.loads(x) for x in f if x.strip()]
        if len(rows) != 4:
            raise RuntimeError(f'expected 4 candidates, got {len(rows)}')
        return rows

    def detnas_search(self):
        self.search_rows = self._search(osp.join(self.work, 'search'),
                                        self.env)
        calib = sum(r['calib_seconds'] for r in self.search_rows)
        evals = sum(r['eval_seconds'] for r in self.search_rows)
        return PASS, (f'4 candidates on {"cuda" if self.cuda else "cpu"}: '
                      f'recalibration {calib:.1f} s, evaluation '
                      f'{evals:.1f} s in all')

    def search_cuda_equals_cpu(self):
        if not self.cuda:
            return SKIP, 'no CUDA'
        cpu = self._search(osp.join(self.work, 'search_cpu'),
                           dict(self.env, CUDA_VISIBLE_DEVICES=''))
        archs = [r['arch'] for r in self.search_rows]
        if archs != [r['arch'] for r in cpu]:
            raise RuntimeError('CUDA and CPU searches proposed different '
                               'architectures')
        diff = max(abs(a['score'] - b['score'])
                   for a, b in zip(self.search_rows, cpu))
        status = PASS if diff <= SCORE_TOL else FAIL
        return status, f'max |score difference| {diff:.4f} (tol {SCORE_TOL})'

    def _model_and_data(self):
        """The supernet detector of the trained checkpoint on the device,
        one path active, and the training dataloader's dataset."""
        import torch
        from mmengine.config import Config
        from mmengine.dataset import pseudo_collate
        from mmengine.registry import init_default_scope
        from mmengine.runner import load_checkpoint

        from mmdet.registry import DATASETS, MODELS
        from mmdetnas.models import find_searchable_backbones
        from mmdetnas.utils.setup_env import (adapt_sync_bn,
                                              register_all_modules)
        register_all_modules()
        cfg = Config.fromfile(osp.join(ROOT, SUPERNET))
        cfg.merge_from_dict(parse_cfg_options(self.opts()))
        cfg.model.backbone.init_cfg = None
        adapt_sync_bn(cfg, 'none')
        init_default_scope(cfg.get('default_scope', 'mmdet'))
        model = MODELS.build(cfg.model)
        load_checkpoint(model, self.supernet_ckpt, map_location='cpu',
                        logger='silent')
        model.to('cuda' if self.cuda else 'cpu')
        backbones = find_searchable_backbones(model)
        space = backbones[0].search_space
        rng = random.Random(0)  # one fixed path of the space
        arch = tuple(rng.choice(space.choices)
                     for _ in range(space.num_layers))
        for m in backbones:
            m.set_arch(arch)
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        return model, dataset, pseudo_collate, arch, torch

    def recalibration_kernels(self):
        from mmdetnas.search.bn_recalibration import recalibrate_bn
        model, dataset, collate, arch, torch = self._model_and_data()
        batches = 2 if self.args.smoke else 8
        batch = 2

        def run(kernel):
            # backbone + neck ('features'): the BN layers of the path; a
            # whole-model pass would add the RoI head, whose statistics
            # follow the proposals (a discrete choice, moved by any
            # rounding difference upstream)
            seconds = recalibrate_bn(model, dataset, collate, batches, batch,
                                     seed=1, kernel=kernel,
                                     scope='features')
            return seconds, {
                n: (m.running_mean.detach().double().cpu(),
                    m.running_var.detach().double().cpu())
                for n, m in model.named_modules()
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                and m.num_batches_tracked.item() > 0}

        per_image, stats = {}, {}
        for kernel in ('reduction', 'torch'):
            run(kernel)  # warm-up (allocator, cuDNN)
            seconds, stats[kernel] = run(kernel)
            per_image[kernel] = 1000.0 * seconds / (batches * batch)
        # the reference: the same recalibration in float64
        model.double()
        pre = model.data_preprocessor.forward

        def pre64(data, training=False):
            out = pre(data, training)
            out['inputs'] = out['inputs'].double()
            return out

        model.data_preprocessor.forward = pre64
        _, ref = run('reduction')
        if not ref or any(stats[k].keys() != ref.keys() for k in stats):
            raise RuntimeError('the kernels recalibrated different BN '
                               'layers')
        errs = {}
        for kernel, got in stats.items():
            # per layer, relative to the reference's norm (variance; mean
            # in units of the standard deviation), the worst layer
            errs[kernel] = max(
                max(float((v - rv).norm() / rv.norm().clamp(min=1e-12)),
                    float((m - rm).norm() /
                          rv.sqrt().norm().clamp(min=1e-12)))
                for (m, v), (rm, rv) in
                ((got[n], ref[n]) for n in ref))
        worst = max(errs.values())
        status = PASS if worst <= STATS_TOL else FAIL
        return status, (
            f'{len(ref)} BN layers (backbone + neck), worst error against '
            f'float64: reduction {errs["reduction"]:.1e}, torch '
            f'{errs["torch"]:.1e} (tol {STATS_TOL}); per image: reduction '
            f'{per_image["reduction"]:.2f} ms, torch '
            f'{per_image["torch"]:.2f} ms')

    def latency_spread(self):
        from mmdetnas.search.model_cost import measure_latency
        model, _, _, _, _ = self._model_and_data()
        model.eval()
        shape = (96, 96) if self.args.smoke else (320, 320)
        medians = sorted(
            measure_latency(model, shape, warmup=2, repeats=5)
            for _ in range(5))
        mid = medians[2]
        if not all(math.isfinite(t) and t > 0 for t in medians):
            raise RuntimeError(f'latencies not positive: {medians}')
        spread = (medians[-1] - medians[0]) / mid
        return PASS, (f'{shape[0]}x{shape[1]}: median {mid:.2f} ms, spread '
                      f'{100 * spread:.1f}% over 5 measurements of 5')

    def structural_search(self):
        import torch
        from mmengine.registry import init_default_scope

        from mmdetnas.engine import build_search_runner
        from mmdetnas.utils.setup_env import register_all_modules
        register_all_modules()
        iters = 1 if self.args.smoke else 2
        args = argparse.Namespace(
            config=osp.join(ROOT, STRUCTURAL), launcher='none',
            work_dir=osp.join(self.work, 'structural'),
            cfg_options=parse_cfg_options([
                *self.opts(),
                f"train_cfg.candidate_train_cfg.max_iters={iters}",
                'param_scheduler.0.end=1', f'param_scheduler.1.end={iters}',
                'param_scheduler.1.milestones=[1]',
                'train_cfg.population_size=2',
                'train_cfg.max_generations=1',
                'train_cfg.num_mutation=1',
                'train_cfg.num_crossover=1',
                'train_cfg.latency_repeats=1',
                'train_cfg.latency_warmup=0'
            ]))
        cfg = prepare_cfg(args)
        init_default_scope(cfg.get('default_scope', 'mmdet'))
        gc.collect()
        before = torch.cuda.memory_allocated() if self.cuda else None
        fds = _open_fds()
        runner = build_search_runner(cfg)
        runner.train()
        records = list(runner.train_loop.records)
        from mmdetnas.utils import release_runner
        release_runner(runner)
        del runner
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()
        self.memory = (before, torch.cuda.memory_allocated()
                       if self.cuda else None,
                       min(r['params'] for r in records))
        if len(records) != 2:
            raise RuntimeError(f'expected 2 candidates, got {len(records)}')
        grown = _open_fds() - fds if fds is not None else None
        return PASS, (
            '2 candidates: ' + ', '.join(
                f"{r['name']} {r['score']:.3f} mAP {r['latency_ms']:.1f} ms"
                for r in records) +
            (f'; open files +{grown}' if grown is not None else ''))

    def device_memory(self):
        if not self.cuda:
            return SKIP, 'no CUDA'
        if getattr(self, 'memory', None) is None:
            return SKIP, 'the structural search failed'
        before, after, params = self.memory
        limit = params * 4 / 2  # half the float32 bytes of the smallest
        grown = after - before
        status = PASS if grown < limit else FAIL
        return status, (f'allocated {before / 2**20:.1f} -> '
                        f'{after / 2**20:.1f} MiB (+{grown / 2**20:.1f}, '
                        f'limit {limit / 2**20:.1f})')

    # ---------------------------------------------------------------- main
    def run(self):
        from mmdetnas.datasets.synthetic import make_tiny_coco
        if osp.isdir(self.work):
            shutil.rmtree(self.work)
        os.makedirs(self.work)
        self.coco = make_tiny_coco(osp.join(self.work, 'coco'),
                                   num_images=6 if self.args.smoke else 16)
        self.memory = None
        self.row('mmcv CUDA ops', self.cuda_ops)
        self.row('supernet training, torchrun + --resume',
                 self.supernet_training)
        self.row('DetNAS search (4 candidates)', self.detnas_search,
                 needs=('supernet_ckpt', ))
        self.row('DetNAS search CUDA = CPU', self.search_cuda_equals_cpu,
                 needs=('search_rows', ))
        self.row('BN recalibration kernels', self.recalibration_kernels,
                 needs=('supernet_ckpt', ))
        self.row('latency spread', self.latency_spread,
                 needs=('supernet_ckpt', ))
        self.row('SM-NAS structural search (2 candidates)',
                 self.structural_search)
        self.row('device memory after candidate Runners', self.device_memory)
        return self.table()

    def machine(self):
        import torch
        if self.cuda:
            return (f'{torch.cuda.get_device_name(0)} '
                    f'({torch.cuda.device_count()} visible), torch '
                    f'{torch.__version__}, CUDA {torch.version.cuda}')
        return (f'{_cpu_name()} ({os.cpu_count()} cores), no CUDA, torch '
                f'{torch.__version__}')

    def table(self):
        lines = [f'gpu_check on {self.machine()}'
                 f'{" (--smoke)" if self.args.smoke else ""}', '',
                 '| check | result | value | s |', '|---|---|---|---|']
        for name, status, value, secs in self.rows:
            value = value.replace('|', '/').replace('\n', ' ')
            if len(value) > 300:
                value = value[:297] + '...'
            lines.append(f'| {name} | {status} | {value} | {secs:.0f} |')
        return '\n'.join(lines) + '\n'


def _open_fds():
    try:
        return len(os.listdir('/proc/self/fd'))
    except OSError:
        return None


def _cpu_name():
    try:
        with open('/proc/cpuinfo') as f:
            m = re.search(r'model name\s*:\s*(.+)', f.read())
        if m:
            return m.group(1).strip()
    except OSError:
        pass
    return platform.processor() or 'CPU'


def run_gpu_check(work_dir: str = 'work_dirs/gpu_check',
                  gpus: int = 1,
                  iters: Optional[int] = None,
                  smoke: bool = False,
                  out: Optional[str] = None) -> int:
    """Run every check (:class:`Check`) and print and write the table.

    Args:
        work_dir (str): Where the data, runs and table go (emptied first).
        gpus (int): Processes of the torchrun training (one per GPU; 1 on a
            CPU).
        iters (int, optional): Supernet training iterations (default 30;
            4 with ``smoke``), at least 2 (trained to half, then resumed).
        smoke (bool): Shrink every step (CPU test of the check itself).
        out (str, optional): The Markdown table (default
            ``work_dir/gpu_check.md``).

    Returns:
        int: the exit status: 0, or 1 when any check failed (named in the
        last line printed).

    Raises:
        ValueError: ``gpus`` below 1 or ``iters`` below 2.
    """
    if gpus < 1:
        raise ValueError(f'--gpus must be >= 1, got {gpus}')
    if iters is None:
        iters = 4 if smoke else 30
    if iters < 2:
        raise ValueError(f'--iters must be >= 2 (trained to half, then '
                         f'resumed), got {iters}')
    check = Check(argparse.Namespace(work_dir=work_dir, gpus=gpus,
                                     iters=iters, smoke=smoke))
    table = check.run()
    out = out or osp.join(check.work, 'gpu_check.md')
    with open(out, 'w') as f:
        f.write(table)
    print('\n' + table)
    print(f'table written to {out}')
    failed = [r[0] for r in check.rows if r[1] == FAIL]
    if failed:
        print(f'FAILED: {", ".join(failed)}')
        return 1
    return 0
