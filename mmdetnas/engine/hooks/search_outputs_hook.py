"""What a search shows and writes, as an mmengine hook.

Every search loop (:class:`~mmdetnas.engine.loops.BaseSearchLoop`: the
DetNAS :class:`~mmdetnas.engine.loops.EvolutionSearchLoop`, the SM-NAS
:class:`~mmdetnas.engine.loops.StructuralSearchLoop` and
:class:`~mmdetnas.engine.loops.ModularSearchLoop`) runs ``run`` ->
``run_epoch`` (one generation) -> ``run_iter`` (one candidate, or one per
rank) and calls the runner's ``before/after_train_epoch`` and
``before/after_train_iter`` hooks. This hook turns those calls into the
search's outputs through the loop's public interface (``records``,
``population``, ``progress_line``, ``scalars``, ``seconds_per_candidate``,
``plot``, ``write_outputs``); the loop registers it when the config has
none.
"""
import time

from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from mmdetnas.registry import HOOKS


@HOOKS.register_module()
class SearchOutputsHook(Hook):
    """Progress, visual-backend scalars, plots and result files of a search
    loop.

    * ``after_train_iter``: for each candidate the iteration scored, the
      loop's :meth:`progress_line` with an ETA, and its :meth:`scalars`
      (``search/score``, ``search/best``, ``search/generation`` and the
      loop's own, e.g. ``search/flops`` in MACs or ``search/latency_ms``)
      to every backend of ``runner.visualizer`` at the candidate's index as
      step (rank 0), so every candidate is one step;
    * ``after_train_epoch``: the generation's summary line and the loop's
      plots (``search_curve.png``, ``pareto.png``);
    * ``after_train``: the loop's result files (:meth:`write_outputs`).

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
            loop.log(f'{loop.progress_line(record)}, eta '
                     f'{self._eta(loop, record)}')
            if is_main_process():
                visualizer = getattr(runner, 'visualizer', None)
                if visualizer is not None:
                    visualizer.add_scalars(loop.scalars(record),
                                           step=record['index'])

    def _eta(self, loop, record: dict) -> str:
        # mmengine's IterTimerHook ETA when it runs (it counts the loop's
        # iter and max_iters, i.e. candidates), else the population's at the
        # pace of this run
        eta = loop.runner.message_hub.get_info('eta')
        if eta is not None:
            return time.strftime('%H:%M:%S', time.gmtime(max(eta, 0)))
        done_now = record['index'] + 1 - self._n_start
        return loop.population.eta(
            (time.time() - self._start) / max(done_now, 1))

    # -------------------------------------------------------------- epochs
    def after_train_epoch(self, runner) -> None:
        loop = runner.train_loop
        history = loop.population.history
        if not history:
            return
        entry = history[-1]
        secs = loop.seconds_per_candidate() or (
            time.time() - self._start) / max(
                len(loop.records) - (self._n_start or 0), 1)
        loop.log(
            f"[{loop.tag}] generation {entry['generation'] + 1}/"
            f"{loop.max_generations} done: best {entry['best']:.6f}, mean "
            f"top-{loop.top_k} {entry['mean_topk']:.6f}, "
            f"{entry['evaluated']} scored, eta {loop.population.eta(secs)}")
        if is_main_process():
            loop.plot()

    # ---------------------------------------------------------------- end
    def after_train(self, runner) -> None:
        if is_main_process() and runner.train_loop.records:
            runner.train_loop.write_outputs()
