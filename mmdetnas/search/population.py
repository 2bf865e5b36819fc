"""The population of an evolutionary search, shared by every search of the
toolkit (one class, :class:`Population`).

Population bookkeeping, proposal of a generation (seeded candidates, then
mutation and crossover of the selected parents, then random ones), single-
and two-objective selection (NSGA-II rank, Pareto front), the resumable
state file, ``candidates.jsonl``, the ETA and the plots. It knows nothing
of models: it draws, mutates and crosses genomes through the search
space's interface (:class:`mmdetnas.spaces.BaseSearchSpace`); the caller
supplies the constraint check and scores the candidates.

Used by the SM-NAS searches (:class:`mmdetnas.engine.StructuralSearch`,
Sec. 3.1, and its modular stage) and by the DetNAS evolutionary search
(Sec. 3.4).
"""
import json
import math
import os
import os.path as osp
import pickle
import random
import time
from typing import Any, Callable, Dict, Hashable, List, Optional, Sequence

from mmdetnas.spaces.base import BaseSearchSpace
from mmdetnas.utils.atomic import atomic_write
from .evolution import nsga2_rank, objectives, pareto_front, topk_single

STATE_VERSION = 1

Genome = Any


class Population:
    """Population, selection, state and outputs of an evolutionary search.

    The engine sees genomes only through the space's interface
    (:class:`mmdetnas.spaces.BaseSearchSpace`: ``random``, ``mutate``,
    ``crossover``, ``key``, ``from_json``, ``identity``).

    Args:
        work_dir (str): Where ``candidates.jsonl``, the state file and the
            plots go.
        space (BaseSearchSpace): The search space.
        genome_field (str): The record field that holds a candidate's
            genome in the space's JSON form (``'arch'``, ``'choices'``,
            ``'code'``).
        score_key (str): Name of the maximised metric (for logs and plots).
        cost_key (str): Record field of the minimised cost of the
            two-objective mode, e.g. ``'flops'`` (MACs) or ``'latency_ms'``.
        population_size (int): Candidates per generation.
        max_generations (int): Generations.
        top_k (int): Parents selected per generation.
        num_mutation (int): Mutated children wanted per generation.
        num_crossover (int): Crossover children wanted per generation.
        max_tries_factor (int): Draws allowed per wanted candidate before a
            generation gives up filling a slot.
        multi_objective (bool): Select parents by NSGA-II rank over
            ``(-score, cost)`` instead of by score.
        seed (int): Seed of every decision (the engine's own RNG).
        identity (dict): Further settings a resumed state must have been
            written with (the space's :meth:`identity`, the score key and
            the seed are always checked); a mismatch is an error.
        state_name (str): File name of the state in ``work_dir``.

    Raises:
        ValueError: ``num_mutation + num_crossover > population_size``, or
            ``top_k``, ``population_size`` or ``max_generations`` below 1.
    """

    def __init__(self,
                 work_dir: str,
                 space: BaseSearchSpace,
                 genome_field: str,
                 score_key: str,
                 cost_key: str = 'flops',
                 population_size: int = 50,
                 max_generations: int = 20,
                 top_k: int = 10,
                 num_mutation: int = 20,
                 num_crossover: int = 20,
                 max_tries_factor: int = 10,
                 multi_objective: bool = False,
                 seed: int = 0,
                 identity: Optional[dict] = None,
                 state_name: str = 'search_state.pkl'):
        if num_mutation + num_crossover > population_size:
            raise ValueError(
                f'num_mutation ({num_mutation}) + num_crossover '
                f'({num_crossover}) exceeds population_size '
                f'({population_size})')
        if top_k < 1 or population_size < 1 or max_generations < 1:
            raise ValueError('top_k, population_size and max_generations '
                             'must be >= 1')
        self.work_dir = work_dir
        self.space = space
        self.genome_field = genome_field
        self.score_key = score_key
        self.cost_key = cost_key
        self.population_size = population_size
        self.max_generations = max_generations
        self.top_k = top_k
        self.num_mutation = num_mutation
        self.num_crossover = num_crossover
        self.max_tries_factor = max_tries_factor
        self.multi_objective = multi_objective
        self.seed = seed
        self.identity = dict(identity or {}, space=space.identity(),
                             seed=seed, score_key=score_key)
        self.state_name = state_name
        self.rng = random.Random(seed)
        self.generation = 0
        self.pending: Optional[List[Genome]] = None
        self.records: List[dict] = []
        self.visited: Dict[Hashable, dict] = {}
        self.history: List[dict] = []

    @property
    def state_path(self) -> str:
        return osp.join(self.work_dir, self.state_name)

    @property
    def jsonl_path(self) -> str:
        return osp.join(self.work_dir, 'candidates.jsonl')

    def key(self, genome) -> Hashable:
        """The space's identity of ``genome``."""
        return self.space.key(genome)

    def genome_of(self, record: dict):
        """The genome a record holds (:attr:`genome_field`, JSON form)."""
        return self.space.from_json(record[self.genome_field])

    # ------------------------------------------------------------- proposal
    def propose(self, check_fn: Callable[[Genome], bool],
                init: Sequence[Genome] = ()) -> List[Genome]:
        """New, unvisited candidates of the current generation.

        Generation 0 (or no parent yet): the ``init`` genomes first. Later:
        ``num_mutation`` mutations and ``num_crossover`` crossovers of the
        :meth:`select`-ed parents (the space's ``mutate`` and
        ``crossover``). The rest of ``population_size`` is random.
        Every candidate passes ``check_fn`` (constraints known before
        evaluation); a slot that ``max_tries_factor`` draws cannot fill
        stays empty. Call on one process (rank 0) and broadcast.

        Returns:
            list: at most ``population_size`` genomes, no duplicates.
        """
        cands: List[Genome] = []
        keys = set()

        def add(genome) -> bool:
            k = self.key(genome)
            if k in self.visited or k in keys or not check_fn(genome):
                return False
            cands.append(genome)
            keys.add(k)
            return True

        def fill(n: int, make) -> None:
            got, tries = 0, 0
            while got < n and tries < self.max_tries_factor * n:
                tries += 1
                got += add(make())

        # the parents in the order they were scored: which records are
        # selected depends on the objectives, but the draws below do not
        # depend on their rank order (in the two-objective mode a measured
        # latency's noise would otherwise reorder the parents, and a
        # resumed search could draw other children than an uninterrupted
        # one whose selected set is the same)
        parents = [self.genome_of(r) for r in sorted(
            self.select(self.top_k), key=lambda r: r.get('index', 0))]
        if self.generation == 0 or not parents:
            for genome in init:
                if len(cands) < self.population_size:
                    add(genome)
        else:
            fill(self.num_mutation,
                 lambda: self.space.mutate(self.rng.choice(parents),
                                           self.rng))
            if len(parents) >= 2:
                fill(self.num_crossover,
                     lambda: self.space.crossover(
                         *self.rng.sample(parents, 2), self.rng))
        fill(self.population_size - len(cands),
             lambda: self.space.random(self.rng))
        return cands

    def select(self, k: int) -> List[dict]:
        """The ``k`` best feasible records: by score, or (two-objective) by
        NSGA-II rank of ``(-score, cost)``."""
        feasible = [r for r in self.records if r.get('feasible', True)]
        if not feasible:
            return []
        if not self.multi_objective:
            return topk_single(feasible, k)
        pts = [objectives(r, self.cost_key) for r in feasible]
        return [feasible[i] for i in nsga2_rank(pts)[:k]]

    def front(self) -> List[dict]:
        """The Pareto front of the feasible records (score up, cost down),
        sorted by cost."""
        feasible = [r for r in self.records if r.get('feasible', True)
                    and r.get(self.cost_key) is not None]
        pts = [objectives(r, self.cost_key) for r in feasible]
        return sorted((feasible[i] for i in pareto_front(pts)),
                      key=lambda r: r[self.cost_key])

    def best(self) -> Optional[dict]:
        """The feasible record with the best score (ties: the earlier)."""
        feasible = [r for r in self.records if r.get('feasible', True)]
        return topk_single(feasible, 1)[0] if feasible else None

    # --------------------------------------------------------------- records
    def done_in_generation(self) -> int:
        """Records of the current generation (its first ``n`` pending
        candidates are done)."""
        return sum(1 for r in self.records
                   if r['generation'] == self.generation)

    def add_record(self, record: dict, main_process: bool = True) -> None:
        """Record a scored candidate: state file and ``candidates.jsonl``
        (appended and fsynced) on the main process."""
        self.records.append(record)
        self.visited[self.key(self.genome_of(record))] = record
        if main_process:
            self.save()
            with open(self.jsonl_path, 'a') as f:
                f.write(json.dumps(record) + '\n')
                f.flush()
                os.fsync(f.fileno())

    def end_generation(self) -> dict:
        """Close the current generation; returns its history entry
        (``best`` score so far and ``mean_topk`` of the selected
        parents)."""
        top = self.select(self.top_k)
        scores = [r['score'] for r in top]
        feasible = [r['score'] for r in self.records
                    if r.get('feasible', True)]
        entry = dict(
            generation=self.generation, evaluated=len(self.records),
            best=max(feasible, default=math.nan),
            mean_topk=sum(scores) / len(scores) if scores else math.nan)
        self.history.append(entry)
        self.generation += 1
        self.pending = None
        return entry

    def eta(self, seconds_per_candidate: float) -> str:
        """``HH:MM:SS`` left at the given pace: the rest of the current
        generation and every later one."""
        pending = len(self.pending or [])
        left = (self.max_generations - self.generation - 1) * \
            self.population_size + pending - self.done_in_generation()
        return time.strftime(
            '%H:%M:%S', time.gmtime(seconds_per_candidate * max(left, 0)))

    # ----------------------------------------------------------------- state
    def state(self) -> dict:
        """Everything needed to resume."""
        return dict(
            version=STATE_VERSION, identity=self.identity,
            generation=self.generation, pending=self.pending,
            rng=self.rng.getstate(), records=self.records,
            history=self.history)

    def save(self) -> None:
        """Write the state atomically (temporary file, fsync, rename): a
        kill at any moment leaves the previous or the new state."""
        with atomic_write(self.state_path, 'wb') as f:
            pickle.dump(self.state(), f)

    def read_state(self) -> Optional[dict]:
        """The saved state, or ``None`` when there is none.

        Raises:
            RuntimeError: the file cannot be read, or was written with
                other ``identity`` settings (the message names them).
        """
        if not osp.isfile(self.state_path):
            return None
        try:
            with open(self.state_path, 'rb') as f:
                state = pickle.load(f)
        except Exception as e:  # noqa: BLE001
            raise RuntimeError(
                f'cannot read search state {self.state_path!r}: '
                f'{type(e).__name__}: {e}') from e
        # states written before the identity was grouped hold the same
        # settings at the top level
        saved = state.get('identity') or {k: state[k]
                                          for k in self.identity
                                          if k in state}
        for k, v in self.identity.items():
            # a setting the state predates is not checked
            if k in saved and saved[k] != v:
                raise RuntimeError(
                    f'search state {self.state_path!r} was written with '
                    f'{k}={saved.get(k)!r}, this run has {v!r}; use another '
                    '--work-dir')
        return state

    def load(self, state: dict, main_process: bool = True) -> None:
        """Restore a :meth:`state`; the main process rewrites
        ``candidates.jsonl`` from it (a line written after the last state
        save is dropped with its candidate, which is evaluated again)."""
        self.generation = state['generation']
        self.pending = state['pending']
        self.rng.setstate(state['rng'])
        self.records = list(state['records'])
        self.history = list(state['history'])
        self.visited = {self.key(self.genome_of(r)): r for r in self.records}
        if main_process:
            self._write_jsonl(self.records)

    #: what a search writes into its work dir besides the state and
    #: ``candidates.jsonl`` (DetNAS and SM-NAS outputs, SM-NAS candidate
    #: trainings and front configs); the Runner's dated log folders stay
    OUTPUT_NAMES = ('best_arch.yaml', 'topk.yaml', 'pareto.yaml',
                    'search_curve.png', 'pareto.png', 'search.log',
                    'candidates', 'front')

    def start_new(self, main_process: bool = True) -> Optional[str]:
        """Start a new search in ``work_dir`` (no ``--resume``): the main
        process moves the files of an earlier search there (its state,
        ``candidates.jsonl`` and :attr:`OUTPUT_NAMES`) into a new folder
        ``work_dir/earlier_search_<YYYYmmdd_HHMMSS>``, so that nothing is
        lost to a forgotten ``--resume`` and nothing mixes with this search.
        The state moves last: a kill during the move leaves it in place, and
        ``--resume`` there continues the earlier search.

        Returns:
            str or None: a warning naming where the earlier search went and
            how to continue it (main process, when there was one), else
            ``None``.
        """
        if not main_process:
            return None
        names = [n for n in (*self.OUTPUT_NAMES, 'candidates.jsonl',
                             self.state_name)
                 if osp.exists(osp.join(self.work_dir, n))]
        if not names:
            return None
        n = 0
        if osp.isfile(self.jsonl_path):
            with open(self.jsonl_path) as f:
                n = sum(1 for line in f if line.strip())
        base = osp.join(self.work_dir, 'earlier_search_' +
                        time.strftime('%Y%m%d_%H%M%S'))
        dest, k = base, 1
        while osp.exists(dest):
            dest, k = f'{base}_{k}', k + 1
        os.makedirs(dest)
        for name in names:
            os.replace(osp.join(self.work_dir, name), osp.join(dest, name))
        return (f'starting a new search in {self.work_dir}: the earlier '
                f'search there ({n} candidates; {", ".join(names)}) was '
                f'moved to {dest}, nothing deleted. To continue it: the same '
                f'command with --resume --work-dir {dest}; to continue a '
                'search in place, pass --resume')

    def _write_jsonl(self, records: List[dict]) -> None:
        """Rewrite ``candidates.jsonl`` atomically (temporary file,
        fsync, rename): a kill leaves the old or the new file, never a cut
        line."""
        with atomic_write(self.jsonl_path) as f:
            for r in records:
                f.write(json.dumps(r) + '\n')

    # ----------------------------------------------------------------- plots
    def plot(self, cost_label: str, cost_unit: float = 1.0,
             label_fn: Optional[Callable[[dict], str]] = None) -> None:
        """``search_curve.png`` (best and mean top-k score per generation)
        and ``pareto.png`` (score vs cost of every candidate, the front
        highlighted; ``label_fn`` labels the front's points)."""
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
        if self.history:
            fig, ax = plt.subplots(figsize=(6, 4))
            gens = [h['generation'] + 1 for h in self.history]
            ax.plot(gens, [h['best'] for h in self.history], 'o-',
                    label='best')
            ax.plot(gens, [h['mean_topk'] for h in self.history], 's--',
                    label=f'mean top-{self.top_k}')
            ax.set_xlabel('generation')
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(self.score_key)
            ax.set_title('evolutionary search')
            ax.grid(alpha=0.3)
            ax.legend()
            fig.tight_layout()
            fig.savefig(osp.join(self.work_dir, 'search_curve.png'), dpi=120)
            plt.close(fig)
        scored = [r for r in self.records if r.get(self.cost_key) is not None]
        if scored:
            fig, ax = plt.subplots(figsize=(7, 4.5))
            feasible = [r for r in scored if r.get('feasible', True)]
            ax.scatter([r[self.cost_key] / cost_unit for r in feasible],
                       [r['score'] for r in feasible], s=14, c='grey',
                       alpha=0.7, label='candidates')
            rejected = [r for r in scored if not r.get('feasible', True)]
            if rejected:
                ax.scatter([r[self.cost_key] / cost_unit for r in rejected],
                           [r['score'] for r in rejected], s=14, c='grey',
                           marker='x', label='outside the constraints')
            front = self.front()
            ax.plot([r[self.cost_key] / cost_unit for r in front],
                    [r['score'] for r in front], 'o-', c='tab:red',
                    label='Pareto front')
            if label_fn is not None:
                for r in front:
                    ax.annotate(label_fn(r), (r[self.cost_key] / cost_unit,
                                              r['score']),
                                fontsize=7, xytext=(4, 4),
                                textcoords='offset points')
            ax.set_xlabel(cost_label)
            ax.set_ylabel(self.score_key)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
            fig.tight_layout()
            fig.savefig(osp.join(self.work_dir, 'pareto.png'), dpi=120)
            plt.close(fig)
