"""SM-NAS structural-level search (Yao et al., AAAI 2020, Sec. 3.1).

Each candidate is a combination of mmdet modules and an input size
(:class:`mmdetnas.spaces.StructuralSearchSpace`), built as an ordinary mmdet
config, trained with the config's short ("fast") schedule through
mmengine's ``Runner``, scored by the config's evaluator (CocoMetric,
VOCMetric; once, by the validation that ends the training) and timed on the
current device; the candidate's Runner is then released
(:func:`mmdetnas.utils.release_runner`). Selection keeps the
two-objective Pareto front (score up, latency down) with the NSGA-II
machinery of :class:`mmdetnas.search.engine.SearchEngine`, the engine every
search of the toolkit shares.

Outputs in the work dir: ``candidates.jsonl``, ``search_state.pkl``,
``candidates/NNN/`` (each candidate's config, logs and checkpoints),
``front/*.py`` (a ready-to-run config per front member), ``pareto.yaml``,
``pareto.png``, ``search_curve.png`` and ``search.log``.
"""
import copy
import os
import os.path as osp
import shutil
import time
from typing import List, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper

from mmdetnas.search.constraints import as_range
from mmdetnas.search.engine import SearchEngine
from mmdetnas.search.model_cost import measure_latency, model_flops
from mmdetnas.spaces.code_space import ModularSearchSpace
from mmdetnas.spaces.resnet_code import code_macs
from mmdetnas.engine.hooks.record_arch_hook import register_arch_hook
from mmdetnas.evaluation.metric_names import check_score_key
from mmdetnas.search.evolution import check_population_settings
from mmdetnas.spaces.structural_space import StructuralSearchSpace
from mmdetnas.utils.dist import broadcast_object, set_collective_timeout
from mmdetnas.utils.runner_release import release_runner

#: keys of the search config that are not part of a candidate's config
SEARCH_KEYS = ('structural_search', 'structural_space', 'modular_search',
               'modular_space')
#: options of the search config read by the driver (the rest go to the
#: engine)
OWN_KEYS = ('score_key', 'flops', 'params', 'latency', 'latency_warmup',
            'collective_timeout',
            'latency_repeats', 'init', 'seed')
#: run-time keys not written into the front's configs
RUN_KEYS = ('work_dir', 'experiment_name', 'resume', 'load_from',
            'launcher')


class StructuralSearch:
    """The structural search of one config (see the module docstring).

    The config is an mmdet detector config (the *base*: model, data,
    evaluator, the fast schedule) with two more entries:

    * ``structural_space``: the components (see
      :class:`~mmdetnas.spaces.StructuralSearchSpace`);
    * ``structural_search``: ``dict(population_size, max_generations,
      top_k, num_mutation, num_crossover, max_tries_factor, score_key,
      seed, init=[genomes], flops=(min, max) MACs of the whole detector at
      its input size, params=(min, max), latency=(min, max) ms,
      latency_warmup, latency_repeats, collective_timeout)``
      (``collective_timeout``: seconds a rank may wait for rank 0 in the
      search's own collectives, default 6 hours; see
      :mod:`mmdetnas.utils.dist`).

    FLOPs and params are checked before training; latency is measured after
    training (the trained model's post-processing cost differs from an
    untrained one's), on rank 0 only, batch 1, at the candidate's input
    size padded to 32, with ``mode='predict'`` (NMS included), and a
    candidate outside the latency range is recorded with
    ``feasible=False`` and kept out of selection and the front.

    Args:
        cfg (Config): the search config, with ``work_dir`` set.
        resume (bool): Continue from ``work_dir/search_state.pkl``; the
            candidate in flight resumes from its last checkpoint.

    Raises:
        KeyError: the config has no ``structural_space``.
        ValueError: a malformed space, range or init genome.
    """

    #: config key of the search space
    space_key = 'structural_space'
    #: config key of the search options
    options_key = 'structural_search'
    #: record field holding the genome (JSON form)
    genome_field = 'choices'
    #: tag of the log lines
    tag = 'structural'

    def __init__(self, cfg: Config, resume: bool = False):
        if cfg.get(self.space_key) is None:
            raise KeyError(f'the config has no {self.space_key}; see '
                           'configs/smnas/ for examples')
        self.cfg = cfg
        self.resume = resume
        opts = dict(cfg.get(self.options_key) or {})
        base = copy.deepcopy(cfg._cfg_dict.to_dict())
        for k in SEARCH_KEYS:
            base.pop(k, None)
        self.base = Config(base, filename=cfg.filename)
        self.space = self.build_space(cfg[self.space_key])
        self.work_dir = cfg.work_dir
        self.score_key = opts.pop('score_key', 'coco/bbox_mAP')
        self.flops = as_range('flops', opts.pop('flops', None))
        self.params = as_range('params', opts.pop('params', None))
        self.latency = as_range('latency', opts.pop('latency', None))
        self.latency_warmup = opts.pop('latency_warmup', 2)
        self.latency_repeats = opts.pop('latency_repeats', 5)
        # seconds a rank may wait in the search's own collectives (rank 0
        # proposing a generation, counting FLOPs, timing a candidate): a
        # gloo group of their own, see mmdetnas.utils.dist
        set_collective_timeout(opts.pop('collective_timeout', None))
        init = [self.space.validate(g) for g in opts.pop('init', ())]
        self.init = init
        seed = opts.pop('seed', 0)
        engine_keys = ('population_size', 'max_generations', 'top_k',
                       'num_mutation', 'num_crossover', 'max_tries_factor')
        unknown = set(opts) - set(engine_keys)
        if unknown:
            raise ValueError(f'unknown {self.options_key} option(s) '
                             f'{sorted(unknown)}; expected some of '
                             f'{sorted(engine_keys + OWN_KEYS)}')
        # each setting on its own first, so the message blames the right
        # one; then the score key against the evaluator's metric names,
        # before anything trains
        import inspect
        defaults = {k: v.default for k, v in inspect.signature(
            SearchEngine.__init__).parameters.items() if k in engine_keys}
        defaults.update({k: opts[k] for k in engine_keys if k in opts})
        check_population_settings(setting=self.options_key, **defaults)
        self._check_score_key()
        self.engine = SearchEngine(
            self.work_dir, self.space, self.genome_field,
            score_key=self.score_key, cost_key='latency_ms',
            multi_objective=True, seed=seed,
            **{k: opts[k] for k in engine_keys if k in opts})
        self._cost_cache = {}
        self.logger = None
        # every choice builds and names registered types, checked before
        # anything trains (and before a resume proposes a candidate again)
        check = getattr(self.space, 'check_buildable', None)
        self.space_size = check(self.base) if check is not None else None

    def _check_score_key(self) -> None:
        """Refuse a ``score_key`` the config's ``val_evaluator`` will not
        return (known metric types; others, or an evaluator that cannot be
        built here, are checked after the first candidate as before)."""
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
                        setting=f'{self.options_key}.score_key')

    def build_space(self, space_cfg) -> StructuralSearchSpace:
        """The search space of the config's :attr:`space_key` entry."""
        return StructuralSearchSpace.from_cfg(space_cfg)

    # ------------------------------------------------------------------ run
    def run(self) -> List[dict]:
        """Run the search on every rank; returns the Pareto front."""
        os.makedirs(self.work_dir, exist_ok=True)
        eng = self.engine
        # an earlier search's files (search.log included) move aside
        # before this search opens its log
        warning = None if self.resume else eng.start_new(is_main_process())
        self.logger = MMLogger.get_instance(
            f'structural_search_{time.time_ns()}', logger_name='mmdetnas',
            log_file=osp.join(self.work_dir, 'search.log'),
            # a resumed search continues the log of the killed one
            file_mode='a' if self.resume else 'w')
        if self.resume:
            state = broadcast_object(
                eng.read_state() if is_main_process() else None)
            if state is None:
                self._log('--resume: no search state, starting a new search')
            else:
                eng.load(state, is_main_process())
                self._rebase_records()
                self._log(f'resumed at generation {eng.generation + 1} with '
                          f'{len(eng.records)} trained candidates')
        elif warning:
            self.logger.warning(warning)
        if self.space_size is not None and \
                eng.population_size > self.space_size:
            self.logger.warning(
                f'population_size={eng.population_size} is larger than the '
                f'search space ({self.space_size} structures): the search '
                'stops once every structure is trained')
        start, n_start = time.time(), len(eng.records)
        while eng.generation < eng.max_generations:
            if eng.pending is None:
                eng.pending = broadcast_object(
                    self._propose() if is_main_process() else None)
                if is_main_process():
                    eng.save()
            if not eng.pending:
                # also a resumed search that had stopped early: its saved
                # empty generation is not closed and proposed again
                self._log(f'generation {eng.generation + 1}: '
                          f'{self._why_no_candidate()}; stopping')
                break
            for genome in eng.pending[eng.done_in_generation():]:
                record = self.evaluate(genome)
                eng.add_record(record, is_main_process())
                done = len(eng.records) - n_start
                self._log(
                    f"[{self.tag}] gen {eng.generation + 1}/"
                    f"{eng.max_generations} cand {record['index']} "
                    f"{record['name']}: {self.score_key}="
                    f"{record['score']:.4f}, latency "
                    f"{record['latency_ms']:.1f} ms, "
                    f"{record['flops'] / 1e9:.2f} GMACs, "
                    f"{record['params'] / 1e6:.2f}M params, train "
                    f"{record['train_seconds']:.0f} s, eta "
                    f"{eng.eta((time.time() - start) / max(done, 1))}")
            entry = eng.end_generation()
            if is_main_process():
                eng.save()
                self._plot()
            self._log(f"generation {entry['generation'] + 1} done: best "
                      f"{entry['best']:.4f}, {entry['evaluated']} trained")
        front = eng.front()
        if is_main_process():
            self._write_outputs(front)
        return front

    def _why_no_candidate(self) -> str:
        if self.space_size is not None and \
                len(self.engine.visited) >= self.space_size:
            return (f'all {self.space_size} structures of the search space '
                    'have been trained')
        return 'no new candidate fits the constraints'

    def _candidate_dir(self, index: int) -> str:
        return osp.join(self.work_dir, 'candidates', f'{index:03d}')

    def _rebase_records(self) -> None:
        """Point the records' ``config`` at this work dir's candidate
        folders: a search moved aside by a new one and resumed in its new
        place recorded the old paths, where the new search now writes its
        own candidates."""
        for r in self.engine.records:
            moved = osp.join(self._candidate_dir(r['index']),
                             osp.basename(r['config']))
            if osp.isfile(moved):  # this search's own copy, always
                r['config'] = moved

    def _log(self, msg: str) -> None:
        if is_main_process():
            self.logger.info(msg)

    # ------------------------------------------------------------- proposal
    def _propose(self) -> list:
        eng = self.engine
        cands = eng.propose(self._fits, self.init)
        self._log(f'generation {eng.generation + 1}: {len(cands)} new '
                  'candidates: ' + ', '.join(map(self.space.label, cands)))
        if not cands and not eng.records:
            raise RuntimeError(
                f'no {self.tag} candidate satisfies the constraints (flops '
                f'{self.flops}, params {self.params}) after '
                f'{eng.max_tries_factor * eng.population_size} tries')
        return cands

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
                self._log(f'FLOPs of {self.space.label(genome)} not '
                          f'counted: {type(e).__name__}: {e}')
                flops = None
            self._cost_cache[key] = dict(flops=flops, params=params)
        return self._cost_cache[key]

    def _fits(self, genome) -> bool:
        if self.flops is None and self.params is None:
            return True
        c = self.cost(genome)
        return _inside(c['flops'], self.flops) and _inside(
            c['params'], self.params)

    # ----------------------------------------------------------- evaluation
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
        randomness = dict(cfg.get('randomness') or {})
        if randomness.get('seed') is None:
            # every candidate sees the same initialisation stream and data
            # order: differences come from the structure, not the draw
            randomness['seed'] = self.engine.seed
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
        eng = self.engine
        index = len(eng.records)
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
        finally:
            # the candidate's logger (its open log file), message hub,
            # visualizer, default scope, model, optimizer, loaders and
            # cached CUDA memory: nothing of it outlives the candidate
            release_runner(runner)
            del runner
        metrics = {k: float(v) if isinstance(v, (int, float)) else v
                   for k, v in metrics.items()}
        return dict(
            index=index, generation=eng.generation,
            **{self.genome_field: self.space.to_json(genome)},
            name=self.space.label(genome),
            config=osp.join(cfg.work_dir, 'config.py'),
            score=float(metrics[self.score_key]), metrics=metrics,
            latency_ms=float(latency), flops=cost['flops'],
            params=int(cost['params']), train_seconds=round(train_s, 1),
            input_shape=list(self._shape(genome)),
            device=_device_name(),
            feasible=_inside(latency, self.latency))

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

    # -------------------------------------------------------------- outputs
    def _plot(self) -> None:
        self.engine.plot('latency (ms, batch 1, ' + _device_name() + ')',
                         label_fn=lambda r: r['name'])

    def _write_outputs(self, front: List[dict]) -> None:
        import yaml
        self._plot()
        fdir = osp.join(self.work_dir, 'front')
        os.makedirs(fdir, exist_ok=True)
        for old in os.listdir(fdir):
            if old.endswith('.py'):
                os.remove(osp.join(fdir, old))
        entries = []
        for r in front:
            path = osp.join(fdir, f"{r['index']:03d}_"
                            f"{r['name'].replace('+', '_')}.py")
            # the candidate's own config.py, as it was written (a copy:
            # re-dumping reformats every config of the front with yapf,
            # about 1 s each, every generation)
            shutil.copyfile(r['config'], path)
            entries.append(dict(
                index=r['index'], name=r['name'], config=path,
                score=r['score'], latency_ms=r['latency_ms'],
                flops=r['flops'], params=r['params'],
                **{self.genome_field: r[self.genome_field]}))
        with open(osp.join(self.work_dir, 'pareto.yaml'), 'w') as f:
            yaml.safe_dump(dict(
                objectives=[f'max {self.score_key}', 'min latency_ms'],
                device=_device_name(), front=entries), f, sort_keys=False)
        lines = [f"  {e['name']}: {self.score_key}={e['score']:.4f}, "
                 f"{e['latency_ms']:.1f} ms -> {e['config']}"
                 for e in entries]
        self._log(f'[{self.tag}] Pareto front (score up, latency down):\n'
                  + '\n'.join(lines) + '\ntrain one with: python '
                  'tools/train.py front/<name>.py')


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


class ModularSearch(StructuralSearch):
    """The SM-NAS modular-level search (Yao et al., AAAI 2020, Sec. 3):
    evolve the backbone code of one detector, every candidate trained from
    scratch, on the mAP/latency Pareto front.

    The same driver and engine as :class:`StructuralSearch` (one Runner per
    candidate, FLOPs/params checked before training, latency after it on
    rank 0, resume, DDP under a launcher, the same outputs); only the genome
    differs: a backbone code (:class:`mmdetnas.spaces.ModularSearchSpace`)
    instead of a combination of modules. The config is the detector to
    search the backbone of (usually the structural stage's chosen one with
    the from-scratch recipe, see ``configs/smnas/smnas_modular_*``) plus

    * ``modular_space``: ``dict(depth, min_blocks, max_blocks,
      base_channels, num_widenings, flops_ratio, input_size, num_ops,
      base_prob, backbone)``; ``input_size`` defaults to the test
      pipeline's resize scale;
    * ``modular_search``: the options of ``structural_search``, with
      ``init`` a list of code strings (e.g. the plain ResNet's).

    Records hold ``code`` instead of ``choices`` and also
    ``backbone_flops`` (MACs of the backbone's convs at the input shape,
    :func:`~mmdetnas.spaces.resnet_code.code_macs`).

    Raises:
        KeyError: the config has no ``modular_space``.
        ValueError: a malformed space, option or init code.
    """
    space_key = 'modular_space'
    options_key = 'modular_search'
    genome_field = 'code'
    tag = 'modular'

    def build_space(self, space_cfg) -> ModularSearchSpace:
        space_cfg = dict(space_cfg)
        if space_cfg.get('input_size') is None:
            w, h = _test_scale(self.base) or (1333, 800)
            space_cfg['input_size'] = (h, w)
        return ModularSearchSpace.from_cfg(space_cfg)

    def evaluate(self, genome) -> dict:
        record = super().evaluate(genome)
        record['backbone_flops'] = int(
            code_macs(genome, tuple(record['input_shape'])))
        return record
