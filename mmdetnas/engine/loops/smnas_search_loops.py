"""The SM-NAS searches as search loops (Yao et al., AAAI 2020, Sec. 3).

:class:`StructuralSearchLoop` (Sec. 3.1, the structural level): each
candidate is a combination of mmdet modules and an input size
(:class:`mmdetnas.spaces.StructuralSearchSpace`).
:class:`ModularSearchLoop` (Sec. 3, the modular level): each candidate is
the backbone code of one detector (:class:`mmdetnas.spaces.
ModularSearchSpace`), trained from scratch.

Both are loops of the one search loop family
(:class:`~mmdetnas.engine.loops.BaseSearchLoop`), configured by
``train_cfg`` plus the space entry (``structural_space`` /
``modular_space``) in a detector config, and run by ``tools/search.py
CONFIG`` inside an outer Runner that sets up the distributed environment,
the work dir, the logger and the visual backends
(:func:`mmdetnas.engine.build_search_runner`). A candidate is built as an
ordinary mmdet config (the search config without the search, with
``candidate_train_cfg`` as its ``train_cfg``: the short "fast" schedule),
trained in a Runner of its own, scored by the config's evaluator (CocoMetric,
VOCMetric; once, by the validation that ends the training) and timed on the
current device; the candidate's Runner is then released
(:func:`mmdetnas.utils.release_runner`). Selection keeps the two-objective
Pareto front (score up, latency down) of the shared
:class:`~mmdetnas.search.population.Population`.

Outputs in the work dir: ``candidates.jsonl``, ``search_state.pkl``,
``candidates/NNN/`` (each candidate's config, logs and checkpoints),
``front/*.py`` (a ready-to-run config per front member), ``pareto.yaml``,
``pareto.png``, ``search_curve.png`` and ``search.log``.
"""
import copy
import logging
import os
import os.path as osp
import shutil
import time
from typing import List, Optional, Sequence, Union

import torch
from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdetnas.engine.hooks.record_arch_hook import register_arch_hook
from mmdetnas.engine.loops.base_search_loop import BaseSearchLoop
from mmdetnas.evaluation.metric_names import check_score_key
from mmdetnas.registry import LOOPS
from mmdetnas.search.constraints import as_range
from mmdetnas.search.model_cost import measure_latency, model_flops
from mmdetnas.spaces.code_space import ModularSearchSpace
from mmdetnas.spaces.resnet_code import code_macs
from mmdetnas.spaces.structural_space import StructuralSearchSpace
from mmdetnas.utils.dist import broadcast_object
from mmdetnas.utils.runner_release import release_runner

#: keys of the search config that are not part of a candidate's config
SPACE_KEYS = ('structural_space', 'modular_space')
#: run-time keys not written into the front's configs
RUN_KEYS = ('work_dir', 'experiment_name', 'resume', 'load_from',
            'launcher')


@LOOPS.register_module()
class StructuralSearchLoop(BaseSearchLoop):
    """The SM-NAS structural search of one detector config (see the module
    docstring).

    The config is an mmdet detector config (the *base*: model, data,
    evaluator, optimizer and schedulers of the fast schedule) with

    * ``structural_space``: the components (see
      :class:`~mmdetnas.spaces.StructuralSearchSpace`);
    * ``train_cfg = dict(_delete_=True, type='mmdetnas.StructuralSearchLoop',
      candidate_train_cfg=dict(...), population_size=..., ...)``: this
      loop's arguments below.

    FLOPs and params are checked before training; latency is measured after
    training (the trained model's post-processing cost differs from an
    untrained one's), on rank 0 only, batch 1, at the candidate's input
    size padded to 32, with ``mode='predict'`` (NMS included), and a
    candidate outside the latency range is recorded with
    ``feasible=False`` and kept out of selection and the front.

    Args:
        runner: The outer Runner (:func:`mmdetnas.engine.
            build_search_runner`); ``runner.cfg`` is the search config.
        dataloader: Unused (each candidate builds its own).
        candidate_train_cfg (dict): The ``train_cfg`` of every candidate's
            training (e.g. ``dict(type='IterBasedTrainLoop', max_iters=..)``;
            its validation runs once, at the end).
        population_size, max_generations, top_k, num_mutation,
        num_crossover, max_tries_factor, seed: see
            :class:`~mmdetnas.search.population.Population`.
        score_key (str): The metric maximised (checked against the
            ``val_evaluator`` before anything trains).
        init (Sequence): Genomes of the first generation.
        flops (tuple, optional): ``(min, max)`` MACs of the whole detector
            at its input size (no post-processing).
        params (tuple, optional): ``(min, max)`` parameters.
        latency (tuple, optional): ``(min, max)`` ms.
        latency_warmup (int): Untimed runs before timing.
        latency_repeats (int): Timed runs (the median is kept).
        latency_backend (str | dict, optional): Also time each trained
            candidate's exportable part (backbone, neck, and the dense head
            of a one-stage detector: :class:`mmdetnas.deploy.
            DeployableModel`) on an inference backend, at the candidate's
            input size, batch 1: ``'onnxruntime'``, ``'openvino'``,
            ``'torch'``, or ``dict(type='onnxruntime', threads=1,
            warmup=5, repeats=1, rounds=100, device='auto')``. Recorded as
            ``deployed_latency_ms`` with ``deployed_backend`` and
            ``deployed_device``, next to ``latency_ms`` (the whole
            detector, post-processing included, PyTorch eager).
        latency_objective (str): The latency the Pareto front, selection
            and the ``latency`` range use: ``'torch'`` (``latency_ms``,
            default) or ``'deployed'`` (``deployed_latency_ms``; needs
            ``latency_backend``).
        resume (bool): Continue from ``work_dir/search_state.pkl``; the
            candidate in flight resumes from its last checkpoint.
        collective_timeout (float, optional): Seconds a rank may wait for
            rank 0 in the search's own collectives (default 6 hours; see
            :mod:`mmdetnas.utils.dist`).

    Raises:
        KeyError: the config has no :attr:`space_key` entry.
        ValueError: a bad population setting (named
            ``train_cfg.<name>``), a malformed space, range or init genome,
            a ``score_key`` the evaluator does not return, or a space
            naming an unregistered type.
        TypeError: ``candidate_train_cfg`` is not a dict.
    """

    #: config key of the search space
    space_key = 'structural_space'
    #: record field holding the genome (JSON form)
    genome_field = 'choices'
    tag = 'structural'
    builds_dataloader = False

    def __init__(self,
                 runner,
                 dataloader,
                 candidate_train_cfg: Optional[dict] = None,
                 population_size: int = 50,
                 max_generations: int = 20,
                 top_k: int = 10,
                 num_mutation: int = 20,
                 num_crossover: int = 20,
                 max_tries_factor: int = 10,
                 score_key: str = 'coco/bbox_mAP',
                 seed: int = 0,
                 init: Sequence = (),
                 flops: Optional[Sequence] = None,
                 params: Optional[Sequence] = None,
                 latency: Optional[Sequence] = None,
                 latency_warmup: int = 2,
                 latency_repeats: int = 5,
                 latency_backend: Union[None, str, dict] = None,
                 latency_objective: str = 'torch',
                 resume: bool = False,
                 collective_timeout: Optional[float] = None):
        super().__init__(
            runner, dataloader, population_size=population_size,
            max_generations=max_generations, top_k=top_k,
            num_mutation=num_mutation, num_crossover=num_crossover,
            max_tries_factor=max_tries_factor, score_key=score_key,
            seed=seed, resume=resume, collective_timeout=collective_timeout)
        cfg = runner.cfg
        if cfg.get(self.space_key) is None:
            raise KeyError(f'the config has no {self.space_key}; see '
                           'configs/smnas/ for examples')
        if not isinstance(candidate_train_cfg, dict):
            raise TypeError(
                f'train_cfg.candidate_train_cfg must be the train_cfg of '
                f'every candidate (a dict such as dict(type='
                f"'IterBasedTrainLoop', max_iters=100)), got "
                f'{candidate_train_cfg!r}')
        self.base = candidate_base_config(cfg, candidate_train_cfg)
        self.flops = as_range('flops', flops)
        self.params = as_range('params', params)
        self.latency = as_range('latency', latency)
        self.latency_warmup = latency_warmup
        self.latency_repeats = latency_repeats
        self.deploy_backend = self._build_deploy_backend(latency_backend)
        if latency_objective not in ('torch', 'deployed'):
            raise ValueError(f"train_cfg.latency_objective must be 'torch' or"
                             f" 'deployed', got {latency_objective!r}")
        if latency_objective == 'deployed' and self.deploy_backend is None:
            raise ValueError("train_cfg.latency_objective='deployed' needs "
                             "train_cfg.latency_backend (e.g. 'onnxruntime')")
        self.latency_objective = latency_objective
        self.latency_key = ('deployed_latency_ms'
                            if latency_objective == 'deployed'
                            else 'latency_ms')
        # the score key against the evaluator's metric names, before
        # anything trains
        self._check_score_key()
        space = self.build_space(cfg[self.space_key], self.base)
        self.init_genomes = [space.validate(g) for g in init]
        self.make_population(space, self.genome_field, self.latency_key,
                             True)
        self._cost_cache = {}
        self._log_handler = None
        # every choice builds and names registered types, checked before
        # anything trains (and before a resume proposes a candidate again)
        check = getattr(space, 'check_buildable', None)
        self.space_size = check(self.base) if check is not None else None

    def _check_score_key(self) -> None:
        """Refuse a ``score_key`` the config's ``val_evaluator`` will not
        return (known metric types; others, or an evaluator that cannot be
        built here, are checked after the first candidate)."""
        ev = self.base.get('val_evaluator')
        if ev is None:
            return
        try:
            from mmengine.evaluator import Evaluator
            evaluator = Evaluator(copy.deepcopy(
                ev.to_dict() if hasattr(ev, 'to_dict') else ev))
        except Exception:  # noqa: BLE001 (e.g. its data is elsewhere)
            return
        check_score_key(self.score_key, evaluator,
                        setting='train_cfg.score_key')

    @classmethod
    def build_space(cls, space_cfg, base: Config) -> StructuralSearchSpace:
        """The search space of the config's :attr:`space_key` entry
        (``base``: the candidates' base config)."""
        return StructuralSearchSpace.from_cfg(space_cfg)

    # ------------------------------------------------------------------ run
    def run(self):
        """The search (:meth:`BaseSearchLoop.run`); its log lines also go
        to ``work_dir/search.log``."""
        try:
            return super().run()
        finally:
            if self._log_handler is not None:
                self.runner.logger.removeHandler(self._log_handler)
                self._log_handler.close()
                self._log_handler = None

    def after_start(self) -> None:
        """Open ``search.log`` (continued by a resumed search; an earlier
        search's was moved aside) and warn when the population is larger
        than the space."""
        if is_main_process():
            logger = self.runner.logger
            handler = logging.FileHandler(
                osp.join(self.work_dir, 'search.log'),
                mode='a' if self.resume else 'w')
            like = next((h for h in logger.handlers
                         if isinstance(h, logging.FileHandler)), None)
            handler.setFormatter(like.formatter if like else None)
            handler.setLevel(like.level if like else logging.INFO)
            logger.addHandler(handler)
            self._log_handler = handler
        if self.space_size is not None and \
                self.population_size > self.space_size:
            self.log(
                f'population_size={self.population_size} is larger than the '
                f'search space ({self.space_size} structures): the search '
                'stops once every structure is trained', logging.WARNING)

    def after_load(self) -> None:
        """Point the records' ``config`` at this work dir's candidate
        folders: a search moved aside by a new one and resumed in its new
        place recorded the old paths, where the new search now writes its
        own candidates."""
        for r in self.records:
            moved = osp.join(self._candidate_dir(r['index']),
                             osp.basename(r['config']))
            if osp.isfile(moved):  # this search's own copy, always
                r['config'] = moved

    def why_no_candidate(self) -> str:
        if self.space_size is not None and \
                len(self.population.visited) >= self.space_size:
            return (f'all {self.space_size} structures of the search space '
                    'have been trained')
        return 'no new candidate fits the constraints'

    def describe_constraints(self) -> str:
        parts = [f'{name} in [{rng[0]}, {rng[1]}]{unit}'
                 for name, rng, unit in (('flops', self.flops, ' MACs'),
                                         ('params', self.params, ''),
                                         ('latency', self.latency, ' ms'))
                 if rng is not None]
        return ', '.join(parts) or 'no constraints'

    def _candidate_dir(self, index: int) -> str:
        return osp.join(self.work_dir, 'candidates', f'{index:03d}')

    def propose(self) -> list:
        cands = super().propose()
        if cands:
            self.log(f'[{self.tag}] ' + ', '.join(map(self.space.label,
                                                     cands)))
        return cands

    # ---------------------------------------------------------- constraints
    def _shape(self, genome) -> tuple:
        """``(H, W)`` latency/FLOPs input: the chosen scale (or the test
        pipeline's), padded up to a multiple of 32."""
        scale = self.space.scale(genome) or _test_scale(self.base) or \
            (1333, 800)
        w, h = scale
        return (int(-(-h // 32) * 32), int(-(-w // 32) * 32))

    def cost(self, genome) -> dict:
        """FLOPs (MACs, whole detector at the input size, no
        post-processing) and params of a structure, from its built,
        untrained model (cached)."""
        key = self.space.key(genome)
        if key not in self._cost_cache:
            from mmdet.registry import MODELS
            cfg = self.space.build_config(self.base, genome)
            model = MODELS.build(cfg.model).eval()
            params = sum(p.numel() for p in model.parameters())
            try:
                flops = int(model_flops(model, self._shape(genome)))
            except Exception as e:  # noqa: BLE001
                self.log(f'FLOPs of {self.space.label(genome)} not '
                         f'counted: {type(e).__name__}: {e}')
                flops = None
            self._cost_cache[key] = dict(flops=flops, params=params)
        return self._cost_cache[key]

    def fits(self, genome) -> bool:
        if self.flops is None and self.params is None:
            return True
        c = self.cost(genome)
        return _inside(c['flops'], self.flops) and _inside(
            c['params'], self.params)

    # ----------------------------------------------------------- scoring
    def score_candidates(self, genomes: List) -> List[dict]:
        """Train, score and time each genome in turn (:meth:`evaluate`),
        all ranks together."""
        return [self.evaluate(g) for g in genomes]

    def candidate_config(self, genome, index: int) -> Config:
        """The candidate's config with its run-time settings (work dir,
        experiment name, resume from its own last checkpoint when the
        search resumes (a new search trains every candidate anew), and
        ``randomness.seed`` = the search seed unless the config sets one)."""
        cfg = self.space.build_config(self.base, genome)
        cfg.work_dir = self._candidate_dir(index)
        cfg.experiment_name = f'cand{index:03d}_{time.time_ns()}'
        # a resumed search resumes the candidate in flight from its own
        # last checkpoint (found in this folder also when the search was
        # moved aside and resumed there)
        ckpt = None
        last = osp.join(cfg.work_dir, 'last_checkpoint')
        if self.resume and osp.isfile(last):
            with open(last) as f:
                ckpt = f.read().strip()
            if not osp.isfile(ckpt):
                ckpt = osp.join(cfg.work_dir, osp.basename(ckpt))
            if not osp.isfile(ckpt):
                ckpt = None
        cfg.resume = ckpt is not None
        cfg.load_from = ckpt
        vis = cfg.get('visualizer')
        if isinstance(vis, dict):
            # a visualizer of its own: mmdet's fixed name='visualizer'
            # would reuse another Runner's instance (and its vis_data)
            vis['name'] = cfg.experiment_name
        randomness = dict(cfg.get('randomness') or {})
        if randomness.get('seed') is None:
            # every candidate sees the same initialisation stream and data
            # order: differences come from the structure, not the draw
            randomness['seed'] = self.seed
            cfg.randomness = randomness
        return cfg

    def evaluate(self, genome) -> dict:
        """Train, score and time one structure; call it on every rank.

        Returns:
            dict: the record: ``index``, ``generation``, ``choices`` (the
            structure; ``code`` in the modular search),
            ``name``, ``config`` (path of its config), ``score``,
            ``metrics``, ``latency_ms``, ``flops`` (MACs), ``params``,
            ``train_seconds``, ``feasible``.

        Raises:
            RuntimeError: ``score_key`` is not among the metrics.
        """
        from mmengine.runner import Runner
        index = len(self.records)
        cfg = self.candidate_config(genome, index)
        cost = broadcast_object(self.cost(genome) if is_main_process()
                                else None)
        if is_main_process():
            os.makedirs(cfg.work_dir, exist_ok=True)
            clean = copy.deepcopy(cfg)
            for k in RUN_KEYS:
                clean.pop(k, None)
            clean.dump(osp.join(cfg.work_dir, 'config.py'))
        t0 = time.time()
        # the run validates once, at the end of training; the dumped
        # config.py keeps the user's val_interval
        # its checkpoints record an SM-NAS backbone's code (RecordArchHook)
        runner = register_arch_hook(
            Runner.from_cfg(validate_at_end_only(cfg)))
        try:
            metrics = self._train_and_score(runner)
            train_s = time.time() - t0
            latency = self._measure_latency(runner, genome)
            deployed = self._measure_deployed(runner, genome)
        finally:
            # the candidate's logger (its open log file), message hub,
            # visualizer, default scope, model, optimizer, loaders and
            # cached CUDA memory: nothing of it outlives the candidate
            release_runner(runner)
            del runner
        metrics = {k: float(v) if isinstance(v, (int, float)) else v
                   for k, v in metrics.items()}
        return dict(
            index=index, generation=self.generation,
            **{self.genome_field: self.space.to_json(genome)},
            name=self.space.label(genome),
            config=osp.join(cfg.work_dir, 'config.py'),
            score=float(metrics[self.score_key]), metrics=metrics,
            latency_ms=float(latency),
            latency_backend=f'torch {torch.__version__} (eager, '
            'post-processing included)',
            **(deployed or {}),
            flops=cost['flops'],
            params=int(cost['params']), train_seconds=round(train_s, 1),
            input_shape=list(self._shape(genome)),
            device=_device_name(),
            feasible=_inside(
                latency if deployed is None else
                deployed[self.latency_key] if self.latency_key in deployed
                else latency, self.latency))

    def _train_and_score(self, runner) -> dict:
        """Train the candidate's Runner; the metrics of its one evaluation.

        The run validates at the end of training only (see
        :func:`validate_at_end_only`) and :class:`LastValidation` keeps that
        validation's metrics; ``runner.val()`` runs only when training ran
        no validation at its end (a resumed candidate whose checkpoint is
        already at the end trains nothing; a train loop of another kind; a
        hook that stopped training early), so each path evaluates once.

        Raises:
            RuntimeError: ``score_key`` is not among the metrics.
        """
        last_val = LastValidation()
        runner.register_hook(last_val)
        runner.train()
        metrics = last_val.metrics_at(runner.train_loop.iter)
        if metrics is None:
            metrics = runner.val()
        if self.score_key not in metrics:
            raise RuntimeError(f'score_key {self.score_key!r} is not among '
                               f'the evaluator metrics {sorted(metrics)}')
        return metrics

    def _measure_latency(self, runner, genome) -> float:
        """The trained model's latency (ms), measured on rank 0 and
        broadcast."""
        latency = None
        if is_main_process():
            model = runner.model.module if is_model_wrapper(runner.model) \
                else runner.model
            model.eval()
            latency = measure_latency(
                model, self._shape(genome), self.latency_warmup,
                self.latency_repeats, mode='predict')
        return broadcast_object(latency)

    @staticmethod
    def _build_deploy_backend(spec):
        if spec is None:
            return None
        from mmdetnas.deploy import build_backend
        if isinstance(spec, str):
            spec = dict(type=spec)
        if not isinstance(spec, dict) or 'type' not in spec:
            raise ValueError(
                "train_cfg.latency_backend must be a backend name "
                "('onnxruntime', 'openvino', 'torch') or dict(type=..., "
                f'threads=.., repeats=.., ...), got {spec!r}')
        spec = dict(spec)
        return build_backend(spec.pop('type'), **spec)

    def _measure_deployed(self, runner, genome) -> Optional[dict]:
        """The trained model's exportable part timed on
        ``latency_backend`` (rank 0, broadcast): ``deployed_latency_ms``,
        ``deployed_backend``, ``deployed_device``, ``deployed_parts``;
        ``None`` without a ``latency_backend``."""
        if self.deploy_backend is None:
            return None
        out = None
        if is_main_process():
            from mmdetnas.deploy import DeployableModel, deployable_input
            model = runner.model.module if is_model_wrapper(runner.model) \
                else runner.model
            deploy = DeployableModel(copy.deepcopy(model).cpu().eval())
            b = self.deploy_backend
            t = b.time(deploy, deployable_input(self._shape(genome)))
            out = dict(deployed_latency_ms=t.median_ms,
                       deployed_backend=f'{t.backend} {t.backend_version}',
                       deployed_device=t.device,
                       deployed_parts=deploy.parts)
        return broadcast_object(out)

    # -------------------------------------------------------------- outputs
    def progress_line(self, record: dict) -> str:
        return (f"[{self.tag}] gen {record['generation'] + 1}/"
                f"{self.max_generations} cand {record['index']} "
                f"{record['name']}: {self.score_key}="
                f"{record['score']:.4f}, latency "
                f"{record['latency_ms']:.1f} ms"
                + (f" ({record['deployed_latency_ms']:.1f} ms on "
                   f"{record['deployed_backend']})"
                   if record.get('deployed_latency_ms') is not None else '')
                + ", "
                f"{(record['flops'] or 0) / 1e9:.2f} GMACs, "
                f"{record['params'] / 1e6:.2f}M params, train "
                f"{record['train_seconds']:.0f} s")

    def scalars(self, record: dict) -> dict:
        """Adds ``search/latency_ms``, ``search/flops`` (MACs, when
        counted), ``search/params`` and ``search/train_seconds``."""
        out = super().scalars(record)
        out['search/latency_ms'] = record['latency_ms']
        if record.get('deployed_latency_ms') is not None:
            out['search/deployed_latency_ms'] = record['deployed_latency_ms']
        if record.get('flops') is not None:
            out['search/flops'] = record['flops']
        out['search/params'] = record['params']
        out['search/train_seconds'] = record['train_seconds']
        return out

    def seconds_per_candidate(self) -> float:
        """Mean training seconds of the records."""
        return sum(r['train_seconds'] for r in self.records) / max(
            len(self.records), 1)

    def plot(self) -> None:
        if self.latency_key == 'deployed_latency_ms':
            b = self.deploy_backend
            label = (f'deployed latency (ms, batch 1, {b.name} '
                     f'{b.version}, {b.device_name})')
        else:
            label = ('latency (ms, batch 1, torch eager, '
                     + _device_name() + ')')
        self.population.plot(label, label_fn=lambda r: r['name'])

    def write_outputs(self) -> None:
        """``front/*.py`` (the candidate's own config per front member),
        ``pareto.yaml``, the plots and the front in the log (rank 0)."""
        import yaml
        self.plot()
        fdir = osp.join(self.work_dir, 'front')
        os.makedirs(fdir, exist_ok=True)
        for old in os.listdir(fdir):
            if old.endswith('.py'):
                os.remove(osp.join(fdir, old))
        entries = []
        for r in self.front():
            path = osp.join(fdir, f"{r['index']:03d}_"
                            f"{r['name'].replace('+', '_')}.py")
            # the candidate's own config.py, as it was written (a copy:
            # re-dumping reformats every config of the front with yapf,
            # about 1 s each)
            shutil.copyfile(r['config'], path)
            entries.append(dict(
                index=r['index'], name=r['name'], config=path,
                score=r['score'], latency_ms=r['latency_ms'],
                **{k: r[k] for k in ('deployed_latency_ms',
                                     'deployed_backend', 'deployed_device')
                   if r.get(k) is not None},
                flops=r['flops'], params=r['params'],
                **{self.genome_field: r[self.genome_field]}))
        with open(osp.join(self.work_dir, 'pareto.yaml'), 'w') as f:
            yaml.safe_dump(dict(
                objectives=[f'max {self.score_key}',
                            f'min {self.latency_key}'],
                device=_device_name(), front=entries), f, sort_keys=False)
        lines = [f"  {e['name']}: {self.score_key}={e['score']:.4f}, "
                 f"{e[self.latency_key]:.1f} ms -> {e['config']}"
                 for e in entries]
        self.log(f'[{self.tag}] Pareto front (score up, latency down):\n'
                 + '\n'.join(lines) + '\ntrain one with: python '
                 'tools/train.py front/<name>.py')


def candidate_base_config(cfg: Config, candidate_train_cfg: dict) -> Config:
    """The base config of an SM-NAS search's candidates: the search config
    without its space entries, with ``candidate_train_cfg`` as its
    ``train_cfg`` (a copy; ``cfg`` is not changed)."""
    base = copy.deepcopy(cfg._cfg_dict.to_dict())
    for k in SPACE_KEYS:
        base.pop(k, None)
    base['train_cfg'] = copy.deepcopy(dict(candidate_train_cfg))
    return Config(base, filename=cfg.filename)


def validate_at_end_only(cfg: Config) -> Config:
    """A copy of ``cfg`` whose train loop validates only once, at the end.

    mmengine's ``IterBasedTrainLoop`` and ``EpochBasedTrainLoop`` validate
    every ``val_interval`` iterations/epochs *and* at the last one, whatever
    the interval: the copy's ``train_cfg.val_interval`` is ``max_iters``
    (``max_epochs``) and its ``dynamic_intervals`` are gone, so the one
    validation left is the final one. A train loop of another kind (or
    without ``max_iters``/``max_epochs``) is left as it is.
    """
    from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
    cfg = copy.deepcopy(cfg)
    train_cfg = cfg.get('train_cfg')
    if not isinstance(train_cfg, dict):
        return cfg
    loop = train_cfg.get('type')
    if loop is None:  # Runner.build_train_loop's by_epoch shorthand
        loop = EpochBasedTrainLoop if train_cfg.get('by_epoch') \
            else IterBasedTrainLoop
    elif isinstance(loop, str):
        from mmdetnas.registry import LOOPS  # child of mmdet's, mmengine's
        loop = LOOPS.get(loop)
    if not isinstance(loop, type):
        return cfg
    if issubclass(loop, IterBasedTrainLoop):
        end = train_cfg.get('max_iters')
    elif issubclass(loop, EpochBasedTrainLoop):
        end = train_cfg.get('max_epochs')
    else:
        return cfg
    if end:
        train_cfg['val_interval'] = end
        train_cfg.pop('dynamic_intervals', None)
    return cfg


class LastValidation(Hook):
    """Keeps the metrics of the Runner's latest validation and the train
    iteration it ran at (``after_val_epoch`` receives the dict the val
    loop's evaluator returned, the one ``runner.val()`` would return)."""
    priority = 'LOWEST'

    def __init__(self):
        self.metrics = None
        self.iter = None

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics = dict(metrics or {})
        self.iter = runner.train_loop.iter

    def metrics_at(self, iteration: int) -> Optional[dict]:
        """The latest validation's metrics if it ran at train iteration
        ``iteration`` (the model was not trained further after it), else
        None."""
        return self.metrics if self.iter == iteration else None


def _inside(value, rng: Optional[Sequence]) -> bool:
    if rng is None:
        return True
    if value is None:
        return False
    lo, hi = rng
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def _test_scale(cfg: Config):
    loader = cfg.get('test_dataloader') or cfg.get('val_dataloader')
    try:
        for t in loader.dataset.pipeline:
            if 'Resize' in t.get('type', '') and 'scale' in t:
                return tuple(t['scale'])
    except (AttributeError, TypeError):
        pass
    return None


def _device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    import platform
    return f'CPU {platform.machine()} x{torch.get_num_threads()} threads'


@LOOPS.register_module()
class ModularSearchLoop(StructuralSearchLoop):
    """The SM-NAS modular-level search (Yao et al., AAAI 2020, Sec. 3):
    evolve the backbone code of one detector, every candidate trained from
    scratch, on the mAP/latency Pareto front.

    The same loop as :class:`StructuralSearchLoop` (one Runner per
    candidate, FLOPs/params checked before training, latency after it on
    rank 0, resume, DDP under a launcher, the same outputs, the same
    arguments with ``init`` a list of code strings, e.g. the plain
    ResNet's); only the genome differs: a backbone code
    (:class:`mmdetnas.spaces.ModularSearchSpace`) instead of a combination
    of modules. The config is the detector to search the backbone of
    (usually the structural stage's chosen one with the from-scratch
    recipe, see ``configs/smnas/smnas_modular_*``) plus
    ``modular_space``: ``dict(depth, min_blocks, max_blocks,
    base_channels, num_widenings, flops_ratio, input_size, num_ops,
    base_prob, backbone)``; ``input_size`` defaults to the test pipeline's
    resize scale.

    Records hold ``code`` instead of ``choices`` and also
    ``backbone_flops`` (MACs of the backbone's convs at the input shape,
    :func:`~mmdetnas.spaces.resnet_code.code_macs`).

    Raises:
        KeyError: the config has no ``modular_space``.
        ValueError: a malformed space, option or init code.
    """
    space_key = 'modular_space'
    genome_field = 'code'
    tag = 'modular'

    @classmethod
    def build_space(cls, space_cfg, base: Config) -> ModularSearchSpace:
        """The ``modular_space`` of the config; its ``input_size``
        defaults to the test pipeline's resize scale of ``base``."""
        space_cfg = dict(space_cfg)
        if space_cfg.get('input_size') is None:
            w, h = _test_scale(base) or (1333, 800)
            space_cfg['input_size'] = (h, w)
        return ModularSearchSpace.from_cfg(space_cfg)

    def evaluate(self, genome) -> dict:
        record = super().evaluate(genome)
        record['backbone_flops'] = int(
            code_macs(genome, tuple(record['input_shape'])))
        return record
