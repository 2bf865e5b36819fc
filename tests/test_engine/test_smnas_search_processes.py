"""An SM-NAS search loop in 2 gloo processes whose process group is created
by mmengine's Runner (the order of a GPU run when the group is not started
by the tool: the outer Runner of the search starts it), with a scoring that
stands in for training: the same candidates as one process, one state file,
one log with one first generation."""
import json
import os
import os.path as osp
import socket

import pytest
import torch
import torch.multiprocessing as mp
from mmengine.config import Config

from mmdetnas.engine.loops import StructuralSearchLoop
from tests.e2e_utils import ROOT, SearchRun

CONFIG = osp.join(ROOT, 'configs', 'smnas',
                  'smnas_structural_faster-rcnn_mixed_fpn_quick_neon-trees.py')


class ScoredStructuralLoop(StructuralSearchLoop):
    """Scores a structure by a fixed function of its name (no training);
    the record is made on every rank, as a trained one is."""

    def evaluate(self, genome):
        index = len(self.records)
        name = self.space.label(genome)
        score = (sum(map(ord, name)) % 97) / 97
        return dict(index=index, generation=self.generation,
                    choices=dict(genome), name=name,
                    config=osp.join(self.work_dir, 'none.py'), score=score,
                    metrics={'s': score},
                    latency_ms=10.0 + sum(map(ord, name[::-1])) % 53,
                    flops=1, params=1, train_seconds=0.0, feasible=True)

    def write_outputs(self):  # no candidate configs to copy
        self.plot()


def _cfg(work_dir, launcher):
    from mmdetnas.utils.setup_env import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(CONFIG)
    cfg.train_cfg.update(population_size=3, max_generations=2, top_k=2,
                         num_mutation=1, num_crossover=1)
    cfg.launcher = launcher
    cfg.env_cfg = dict(dist_cfg=dict(backend='gloo'))
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                                 device_ids=None)
    return cfg


def _rank(rank, world, port, work_dir):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world), MASTER_ADDR='127.0.0.1',
                      MASTER_PORT=str(port), OMP_NUM_THREADS='1')
    # mmengine's pytorch start sets the CUDA device first; there is none
    torch.cuda.set_device = lambda device: None
    import torch.distributed as dist
    assert not dist.is_initialized()
    run = SearchRun(_cfg(work_dir, 'pytorch'), work_dir, ScoredStructuralLoop)
    assert dist.is_initialized() and dist.get_world_size() == world
    run.run()
    from mmdetnas.utils.dist import finalize_dist
    finalize_dist()


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _lines(work_dir):
    with open(osp.join(work_dir, 'candidates.jsonl')) as f:
        return [(r['index'], r['generation'], r['choices'], r['score'])
                for r in map(json.loads, f)]


@pytest.mark.slow
def test_two_processes_started_by_the_runner_equal_one(tmp_path):
    one = tmp_path / 'one'
    SearchRun(_cfg(one, 'none'), one, ScoredStructuralLoop).run()
    two = tmp_path / 'two'
    mp.start_processes(_rank, args=(2, _free_port(), str(two)), nprocs=2,
                       join=True, start_method='spawn')
    assert _lines(two) == _lines(one)
    assert len(_lines(one)) == 6
    assert sorted(p.name for p in two.glob('search*')) == [
        'search.log', 'search_curve.png', 'search_state.pkl']
    log = (two / 'search.log').read_text()
    assert log.count('generation 1: 3 new candidates') == 1, log
    assert log.count('generation 1/2 done') == 1, log
