"""What the DetNAS evolutionary search shows and writes, as an mmengine hook.

:class:`~mmdetnas.engine.loops.EvolutionSearchLoop` runs the search
(``run`` -> ``run_epoch``: one generation -> ``run_iter``: one candidate, or
one per rank in candidate-parallel mode) and calls the runner's
``before/after_train_epoch`` and ``before/after_train_iter`` hooks. This hook
turns those calls into the search's outputs; the loop registers it when the
config has none.
"""
import os.path as osp
import time
from typing import List

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmdetnas.registry import HOOKS
from mmdetnas.spaces.arch import save_arch_file
from mmdetnas.search.evolution import topk_single


@HOOKS.register_module()
class SearchOutputsHook(Hook):
    """Progress, visual-backend scalars, plots and result files of an
    :class:`~mmdetnas.engine.loops.EvolutionSearchLoop` search.

    * ``after_train_iter``: for each candidate the iteration scored, one log
      line (score, FLOPs in MACs, params, latency in ms, recalibration and
      evaluation seconds, ETA) and the scalars ``search/score``,
      ``search/flops``, ``search/params``, ``search/latency_ms``,
      ``search/generation`` and ``search/best`` to every backend of
      ``runner.visualizer`` at the candidate's index as step (rank 0);
    * ``after_train_epoch``: the generation's summary line and the plots
      ``search_curve.png`` (and ``pareto.png``);
    * ``after_train``: ``best_arch.yaml``, ``topk.yaml``, ``pareto.yaml``
      (multi-objective), the plots and the re-training commands.

    Files go to ``runner.work_dir`` on rank 0 only.
    """
    priority = 'LOW'

    def before_train(self, runner) -> None:
        self._start = time.time()
        self._n_start = None

    # --------------------------------------------------------------- iters
    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        loop = runner.train_loop
        records = loop.records[batch_idx:]
        if self._n_start is None:
            self._n_start = len(loop.records) - len(records)
        for record in records:
            self._log_progress(loop, record)
            if is_main_process():
                self._push_scalars(runner, loop, record)

    def _log_progress(self, loop, record: dict) -> None:
        # the ETA of mmengine's IterTimerHook when it runs (it counts the
        # loop's iter and max_iters, i.e. candidates), else the engine's
        eta = loop.runner.message_hub.get_info('eta')
        if eta is not None:
            eta = time.strftime('%H:%M:%S', time.gmtime(max(eta, 0)))
        else:
            done_now = record['index'] + 1 - self._n_start
            eta = loop.engine.eta(
                (time.time() - self._start) / max(done_now, 1))
        lat = '' if record['latency_ms'] is None else \
            f", latency {record['latency_ms']:.2f} ms"
        print_log(
            f"[search] gen {record['generation'] + 1}/{loop.max_generations}"
            f" cand {record['index']}: {loop.score_key}="
            f"{record['score']:.6f}, flops {record['flops'] / 1e6:.2f}M MACs,"
            f" params {record['params'] / 1e6:.3f}M{lat}, "
            f"calib {record['calib_seconds']:.1f}s eval "
            f"{record['eval_seconds']:.1f}s, eta {eta}", logger='current')

    @staticmethod
    def _push_scalars(runner, loop, record: dict) -> None:
        visualizer = getattr(runner, 'visualizer', None)
        if visualizer is None:
            return
        upto = loop.records[:record['index'] + 1]
        scalars = {
            'search/score': record['score'],
            'search/flops': record['flops'],
            'search/params': record['params'],
            'search/generation': record['generation'],
            'search/best': max(r['score'] for r in upto),
        }
        if record['latency_ms'] is not None:
            scalars['search/latency_ms'] = record['latency_ms']
        visualizer.add_scalars(scalars, step=record['index'])

    # -------------------------------------------------------------- epochs
    def after_train_epoch(self, runner) -> None:
        loop = runner.train_loop
        if not loop.engine.history:
            return
        entry = loop.engine.history[-1]
        secs = sum(r['calib_seconds'] + r['eval_seconds']
                   for r in loop.records) / max(len(loop.records), 1)
        print_log(
            f"[search] generation {entry['generation'] + 1}/"
            f"{loop.max_generations} done: best {entry['best']:.6f}, mean "
            f"top-{loop.top_k} {entry['mean_topk']:.6f}, "
            f"{entry['evaluated']} evaluated, eta {loop.engine.eta(secs)}",
            logger='current')
        if is_main_process():
            plot(loop)

    # ---------------------------------------------------------------- end
    def after_train(self, runner) -> None:
        if is_main_process():
            write_outputs(runner.train_loop)


def plot(loop) -> None:
    """``search_curve.png`` (and ``pareto.png`` in multi-objective mode)."""
    flops = loop.cost_key == 'flops'
    loop.engine.plot(
        'backbone FLOPs (M MACs, 224x224)' if flops else 'latency (ms)',
        1e6 if flops else 1.0)


def _summary(r: dict) -> dict:
    keys = ('index', 'generation', 'score', 'flops', 'params', 'latency_ms',
            'arch')
    return {k: r[k] for k in keys}


def write_outputs(loop) -> None:
    """The result files of a search and the closing message (call on rank
    0): ``best_arch.yaml`` (the best score, with its FLOPs, params, latency
    and index as meta), ``topk.yaml``, ``pareto.yaml`` (multi-objective) and
    the plots, in ``loop.work_dir``."""
    records: List[dict] = loop.records
    if not records:
        return
    import yaml
    plot(loop)
    best = topk_single(records, 1)[0]  # best score in both modes
    meta = {k: best[k] for k in ('score', 'flops', 'params', 'latency_ms',
                                 'generation', 'index')}
    meta['score_key'] = loop.score_key
    best_path = save_arch_file(
        osp.join(loop.work_dir, 'best_arch.yaml'), tuple(best['arch']),
        loop.space, meta=meta)
    with open(osp.join(loop.work_dir, 'topk.yaml'), 'w') as f:
        yaml.safe_dump(
            dict(search_space=loop.space.name, score_key=loop.score_key,
                 topk=[_summary(r) for r in topk_single(records, loop.top_k)]),
            f, sort_keys=False)
    if loop.multi_objective:
        with open(osp.join(loop.work_dir, 'pareto.yaml'), 'w') as f:
            yaml.safe_dump(
                dict(search_space=loop.space.name,
                     objectives=[f'max {loop.score_key}',
                                 f'min {loop.cost_key}'],
                     front=[_summary(r) for r in loop.engine.front()]),
                f, sort_keys=False)
    ckpt = loop.supernet_checkpoint or 'SUPERNET_CKPT'
    sub = osp.join(loop.work_dir, 'best_subnet.pth')
    cfg = loop.retrain_config or 'configs/detnas/<subnet config>.py'
    print_log(
        f'[search] best {loop.score_key}={best["score"]:.6f} with '
        f'{best["flops"] / 1e6:.2f}M MACs: {best_path}\n'
        're-train it (DetNAS Sec. 4.1: classification re-training of '
        'the subnet, then detection fine-tuning from that checkpoint):\n'
        f'  python tools/train.py {cfg} --cfg-options '
        f'model.backbone.arch={best_path} '
        'model.backbone.init_cfg.checkpoint=CLS_CKPT\n'
        'or start from its weights in the supernet:\n'
        f'  python tools/model_converters/export_subnet.py {ckpt} '
        f'{best_path} {sub}\n'
        f'  python tools/train.py {cfg} --cfg-options '
        f'model.backbone.arch={best_path} '
        f'model.backbone.init_cfg.checkpoint={sub}', logger='current')
