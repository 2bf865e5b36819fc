"""Evolutionary architecture search as an MMEngine loop (DetNAS Sec. 3.4).

Used as ``train_cfg=dict(type='mmdetnas.EvolutionSearchLoop', ...)`` in a
search config that inherits a supernet config; ``tools/search.py`` loads the
supernet checkpoint (``load_from``) and calls ``runner.train()``.

Each candidate: constraints (cached FLOPs table) -> activate the path -> BN
recalibration on training images -> evaluation on the search split (mmdet's
``val_step`` over the ``val_dataloader``'s dataset and the ``val_evaluator``,
e.g. CocoMetric) -> one line in ``candidates.jsonl``, a new
``search_state.pkl`` and the candidate's scalars in ``runner.visualizer``.

Two ways to use several processes (``parallel``):

- ``'candidate'`` (default with more than one process): each rank scores
  whole candidates of a generation (recalibration and evaluation on the
  whole search split, on this rank alone, without collectives); the results
  of a batch of ``world_size`` candidates are gathered and recorded in the
  candidates' order, so the search is the same for any number of processes.
- ``'data'`` (default with one process): every candidate is scored by all
  ranks together through ``runner.val_loop.run()`` (the search split split
  across ranks, with the val hooks), for a search split too large for one
  device.
"""
import logging
import os.path as osp
import random
import time
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dist import get_rank, get_world_size, is_main_process
from mmengine.model import is_model_wrapper

from mmdetnas.engine.hooks.path_sampler_hook import PathSamplerHook
from mmdetnas.models.searchable import find_searchable_backbones
from mmdetnas.engine.loops.base_search_loop import BaseSearchLoop
from mmdetnas.evaluation.metric_names import check_score_key
from mmdetnas.registry import LOOPS
from mmdetnas.spaces.arch import (Arch, arch_to_indices, resolve_arch,
                                  save_arch_file)
from mmdetnas.search.bn_recalibration import (SCOPES, dataloader_batch_size,
                                              recalibrate_path_bn,
                                              resolve_kernel)
from mmdetnas.search.constraints import ArchConstraints
from mmdetnas.search.evolution import topk_single
from mmdetnas.spaces.path_space import PathSpace
from mmdetnas.search.model_cost import measure_latency
from mmdetnas.utils.checkpoint import file_sha256
from mmdetnas.utils.dist import (DEFAULT_COLLECTIVE_TIMEOUT_S,
                                 broadcast_object, gather_objects,
                                 set_collective_timeout)


def _to_cpu(obj):
    """``obj`` with every tensor (in lists, tuples and dicts) on the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.to('cpu')
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


@LOOPS.register_module()
class EvolutionSearchLoop(BaseSearchLoop):
    """Evolutionary search over the paths of a trained supernet.

    Args:
        runner: The runner.
        dataloader (dict | DataLoader): Training dataloader; only its dataset
            and collate function are used, for BN recalibration.
        max_generations (int): Generations (paper: 20).
        population_size (int): Candidates per generation (paper: 50).
        top_k (int): Parents kept (paper: 10).
        num_mutation (int): Mutated children per generation (paper: 20).
        num_crossover (int): Crossover children per generation (paper: 20);
            the rest of the population is random.
        mutate_prob (float): Per-layer re-draw probability (paper: 0.1).
        max_tries_factor (int): A generation gives up after this many times
            the wanted number of draws (paper: 10).
        flops (tuple, optional): ``(min, max)`` backbone MACs, DetNAS
            convention (1x3x224x224, Conv2d+Linear); ``None`` bounds allowed.
        params (tuple, optional): ``(min, max)`` backbone parameters.
        latency (tuple, optional): ``(min, max)`` whole-model latency in ms,
            measured on the current device at ``latency_shape``.
        latency_shape (tuple[int]): ``(H, W)`` input of latency measurement
            (and the shape a ``latency_table`` must have been built for).
        latency_table (str | dict, optional): A latency lookup table
            (``tools/analysis_tools/latency_table.py``), built on the target
            machine: ``'TABLE.json'``, or ``dict(file='TABLE.json',
            backend='onnxruntime', device='cpu: <CPU model>')`` to also
            require its backend / device. The ``latency`` constraint and the
            ``'latency_ms'`` objective then use its predictions (ms of the
            exported backbone, neck and dense head on that backend), with no
            timing during the search. Without it, latency is the whole
            model's, timed with PyTorch eager on the current device.
        score_key (str): Metric to maximise, e.g. ``'coco/bbox_mAP'`` or
            ``'pascal_voc/mAP'``.
        multi_objective (bool): Keep the Pareto front of (score up, cost
            down) and select parents by NSGA-II rank and crowding distance.
        cost_key (str): ``'flops'`` or ``'latency_ms'`` (multi-objective).
        calibrate_bn (bool): Recalibrate BN statistics before evaluating each
            candidate (reset, then train-mode forwards without gradients).
        calib_iters (int): Recalibration batches (reference: 500).
        calib_batch_size (int): Images per recalibration batch (ref.: 8).
        calib_scope (str): What the recalibration runs (see
            :func:`mmdetnas.search.bn_recalibration.bn_forward_parts`):
            ``'auto'`` the backbone (and neck) alone when they hold every BN
            layer, else the whole model in ``'loss'`` mode; ``'features'``
            the backbone (and neck) only, other BN layers keep their
            statistics; ``'full'`` the whole model.
        init_archs (Sequence): Architectures put into the first generation
            (e.g. a baseline); anything :func:`resolve_arch` accepts.
        seed (int): Seed of every search decision and of recalibration.
        resume (bool): Continue from ``work_dir/search_state.pkl``.
        retrain_config (str, optional): Config printed in the closing
            re-train command.
        parallel (str, optional): ``'candidate'`` (each rank scores whole
            candidates, results gathered in candidate order) or ``'data'``
            (all ranks score each candidate together through
            ``runner.val_loop``, and each recalibrates BN on its share of
            the calibration batches, the statistics combined). ``None``:
            ``'candidate'`` with more than one process, else ``'data'``.
            Both give the same search.
        calib_num_workers (int, optional): DataLoader workers that load the
            calibration images (default: the training dataloader's
            ``num_workers``); the statistics do not depend on it.
        calib_kernel (str): BN forward of the recalibration, ``'auto'``
            (by device: see
            :data:`mmdetnas.search.bn_recalibration.AUTO_KERNEL`),
            ``'reduction'`` or ``'torch'``.
        collective_timeout (float): seconds a rank may wait for the others
            in the search's own collectives (a generation proposed on rank
            0, the records of a candidate-parallel batch); they run on a
            gloo group of their own (:mod:`mmdetnas.utils.dist`), so ranks
            without a candidate in the last batch of a generation wait on
            the CPU, not in an NCCL kernel under NCCL's timeout. Default 6
            hours.

    Raises:
        ValueError: (on construction, checked in this order)
            ``population_size``, ``max_generations`` or ``top_k`` is not an
            int >= 1; ``num_mutation`` or ``num_crossover`` is not an int
            >= 0; ``num_mutation + num_crossover`` exceeds
            ``population_size``; ``mutate_prob`` is outside [0, 1];
            ``max_tries_factor`` is below 1 (see
            :func:`~mmdetnas.search.evolution.check_population_settings`);
            ``cost_key`` is neither
            ``'flops'`` nor ``'latency_ms'``; an unknown ``calib_scope``;
            ``parallel`` is neither
            ``'candidate'``, ``'data'`` nor ``None``; a malformed ``flops`` /
            ``params`` / ``latency`` range (not ``(min, max)``, or
            ``min > max``); or an invalid architecture in ``init_archs``
            (wrong length, unknown choice, index out of range, another
            search space).
        TypeError / FileNotFoundError: (on construction) an item of
            ``init_archs`` of another type, or a string naming neither an
            official architecture nor an existing file.
        RuntimeError: the model has no supernet backbone (on
            construction); from :meth:`run`: a ``PathSamplerHook`` is
            registered, no candidate of the first generation satisfies the
            constraints (the message names them and the range seen),
            ``score_key`` is not among the metrics of the first evaluation
            (an evaluator of unknown metric types), or (with
            ``resume``) the search state cannot be read or was written with
            another search space, ``score_key`` or ``seed``.
        ValueError: from :meth:`run`, before any candidate is scored and
            any file is written: ``score_key`` is not a metric the
            ``val_evaluator`` returns (evaluators of known metric types,
            see :mod:`mmdetnas.evaluation.metric_names`).
    """

    needs_supernet = True
    tag = 'search'

    def __init__(self,
                 runner,
                 dataloader,
                 max_generations: int = 20,
                 population_size: int = 50,
                 top_k: int = 10,
                 num_mutation: int = 20,
                 num_crossover: int = 20,
                 mutate_prob: float = 0.1,
                 max_tries_factor: int = 10,
                 flops: Optional[Sequence] = None,
                 params: Optional[Sequence] = None,
                 latency: Optional[Sequence] = None,
                 latency_shape: Sequence[int] = (800, 1333),
                 latency_table: Union[None, str, dict] = None,
                 score_key: str = 'coco/bbox_mAP',
                 multi_objective: bool = False,
                 cost_key: str = 'flops',
                 calibrate_bn: bool = True,
                 calib_iters: int = 500,
                 calib_batch_size: int = 8,
                 calib_scope: str = 'auto',
                 init_archs: Sequence = (),
                 seed: int = 0,
                 resume: bool = False,
                 retrain_config: Optional[str] = None,
                 parallel: Optional[str] = None,
                 calib_num_workers: Optional[int] = None,
                 calib_kernel: str = 'auto',
                 collective_timeout: float = DEFAULT_COLLECTIVE_TIMEOUT_S):
        super().__init__(
            runner, dataloader, population_size=population_size,
            max_generations=max_generations, top_k=top_k,
            num_mutation=num_mutation, num_crossover=num_crossover,
            max_tries_factor=max_tries_factor, mutate_prob=mutate_prob,
            score_key=score_key, seed=seed, resume=resume,
            collective_timeout=collective_timeout)
        resolve_kernel(calib_kernel, 'cpu')  # raises on an unknown name
        self.calib_kernel = calib_kernel
        self.calib_num_workers = calib_num_workers
        if parallel not in (None, 'candidate', 'data'):
            raise ValueError("parallel must be 'candidate', 'data' or None, "
                             f'got {parallel!r}')
        if parallel is None:
            parallel = 'candidate' if get_world_size() > 1 else 'data'
        self.parallel = parallel
        if cost_key not in ('flops', 'latency_ms'):
            raise ValueError(f"cost_key must be 'flops' or 'latency_ms', got "
                             f'{cost_key!r}')
        self.mutate_prob = mutate_prob
        self.latency_shape = tuple(latency_shape)
        self.calibrate_bn = calibrate_bn
        self.calib_iters = calib_iters
        self.calib_batch_size = calib_batch_size
        if calib_scope not in SCOPES:
            raise ValueError(f'calib_scope must be one of {SCOPES}, got '
                             f'{calib_scope!r}')
        self.calib_scope = calib_scope
        self.retrain_config = retrain_config

        self.backbones = find_searchable_backbones(runner.model)
        if not self.backbones:
            raise RuntimeError(
                'EvolutionSearchLoop needs a supernet backbone '
                '(mmdetnas.DetNASShuffleNetV2 with arch=None) in the model')
        space = self.backbones[0].search_space
        self.init_archs = [resolve_arch(a, space)[1] for a in init_archs]
        self.init_genomes = self.init_archs
        self.latency_table = self._load_latency_table(latency_table, space)
        self.constraints = ArchConstraints(
            space, flops=flops, params=params, latency=latency,
            latency_fn=self._latency_of)
        # a FLOPs / params range no path can meet is refused now, before
        # an earlier search in the work dir is moved aside
        self.constraints.check_reachable('train_cfg')
        self.want_latency = (latency is not None
                             or cost_key == 'latency_ms')
        # population, selection, state and plots: shared by every search
        # of the toolkit (mmdetnas.search.population)
        self.path_space = PathSpace(space, mutate_prob)
        self.make_population(self.path_space, 'arch', cost_key,
                             multi_objective)
        self.space = space

    @property
    def history(self) -> List[dict]:
        return self.population.history

    @property
    def supernet_checkpoint(self) -> Optional[str]:
        """The supernet checkpoint the search loaded (``load_from``)."""
        cfg = getattr(self.runner, 'cfg', None)
        return cfg.get('load_from') if cfg is not None else None

    @property
    def candidates_per_iter(self) -> int:
        """One candidate per rank in ``'candidate'`` mode, else one."""
        return 1 if self.parallel == 'data' else get_world_size()

    # ------------------------------------------------------------------ run
    def check_runner(self) -> None:
        """Refuse a registered :class:`PathSamplerHook`.

        Raises:
            RuntimeError: the runner has a ``PathSamplerHook`` (it would
                overwrite the candidate path before evaluation).
        """
        for hook in self.runner.hooks:
            if isinstance(hook, PathSamplerHook):
                raise RuntimeError(
                    'remove PathSamplerHook from custom_hooks of a search '
                    'config (custom_hooks = []): it would overwrite the '
                    'candidate path before evaluation')

    def before_search(self) -> None:
        """Record the supernet checkpoint's SHA-256 in the state's identity
        (scores of another supernet are not mixed into a resumed search)
        and refuse a misspelt ``score_key`` before anything is written."""
        ckpt = self.supernet_checkpoint
        self.population.identity['supernet_sha256'] = (
            file_sha256(ckpt) if ckpt and osp.isfile(ckpt) else None)
        if self.latency_table is not None:
            # latencies of another table are not mixed into a resumed search
            self.population.identity['latency_table'] = (
                self.latency_table.describe())
        self.check_score_key()

    def check_score_key(self) -> bool:
        """Refuse a ``score_key`` that the runner's ``val_evaluator`` will
        not return (:func:`mmdetnas.evaluation.check_score_key`), before
        any candidate is scored.

        Returns:
            bool: whether the key could be checked (``False``: an evaluator
            with a metric of an unknown type, or none; the key is then
            checked after the first evaluation).

        Raises:
            ValueError: the key is not among the evaluator's metric names;
                the message names it and the expected ones.
        """
        try:
            evaluator = self.runner.val_loop.evaluator
        except Exception:  # noqa: BLE001  no val loop: checked later
            return False
        return check_score_key(self.score_key, evaluator)

    def fits(self, arch: Arch) -> bool:
        return self.constraints.check(arch, self.want_latency)[0]

    def describe_constraints(self) -> str:
        return self.constraints.describe()

    def score_candidates(self, archs: List[Arch]) -> List[dict]:
        """Score ``archs`` as the search scores them, on every rank: in
        ``'data'`` mode one at a time by all ranks together
        (:meth:`evaluate_candidate`), in ``'candidate'`` mode
        ``world_size`` at a time, architecture ``j`` of a batch on rank
        ``j``, gathered in order. Nothing is recorded in the search state.

        Returns:
            list[dict]: one record per architecture (see
            :meth:`evaluate_candidate`), the same on every rank.
        """
        if self.parallel == 'data':
            return [self.evaluate_candidate(a) for a in archs]
        step, out = get_world_size(), []
        for b in range(0, len(archs), step):
            out.extend(self._score_batch(archs[b:b + step], len(out)))
        return out

    def iter_outputs(self, records: List[dict]) -> dict:
        out = super().iter_outputs(records)
        out['search_flops'] = float(records[-1]['flops'])
        return out

    # ----------------------------------------------------------- evaluation
    def _model(self):
        model = self.runner.model
        return model.module if is_model_wrapper(model) else model

    def _activate(self, arch: Arch) -> None:
        for m in self.backbones:
            m.set_arch(arch)

    def _load_latency_table(self, spec, space):
        """The :class:`mmdetnas.deploy.LatencyTable` of ``spec``, checked
        against the model's space and fixed parts, ``latency_shape`` and
        the backend / device the config asks for."""
        if spec is None:
            return None
        from mmdetnas.deploy import LatencyTable, parts_fingerprint
        if isinstance(spec, str):
            spec = dict(file=spec)
        if not isinstance(spec, dict) or 'file' not in spec or set(
                spec) - {'file', 'backend', 'device'}:
            raise ValueError(
                "latency_table must be 'TABLE.json' or dict(file=..., "
                f'backend=None, device=None), got {spec!r}')
        table = LatencyTable.load(spec['file'])
        model_cfg = getattr(getattr(self.runner, 'cfg', None), 'model',
                            None)
        parts = None
        if model_cfg is not None:
            try:
                parts = parts_fingerprint(model_cfg)
            except ValueError:
                parts = None
        table.check(space=space, shape=self.latency_shape,
                    backend=spec.get('backend'), device=spec.get('device'),
                    parts_sha=parts)
        return table

    @property
    def latency_backend(self) -> str:
        """How latency is obtained: ``'onnxruntime 1.32.0 (table)'`` or
        ``'torch 2.x (measured, eager)'``."""
        t = self.latency_table
        if t is not None:
            return (f"{t.built_for['backend']} "
                    f"{t.built_for.get('backend_version', '')} (table)")
        return f'torch {torch.__version__} (measured, eager)'

    @property
    def latency_device(self) -> str:
        """The device the latency is for (the table's, or this one)."""
        from mmdetnas.deploy import device_label
        if self.latency_table is not None:
            return self.latency_table.built_for['device']
        dev = next(self._model().parameters()).device.type
        return device_label('cuda' if dev == 'cuda' else 'cpu')

    def _latency_of(self, arch: Arch) -> float:
        if self.latency_table is not None:
            return self.latency_table.predict(arch)
        self._activate(arch)
        self._model().eval()
        return measure_latency(self._model(), self.latency_shape)

    def recalibrate_bn(self, arch: Arch) -> float:
        """BN recalibration of the active path ``arch`` with ``calib_iters``
        batches of ``calib_batch_size`` training images, the same on every
        rank and for every process count (seeded by ``seed`` and the
        architecture, as :class:`PathSamplerHook` seeds it). The images are
        loaded by ``calib_num_workers`` DataLoader workers; in ``'data'``
        mode with several processes each rank runs its share of the batches
        and the statistics are combined.

        Args:
            arch (tuple[str]): the active architecture.

        Returns:
            float: seconds spent.
        """
        world = get_world_size()
        shard = (get_rank(), world) if (self.parallel == 'data'
                                        and world > 1) else None
        return recalibrate_path_bn(
            self._model(), self.dataloader, arch, self.calib_iters,
            self.calib_batch_size, self.seed, self.calib_scope,
            num_workers=self.calib_num_workers, kernel=self.calib_kernel,
            shard=shard)

    def evaluate_locally(self) -> dict:
        """Score the active path on the whole search split on this rank
        alone: the ``val_dataloader``'s dataset in order (same batch size
        and collate function, no distributed sampler), the model's
        ``val_step`` and the metrics of the ``val_evaluator`` computed
        without collecting results from other ranks. No hook is called.

        Returns:
            dict: the evaluator's metrics (prefixed names).

        With several processes, a metric's ``outfile_prefix`` (result files
        written and read back, e.g. by ``CocoMetric``) gets ``.rank{r}``
        appended while it computes, so ranks never share a file.

        Raises:
            ValueError: two metrics of the evaluator give the same name.
        """
        val_loop = self.runner.val_loop
        dl = val_loop.dataloader
        loader = torch.utils.data.DataLoader(
            dl.dataset, batch_size=dataloader_batch_size(dl), shuffle=False,
            num_workers=dl.num_workers, collate_fn=dl.collate_fn)
        model = self._model()
        model.eval()
        evaluator = val_loop.evaluator
        with torch.no_grad():
            for batch in loader:
                evaluator.process(data_samples=model.val_step(batch),
                                  data_batch=batch)
        metrics: dict = {}
        world, rank = get_world_size(), get_rank()
        for metric in evaluator.metrics:
            results = _to_cpu(metric.results)
            metric.results.clear()
            # a result file the metric writes and reads back (e.g.
            # CocoMetric's outfile_prefix) gets the rank's own name: the
            # ranks score different candidates at the same time
            prefix = getattr(metric, 'outfile_prefix', None)
            if prefix and world > 1:
                metric.outfile_prefix = f'{prefix}.rank{rank}'
            try:
                out = metric.compute_metrics(results)
            finally:
                if prefix and world > 1:
                    metric.outfile_prefix = prefix
            if metric.prefix:
                out = {f'{metric.prefix}/{k}': v for k, v in out.items()}
            for k in out:
                if k in metrics:
                    raise ValueError(
                        f'two metrics of the evaluator give {k!r}; give '
                        'them different prefixes')
            metrics.update(out)
        return metrics

    def _score(self, arch: Arch) -> dict:
        """Activate ``arch``, recalibrate BN, evaluate (``runner.val_loop``
        on all ranks in ``'data'`` mode, :meth:`evaluate_locally` in
        ``'candidate'`` mode). Returns ``metrics``, ``calib_seconds`` and
        ``eval_seconds``."""
        self._activate(arch)
        calib_s = self.recalibrate_bn(arch) if self.calibrate_bn else 0.0
        t0 = time.time()
        if self.parallel == 'data':
            metrics = self.runner.val_loop.run()
        else:
            metrics = self.evaluate_locally()
        eval_s = time.time() - t0
        if self.score_key not in metrics:
            raise RuntimeError(
                f'score_key {self.score_key!r} is not among the evaluator '
                f'metrics {sorted(metrics)}')
        metrics = {
            k: float(v) if isinstance(v, (int, float, np.floating)) else v
            for k, v in metrics.items()
        }
        return dict(metrics=metrics, calib_seconds=round(calib_s, 3),
                    eval_seconds=round(eval_s, 3))

    def _make_record(self, arch: Arch, info: dict, scored: dict,
                     offset: int = 0) -> dict:
        """The record of ``arch``; ``offset``: its place after the records
        so far (the ``j``-th candidate of a candidate-parallel batch)."""
        metrics = scored['metrics']
        return dict(
            index=len(self.records) + offset, generation=self.generation,
            arch=list(arch), arch_indices=arch_to_indices(arch, self.space),
            flops=int(info['flops']), params=int(info['params']),
            latency_ms=info.get('latency_ms'),
            latency_backend=self.latency_backend if info.get(
                'latency_ms') is not None else None,
            latency_device=self.latency_device if info.get(
                'latency_ms') is not None else None,
            score=float(metrics[self.score_key]), metrics=metrics,
            calib_seconds=scored['calib_seconds'],
            eval_seconds=scored['eval_seconds'])

    def _score_batch(self, archs: List[Arch], offset: int = 0) -> List[dict]:
        """Score ``archs`` (at most ``world_size``), candidate ``j`` on rank
        ``j``, gather, and return the records in candidate order (indices
        from ``len(records) + offset``)."""
        world, rank = get_world_size(), get_rank()
        # constraint infos from rank 0 (its latency cache), before any path
        # is activated for scoring
        infos = broadcast_object(
            [self.constraints.check(a, self.want_latency)[1]
             for a in archs] if is_main_process() else None)
        mine = None
        if rank < len(archs):
            try:
                mine = self._score(archs[rank])
            except Exception as e:  # noqa: BLE001  re-raised below
                mine = dict(error=f'{type(e).__name__}: {e}',
                            exc=e if world == 1 else None)
        results = gather_objects(mine)
        for j, res in enumerate(results[:len(archs)]):
            if 'error' in res:
                if res.get('exc') is not None:
                    raise res['exc']
                raise RuntimeError(
                    f'rank {j} failed on candidate {list(archs[j])}: '
                    f"{res['error']}")
        return [
            self._make_record(arch, info, res, offset=offset + j)
            for j, (arch, info, res) in enumerate(zip(archs, infos, results))
        ]

    def evaluate_candidate(self, arch: Arch) -> dict:
        """Score one candidate on the search split; call it on all ranks.

        Checks the constraints (rank 0, broadcast; in ``'candidate'`` mode
        on this rank, and the call is this rank's alone), activates ``arch``
        in the supernet, recalibrates BN when ``calibrate_bn`` is set, then
        runs the runner's ``val_loop`` (``'data'`` mode) or
        :meth:`evaluate_locally` (``'candidate'`` mode).

        Args:
            arch (tuple[str]): a validated architecture of the search space.

        Returns:
            dict: the candidate record: ``arch``, ``arch_indices``,
            ``flops`` (MACs), ``params``, ``latency_ms`` (or None) with
            its ``latency_backend`` and ``latency_device``,
            ``score`` (the ``score_key`` metric), all ``metrics``,
            ``calib_seconds`` and ``eval_seconds``. It is not added to the
            search state.

        Raises:
            RuntimeError: ``score_key`` is not among the evaluator's metrics.
        """
        if self.parallel == 'data':
            info = broadcast_object(
                self.constraints.check(arch, self.want_latency)[1]
                if is_main_process() else None)
        else:
            info = self.constraints.check(arch, self.want_latency)[1]
        return self._make_record(arch, info, self._score(arch))

    # -------------------------------------------------------------- outputs
    def progress_line(self, record: dict) -> str:
        """Score, FLOPs (MACs), params, latency (ms), recalibration and
        evaluation seconds of one candidate."""
        lat = '' if record['latency_ms'] is None else \
            f", latency {record['latency_ms']:.2f} ms"
        return (f"{super().progress_line(record)}, flops "
                f"{record['flops'] / 1e6:.2f}M MACs, params "
                f"{record['params'] / 1e6:.3f}M{lat}, calib "
                f"{record['calib_seconds']:.1f}s eval "
                f"{record['eval_seconds']:.1f}s")

    def scalars(self, record: dict) -> dict:
        """Adds ``search/flops`` (MACs), ``search/params`` and
        ``search/latency_ms`` when measured."""
        out = super().scalars(record)
        out['search/flops'] = record['flops']
        out['search/params'] = record['params']
        if record['latency_ms'] is not None:
            out['search/latency_ms'] = record['latency_ms']
        return out

    def seconds_per_candidate(self) -> float:
        """Mean recalibration + evaluation seconds of the records."""
        return sum(r['calib_seconds'] + r['eval_seconds']
                   for r in self.records) / max(len(self.records), 1)

    def plot(self) -> None:
        """``search_curve.png`` (and ``pareto.png``: score against backbone
        FLOPs or latency)."""
        flops = self.cost_key == 'flops'
        self.population.plot(
            'backbone FLOPs (M MACs, 224x224)' if flops else
            f'latency (ms, {self.latency_backend}, {self.latency_device})',
            1e6 if flops else 1.0)

    def write_outputs(self) -> None:
        """``best_arch.yaml`` (the best score, with its FLOPs, params,
        latency and index as meta), ``topk.yaml``, ``pareto.yaml``
        (multi-objective), the plots, and the re-training commands in the
        log (rank 0)."""
        import yaml
        records = self.records
        if not records:
            return
        self.plot()
        best = topk_single(records, 1)[0]  # best score in both modes
        meta = {k: best.get(k) for k in (
            'score', 'flops', 'params', 'latency_ms', 'latency_backend',
            'latency_device', 'generation', 'index')}
        meta['score_key'] = self.score_key
        best_path = save_arch_file(
            osp.join(self.work_dir, 'best_arch.yaml'), tuple(best['arch']),
            self.space, meta=meta)
        with open(osp.join(self.work_dir, 'topk.yaml'), 'w') as f:
            yaml.safe_dump(
                dict(search_space=self.space.name, score_key=self.score_key,
                     topk=[_summary(r)
                           for r in topk_single(records, self.top_k)]),
                f, sort_keys=False)
        if self.multi_objective:
            with open(osp.join(self.work_dir, 'pareto.yaml'), 'w') as f:
                yaml.safe_dump(
                    dict(search_space=self.space.name,
                         objectives=[f'max {self.score_key}',
                                     f'min {self.cost_key}'],
                         front=[_summary(r) for r in self.front()]),
                    f, sort_keys=False)
        ckpt = self.supernet_checkpoint or 'SUPERNET_CKPT'
        sub = osp.join(self.work_dir, 'best_subnet.pth')
        cfg = self.retrain_config or 'configs/detnas/<subnet config>.py'
        self.log(
            f'[search] best {self.score_key}={best["score"]:.6f} with '
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
            f'model.backbone.init_cfg.checkpoint={sub}')


def _summary(r: dict) -> dict:
    keys = ('index', 'generation', 'score', 'flops', 'params', 'latency_ms',
            'latency_backend', 'latency_device', 'arch')
    return {k: r.get(k) for k in keys}
