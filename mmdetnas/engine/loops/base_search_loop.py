"""The one search loop every search of the toolkit runs.

:class:`BaseSearchLoop` is an mmengine loop (``runner.train()`` runs it as
the train loop, configured by ``train_cfg``) that owns the cycle of an
evolutionary search::

    run()                     start a new search or resume one
      run_epoch()             one generation: proposed on rank 0 and
                              broadcast, saved in the state before scoring
        run_iter(genomes)     one candidate, or one per rank
          score_candidates()  the subclass's scoring
          population.add_record() -> candidates.jsonl, search_state.pkl
      stop early when no new candidate fits

with the runner's ``before/after_train``, ``before/after_train_epoch`` and
``before/after_train_iter`` hooks around each step, as mmengine's own loops
call them. The population (records, proposals, selection, state file,
plots) is a :class:`~mmdetnas.search.population.Population`; the search
space is a :class:`~mmdetnas.spaces.BaseSearchSpace`.

A subclass says only how a candidate is scored (:meth:`score_candidates`),
which candidates fit before scoring (:meth:`fits`) and what its outputs
look like (:meth:`progress_line`, :meth:`scalars`, :meth:`plot`,
:meth:`write_outputs`): :class:`~mmdetnas.engine.loops.EvolutionSearchLoop`
scores paths of a trained supernet (DetNAS), and
:class:`~mmdetnas.engine.loops.StructuralSearchLoop` /
:class:`~mmdetnas.engine.loops.ModularSearchLoop` train each candidate
detector in a Runner of its own (SM-NAS). Progress lines, visual-backend
scalars, plots and result files are written by
:class:`~mmdetnas.engine.hooks.SearchOutputsHook` through that public
interface.
"""
import logging
from typing import Any, List, Optional, Sequence

from mmengine.dist import get_world_size, is_main_process
from mmengine.logging import print_log
from mmengine.runner.base_loop import BaseLoop

from mmdetnas.search.evolution import check_population_settings
from mmdetnas.search.population import Population
from mmdetnas.spaces.base import BaseSearchSpace
from mmdetnas.utils.dist import broadcast_object, set_collective_timeout


class BaseSearchLoop(BaseLoop):
    """An evolutionary search as an mmengine loop (see the module
    docstring).

    Args:
        runner: The runner.
        dataloader: The runner's train dataloader (a dict is built only
            when :attr:`builds_dataloader` is set).
        population_size (int): Candidates per generation.
        max_generations (int): Generations.
        top_k (int): Parents kept per generation.
        num_mutation (int): Mutated children per generation.
        num_crossover (int): Crossover children per generation.
        max_tries_factor (int): A generation gives up after this many times
            the wanted number of draws.
        mutate_prob (float, optional): Per-choice re-draw probability, for
            the check only (the space applies it).
        score_key (str): The metric maximised.
        seed (int): Seed of every search decision.
        resume (bool): Continue from ``work_dir/search_state.pkl``.
        collective_timeout (float, optional): Seconds a rank may wait for
            the others in the search's own collectives
            (:func:`mmdetnas.utils.dist.set_collective_timeout`).
        setting (str): Where these settings are written in the config, for
            the messages (``'train_cfg'``).

    Raises:
        ValueError: a bad population setting, named ``<setting>.<name>``
            (:func:`~mmdetnas.search.evolution.check_population_settings`).
    """

    #: whether the loop scores paths of a trained supernet (``tools/search.py
    #: CONFIG SUPERNET_CKPT``) or trains its candidates itself
    needs_supernet = False
    #: whether the runner's ``train_dataloader`` is built for the loop
    builds_dataloader = True
    #: tag of the progress lines
    tag = 'search'

    def __init__(self,
                 runner,
                 dataloader,
                 population_size: int = 50,
                 max_generations: int = 20,
                 top_k: int = 10,
                 num_mutation: int = 20,
                 num_crossover: int = 20,
                 max_tries_factor: int = 10,
                 mutate_prob: Optional[float] = None,
                 score_key: str = 'coco/bbox_mAP',
                 seed: int = 0,
                 resume: bool = False,
                 collective_timeout: Optional[float] = None,
                 setting: str = 'train_cfg'):
        # the population settings first, in an order that blames the value
        # that is wrong, and before the dataloader is built
        check_population_settings(
            population_size=population_size, max_generations=max_generations,
            top_k=top_k, num_mutation=num_mutation,
            num_crossover=num_crossover,
            mutate_prob=0.1 if mutate_prob is None else mutate_prob,
            max_tries_factor=max_tries_factor, setting=setting)
        if self.builds_dataloader:
            super().__init__(runner, dataloader)
        else:
            # the candidates build their own loaders: nothing is built for
            # the search itself (mmengine's hooks see an empty loader)
            from torch.utils.data import DataLoader
            self._runner = runner
            self.dataloader = DataLoader([])
        set_collective_timeout(collective_timeout)
        self._settings = dict(
            population_size=population_size, max_generations=max_generations,
            top_k=top_k, num_mutation=num_mutation,
            num_crossover=num_crossover, max_tries_factor=max_tries_factor)
        self.score_key = score_key
        self.seed = seed
        self.resume = resume
        self.population: Optional[Population] = None
        self.init_genomes: List[Any] = []

    def make_population(self, space: BaseSearchSpace, genome_field: str,
                        cost_key: str, multi_objective: bool) -> Population:
        """Create :attr:`population` over ``space`` (call once from the
        subclass's ``__init__``, when the space is known)."""
        self.space = space
        self.population = Population(
            getattr(self.runner, 'work_dir', None) or '.', space,
            genome_field, score_key=self.score_key, cost_key=cost_key,
            multi_objective=multi_objective, seed=self.seed,
            **self._settings)
        return self.population

    # ---------------------------------------------------- what a loop is
    @property
    def records(self) -> List[dict]:
        """Every scored candidate so far, in order."""
        return self.population.records

    @property
    def generation(self) -> int:
        return self.population.generation

    @property
    def max_generations(self) -> int:
        return self.population.max_generations

    @property
    def population_size(self) -> int:
        return self.population.population_size

    @property
    def top_k(self) -> int:
        return self.population.top_k

    @property
    def max_tries_factor(self) -> int:
        return self.population.max_tries_factor

    @property
    def multi_objective(self) -> bool:
        return self.population.multi_objective

    @property
    def cost_key(self) -> str:
        return self.population.cost_key

    @property
    def pending(self):
        return self.population.pending

    @property
    def iter(self) -> int:
        """Candidates scored (mmengine's iteration counter)."""
        return len(self.records)

    @property
    def max_iters(self) -> int:
        return self.max_generations * self.population_size

    @property
    def epoch(self) -> int:
        return self.generation

    @property
    def max_epochs(self) -> int:
        return self.max_generations

    @property
    def work_dir(self) -> str:
        return self.runner.work_dir

    @property
    def state_path(self) -> str:
        return self.population.state_path

    def best(self) -> Optional[dict]:
        """The feasible record with the best score."""
        return self.population.best()

    def front(self) -> List[dict]:
        """The Pareto front (score up, cost down) of the feasible
        records."""
        return self.population.front()

    # ------------------------------------------------------------------ run
    def run(self):
        """The whole search between the ``before_train`` and
        ``after_train`` hooks; returns the runner's model.

        A :class:`~mmdetnas.engine.hooks.SearchOutputsHook` is registered
        when the runner has none, and mmengine's ``CheckpointHook`` is
        removed: a search trains no weights of the runner's model (its
        state is ``search_state.pkl``), and a checkpoint of it would be
        mistaken for a result.
        """
        from mmengine.hooks import CheckpointHook

        from mmdetnas.engine.hooks.search_outputs_hook import \
            SearchOutputsHook
        self.check_runner()
        hooks = self.runner.hooks
        hooks[:] = [h for h in hooks if not isinstance(h, CheckpointHook)]
        if not any(isinstance(h, SearchOutputsHook) for h in hooks):
            self.runner.register_hook(SearchOutputsHook())
        self.population.work_dir = self.work_dir
        self.before_search()
        self.runner.call_hook('before_train')
        # an earlier search's files move aside before this one writes any
        warning = None if self.resume else self.population.start_new(
            is_main_process())
        self.after_start()
        if self.resume:
            self.load_state()
        elif warning:
            self.log(warning, logging.WARNING)
        while self.generation < self.max_generations:
            if not self.run_epoch():
                break
        self.runner.call_hook('after_train')
        return self.runner.model

    def run_epoch(self) -> bool:
        """One generation: propose its candidates (rank 0, broadcast; kept
        in the state, so a resumed search scores the same ones), then
        ``before_train_epoch``, :meth:`run_iter` over the candidates not
        scored yet, :attr:`candidates_per_iter` at a time, close the
        generation, save the state and ``after_train_epoch``.

        Returns:
            bool: ``False`` when no new candidate fits (the search stops
            early).
        """
        pop = self.population
        if pop.pending is None:
            pop.pending = broadcast_object(
                self.propose() if is_main_process() else None)
            self.save_state()
        if not pop.pending:
            # also a resumed search that had stopped early: its saved
            # empty generation is not closed and proposed again
            self.log(f'generation {pop.generation + 1}: '
                     f'{self.why_no_candidate()}; stopping early')
            return False
        self.runner.call_hook('before_train_epoch')
        todo = pop.pending[pop.done_in_generation():]
        step = self.candidates_per_iter
        for b in range(0, len(todo), step):
            self.run_iter(todo[b:b + step])
        pop.end_generation()
        self.save_state()
        self.runner.call_hook('after_train_epoch')
        return True

    def run_iter(self, genomes: Sequence) -> List[dict]:
        """Score ``genomes`` (:meth:`score_candidates`) and record them in
        order, between the ``before_train_iter`` and ``after_train_iter``
        hooks (``batch_idx``: the first candidate's index, so the new
        records are ``records[batch_idx:]``; ``outputs``: the scalars of
        :meth:`iter_outputs`, which mmengine's RuntimeInfoHook puts into
        the message hub as ``train/*``).

        Returns:
            list[dict]: the new records.
        """
        idx = len(self.records)
        self.runner.call_hook('before_train_iter', batch_idx=idx,
                              data_batch=list(genomes))
        records = self.score_candidates(list(genomes))
        for record in records:
            self.population.add_record(record, is_main_process())
        self.runner.call_hook('after_train_iter', batch_idx=idx,
                              data_batch=list(genomes),
                              outputs=self.iter_outputs(records))
        return records

    def propose(self) -> list:
        """The candidates of the current generation (rank 0 only): the
        population's proposal filtered by :meth:`fits`.

        Raises:
            RuntimeError: no candidate of the first generation fits (the
                message is :meth:`describe_constraints`).
        """
        cands = self.population.propose(self.fits, self.init_genomes)
        if not cands and not self.records:
            raise RuntimeError(
                f'no candidate satisfies the constraints after '
                f'{self.max_tries_factor * self.population_size} random '
                f'tries ({self.tag} search): '
                f'{self.describe_constraints()}')
        self.log(f'generation {self.generation + 1}: {len(cands)} new '
                 f'candidates ({self.describe_constraints()})')
        return cands

    # ---------------------------------------------------------------- state
    def save_state(self) -> None:
        """Write the search state (rank 0)."""
        if is_main_process():
            self.population.save()

    def load_state(self) -> None:
        """Resume from the search state (read on rank 0, broadcast); a
        missing state starts a new search.

        Raises:
            RuntimeError: the state cannot be read or belongs to another
                search (:meth:`Population.read_state`).
        """
        state = None
        if is_main_process():
            state = self.population.read_state()
            if state is None:
                self.log(f'--resume: no search state at {self.state_path}, '
                         'starting a new search')
        state = broadcast_object(state)
        if state is None:
            return
        self.population.load(state, is_main_process())
        self.after_load()
        self.log(f'resumed search at generation {self.generation + 1} with '
                 f'{len(self.records)} scored candidates')

    def log(self, msg: str, level: int = logging.INFO) -> None:
        """A line in the runner's log (rank 0)."""
        logger = getattr(self.runner, 'logger', None) or 'current'
        print_log(msg, logger=logger, level=level)

    # ------------------------------------------ what a subclass may change
    @property
    def candidates_per_iter(self) -> int:
        """Candidates scored by one :meth:`run_iter` (one per rank when
        each rank scores its own)."""
        return 1

    def check_runner(self) -> None:
        """Refuse a runner the search cannot run with (before any hook)."""

    def before_search(self) -> None:
        """Checks and set-up before ``before_train`` and before an earlier
        search in the work dir is moved aside."""

    def after_start(self) -> None:
        """Called once an earlier search in the work dir was moved aside
        (a new search) or before the state is read (``resume``)."""

    def after_load(self) -> None:
        """Called after a resumed state is loaded."""

    def fits(self, genome) -> bool:
        """Whether ``genome`` satisfies the constraints known before it is
        scored (rank 0)."""
        return True

    def describe_constraints(self) -> str:
        """The constraints, for messages."""
        return 'no constraints'

    def why_no_candidate(self) -> str:
        """Why a generation got no new candidate."""
        return 'no new candidate satisfies the constraints'

    def score_candidates(self, genomes: List) -> List[dict]:
        """Score ``genomes`` (called on every rank, with the same list) and
        return their records in order (``index``, ``generation``, the
        genome, ``score``, ``metrics`` and the loop's own fields); nothing
        is recorded.
        """
        raise NotImplementedError

    def iter_outputs(self, records: List[dict]) -> dict:
        """The ``outputs`` of ``after_train_iter``: ``search_score`` of the
        last record and ``search_best`` so far."""
        return dict(search_score=float(records[-1]['score']),
                    search_best=max(float(r['score']) for r in self.records))

    # -------------------------------------------------- outputs (the hook)
    def progress_line(self, record: dict) -> str:
        """The log line of one scored candidate (without the ETA)."""
        return (f"[{self.tag}] gen {record['generation'] + 1}/"
                f"{self.max_generations} cand {record['index']}: "
                f"{self.score_key}={record['score']:.6f}")

    def scalars(self, record: dict) -> dict:
        """Scalars of one record for the visual backends (step: its
        index): ``search/score``, ``search/best`` and
        ``search/generation``, plus the loop's own."""
        upto = self.records[:record['index'] + 1]
        return {
            'search/score': float(record['score']),
            'search/best': max(float(r['score']) for r in upto),
            'search/generation': record['generation'],
        }

    def seconds_per_candidate(self) -> float:
        """Mean seconds a candidate took (for the ETA)."""
        return 0.0

    def plot(self) -> None:
        """``search_curve.png`` and ``pareto.png`` (rank 0)."""
        self.population.plot(self.cost_key)

    def write_outputs(self) -> None:
        """The result files and the closing message (rank 0)."""
