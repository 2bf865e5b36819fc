"""The tools' distributed start-up: rank variables of every launcher, the
backend by device, the device set before the process group, and the
searches' object collectives on their own gloo group."""
import datetime

import pytest
import torch
import torch.distributed as tdist

from mmdetnas.utils import dist as mdist


def _clear(monkeypatch):
    for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
              'MASTER_PORT', 'SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID',
              'SLURM_NODELIST', 'SLURM_JOB_NODELIST', 'OMPI_COMM_WORLD_RANK',
              'OMPI_COMM_WORLD_SIZE', 'OMPI_COMM_WORLD_LOCAL_RANK',
              'PMI_RANK', 'PMI_SIZE', 'MPI_LOCALRANKID'):
        monkeypatch.delenv(k, raising=False)


def test_mpi_gets_its_local_rank(monkeypatch):
    """mmengine's MPI start never set LOCAL_RANK: DDP got device_ids=[0]
    on every rank."""
    _clear(monkeypatch)
    monkeypatch.setenv('OMPI_COMM_WORLD_RANK', '5')
    monkeypatch.setenv('OMPI_COMM_WORLD_SIZE', '8')
    monkeypatch.setenv('OMPI_COMM_WORLD_LOCAL_RANK', '1')
    with pytest.raises(KeyError, match='MASTER_ADDR'):
        mdist.rank_env('mpi')
    monkeypatch.setenv('MASTER_ADDR', 'node0')
    env = mdist.rank_env('mpi')
    assert env == dict(RANK='5', WORLD_SIZE='8', LOCAL_RANK='1',
                       MASTER_ADDR='node0', MASTER_PORT='29500')
    _clear(monkeypatch)  # MPICH / Intel MPI
    monkeypatch.setenv('PMI_RANK', '2')
    monkeypatch.setenv('PMI_SIZE', '4')
    monkeypatch.setenv('MPI_LOCALRANKID', '0')
    monkeypatch.setenv('MASTER_ADDR', 'h')
    assert mdist.rank_env('mpi')['LOCAL_RANK'] == '0'


def test_slurm_and_pytorch_rank_variables(monkeypatch):
    _clear(monkeypatch)
    monkeypatch.setenv('SLURM_PROCID', '9')
    monkeypatch.setenv('SLURM_NTASKS', '16')
    monkeypatch.setenv('SLURM_LOCALID', '1')
    monkeypatch.setenv('MASTER_ADDR', 'gpu07')
    monkeypatch.setenv('MASTER_PORT', '29611')
    assert mdist.rank_env('slurm') == dict(
        RANK='9', WORLD_SIZE='16', LOCAL_RANK='1', MASTER_ADDR='gpu07',
        MASTER_PORT='29611')
    _clear(monkeypatch)
    with pytest.raises(KeyError, match='torchrun'):
        mdist.rank_env('pytorch')
    with pytest.raises(ValueError, match="'ddp'"):
        mdist.rank_env('ddp')


def test_backend_by_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert mdist.dist_backend() == 'gloo'
    assert mdist.dist_backend('nccl') == 'gloo'
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert mdist.dist_backend() == 'nccl'
    assert mdist.dist_backend(None) == 'nccl'
    assert mdist.dist_backend('gloo') == 'gloo'


def test_cuda_start_sets_the_device_then_the_group(monkeypatch):
    """On CUDA the tool itself starts NCCL, after binding the local GPU,
    before the Runner (the order of a GPU machine, replayed on a CPU)."""
    _clear(monkeypatch)
    calls = []
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    # the start-up's log line goes through mmengine's logger, which asks
    # for the device count of a CUDA machine
    monkeypatch.setattr(mdist, 'print_log', lambda *a, **k: None)
    monkeypatch.setattr(torch.cuda, 'set_device',
                        lambda d: calls.append(('set_device', d)))
    monkeypatch.setattr(tdist, 'is_initialized', lambda: False)
    monkeypatch.setattr(
        tdist, 'init_process_group',
        lambda **kw: calls.append(('init', kw['backend'], kw['rank'],
                                   kw['world_size'], kw.get('timeout'))))
    monkeypatch.setenv('OMPI_COMM_WORLD_RANK', '3')
    monkeypatch.setenv('OMPI_COMM_WORLD_SIZE', '4')
    monkeypatch.setenv('OMPI_COMM_WORLD_LOCAL_RANK', '3')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    assert mdist.init_dist_env('mpi', dict(backend='nccl', timeout=60))
    assert calls == [('set_device', 3),
                     ('init', 'nccl', 3, 4, datetime.timedelta(seconds=60))]
    import os
    assert os.environ['LOCAL_RANK'] == '3'  # DDP's device_ids
    assert not mdist.init_dist_env('none')
    with pytest.raises(ValueError, match='openmpi'):
        mdist.init_dist_env('openmpi')


def test_collective_timeout_is_checked():
    with pytest.raises(ValueError, match='-5'):
        mdist.set_collective_timeout(-5)
    mdist.set_collective_timeout(None)
    assert mdist._collective_timeout[0] == mdist.DEFAULT_COLLECTIVE_TIMEOUT_S


def _worker(rank, world, port, out):
    import os
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), MASTER_ADDR='127.0.0.1',
                      MASTER_PORT=str(port))
    assert mdist.init_dist_env('pytorch', dict(backend=None))
    mdist.set_collective_timeout(1234)
    got = dict(
        backend=tdist.get_backend(),
        bcast=mdist.broadcast_object({'rank': rank} if rank == 0 else None),
        gathered=mdist.gather_objects(rank * 10),
        group_backend=tdist.get_backend(mdist.object_group()),
        timeout=mdist._object_group['timeout'])
    mdist.finalize_dist()
    got['after'] = tdist.is_initialized()
    torch.save(got, f'{out}.{rank}')


def test_two_processes_start_themselves(tmp_path):
    """No process group exists before the tool's start-up: it makes one
    (gloo on a CPU), and the object collectives run on a gloo group with
    the search's timeout."""
    import socket

    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    out = str(tmp_path / 'r')
    mp.spawn(_worker, args=(2, port, out), nprocs=2)
    for r in (0, 1):
        got = torch.load(f'{out}.{r}', weights_only=False)
        assert got['backend'] == 'gloo'
        assert got['bcast'] == {'rank': 0}
        assert got['gathered'] == [0, 10]
        assert got['group_backend'] == 'gloo'
        assert got['timeout'] == 1234.0
        assert got['after'] is False
