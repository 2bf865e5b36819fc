"""Distributed start-up and object collectives of the searches.

Two things live here:

* :func:`init_dist_env` starts the process group, the device and the rank
  environment for every launcher the tools offer (``pytorch``, ``slurm``,
  ``mpi``), on CUDA (NCCL) and on a CPU (gloo), *before* anything decides by
  rank. mmengine's Runner would create the group only when it is built, and
  the SM-NAS searches and the tools make rank-dependent decisions before
  their first Runner (issue 21, item 2).
* :func:`broadcast_object` / :func:`gather_objects` / :func:`object_barrier`
  send the searches' Python objects (generations, records, constraint
  infos) over a gloo group of their own, whose timeout is the search's
  ``collective_timeout`` (:func:`set_collective_timeout`). A rank that waits
  for another one to finish a candidate (rank 0 proposing a generation with
  FLOPs and latency checks, or the ranks of a candidate-parallel batch that
  got no candidate) waits there, on the CPU, rather than in an NCCL kernel
  watched by NCCL's 10-minute timeout (issue 21, item 4). The training
  collectives (DDP, SyncBN) stay on the default group and its timeout.
"""
import atexit
import datetime
import os
import subprocess
from typing import Any, List, Optional

import torch
import torch.distributed as dist
from mmengine.dist import (all_gather_object, broadcast_object_list,
                           get_world_size)
from mmengine.logging import print_log

#: launchers of the tools (mmdet's ``--launcher`` choices)
LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')

#: default timeout (s) of the searches' object collectives: six hours. The
#: longest legitimate wait is one candidate (a DetNAS candidate on COCO:
#: 500 x 8 recalibration images, 5,000 evaluation images and COCOeval; an
#: SM-NAS proposal on rank 0 that builds and counts hundreds of detectors),
#: minutes to an hour on one GPU; a rank silent for longer has hung.
DEFAULT_COLLECTIVE_TIMEOUT_S = 6 * 3600.0

_object_group = dict(world=None, group=None, timeout=None)
_collective_timeout = [DEFAULT_COLLECTIVE_TIMEOUT_S]


@atexit.register
def _drop_object_group() -> None:
    """Drop the cached object group at interpreter exit, while the
    interpreter is whole. Kept alive into the final teardown (a process
    that tore down its groups with ``dist.destroy_process_group()`` instead
    of :func:`finalize_dist`), its gloo threads were destroyed late and a
    rank could abort ("terminate called without an active exception",
    SIGABRT) after its work was done."""
    _object_group.update(world=None, group=None, timeout=None)


def _env_int(names, launcher: str) -> int:
    for name in names:
        if os.environ.get(name, '') != '':
            return int(os.environ[name])
    raise KeyError(
        f'--launcher {launcher}: none of the environment variables '
        f'{list(names)} is set; start the tool with '
        + {'pytorch': 'torchrun (tools/dist_*.sh)',
           'slurm': 'srun (tools/slurm_*.sh)',
           'mpi': 'mpirun (Open MPI, or an MPI exporting PMI_RANK/PMI_SIZE)'
           }[launcher])


def rank_env(launcher: str) -> dict:
    """``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
    ``MASTER_PORT`` of this process under ``launcher``, read from what the
    launcher exports (torchrun; Slurm's ``SLURM_*`` as mmengine reads them;
    Open MPI's ``OMPI_COMM_WORLD_*`` or MPICH / Intel MPI's ``PMI_*``).

    Under ``mpi`` the local rank comes from ``OMPI_COMM_WORLD_LOCAL_RANK``
    (or ``MPI_LOCALRANKID``): mmengine's own MPI start never sets
    ``LOCAL_RANK``, so DDP got ``device_ids=[0]`` on every rank.

    Args:
        launcher (str): ``'pytorch'``, ``'slurm'`` or ``'mpi'``.

    Returns:
        dict[str, str]: the five variables.

    Raises:
        ValueError: an unknown launcher.
        KeyError: a variable the launcher must export is missing (the
            message names the variables and how to start the tool).
    """
    if launcher not in LAUNCHERS[1:]:
        raise ValueError(f'launcher must be one of {LAUNCHERS[1:]}, got '
                         f'{launcher!r}')
    env = dict(MASTER_PORT=os.environ.get('MASTER_PORT', '29500'))
    if launcher == 'pytorch':
        env['RANK'] = _env_int(['RANK'], launcher)
        env['WORLD_SIZE'] = _env_int(['WORLD_SIZE'], launcher)
        env['LOCAL_RANK'] = _env_int(['LOCAL_RANK'], launcher)
        env['MASTER_ADDR'] = os.environ.get('MASTER_ADDR', '127.0.0.1')
    elif launcher == 'slurm':
        env['RANK'] = _env_int(['SLURM_PROCID'], launcher)
        env['WORLD_SIZE'] = _env_int(['SLURM_NTASKS'], launcher)
        if os.environ.get('SLURM_LOCALID', '') != '':
            env['LOCAL_RANK'] = int(os.environ['SLURM_LOCALID'])
        else:
            env['LOCAL_RANK'] = env['RANK'] % max(
                torch.cuda.device_count(), 1)
        addr = os.environ.get('MASTER_ADDR')
        if not addr:
            nodes = os.environ.get('SLURM_NODELIST') or os.environ.get(
                'SLURM_JOB_NODELIST')
            if not nodes:
                raise KeyError('--launcher slurm: neither MASTER_ADDR nor '
                               'SLURM_NODELIST is set')
            addr = subprocess.getoutput(
                f'scontrol show hostname {nodes} | head -n1').strip()
        env['MASTER_ADDR'] = addr
    else:  # mpi
        env['RANK'] = _env_int(['OMPI_COMM_WORLD_RANK', 'PMI_RANK'], launcher)
        env['WORLD_SIZE'] = _env_int(['OMPI_COMM_WORLD_SIZE', 'PMI_SIZE'],
                                     launcher)
        env['LOCAL_RANK'] = _env_int(
            ['OMPI_COMM_WORLD_LOCAL_RANK', 'MPI_LOCALRANKID'], launcher)
        if not os.environ.get('MASTER_ADDR'):
            raise KeyError(
                '--launcher mpi: set MASTER_ADDR (the address of rank 0) '
                'for every process, e.g. mpirun -x MASTER_ADDR=host0 '
                '-x MASTER_PORT=29500 ...')
        env['MASTER_ADDR'] = os.environ['MASTER_ADDR']
    return {k: str(v) for k, v in env.items()}


def dist_backend(requested: Optional[str] = None) -> str:
    """The process-group backend for this machine: NCCL with CUDA, gloo
    without. A configured backend is kept where it can run (``'nccl'``
    needs CUDA; ``'gloo'`` and ``'mpi'`` run anywhere).

    Args:
        requested (str, optional): ``env_cfg.dist_cfg.backend`` of the
            config, if any.

    Returns:
        str: the backend to use.
    """
    cuda = torch.cuda.is_available()
    if requested is None:
        return 'nccl' if cuda else 'gloo'
    if requested == 'nccl' and not cuda:
        return 'gloo'
    return requested


def init_dist_env(launcher: str, dist_cfg: Optional[dict] = None) -> bool:
    """Start the distributed environment of a tool before anything else:
    rank variables, this process's CUDA device, then the process group.

    mmengine's Runner skips its own ``init_dist`` when a group exists, so a
    tool that calls this first sees the true rank and world size from its
    first line on, on CUDA as on a CPU. ``LOCAL_RANK`` is exported for
    every launcher (DDP's ``device_ids`` and mmengine read it).

    Args:
        launcher (str): one of :data:`LAUNCHERS`; ``'none'`` does nothing.
        dist_cfg (dict, optional): ``env_cfg.dist_cfg`` of the config:
            ``backend`` (default by device, see :func:`dist_backend`) and
            ``timeout`` in seconds (the default group's; torch's default
            when unset).

    Returns:
        bool: True when this call started a process group.

    Raises:
        ValueError: an unknown launcher.
        KeyError: see :func:`rank_env`.
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f'--launcher must be one of {LAUNCHERS}, got '
                         f'{launcher!r}')
    if launcher == 'none' or dist.is_initialized():
        return False
    dist_cfg = dict(dist_cfg or {})
    env = rank_env(launcher)
    os.environ.update(env)
    backend = dist_backend(dist_cfg.pop('backend', None))
    kwargs = {}
    if dist_cfg.get('timeout') is not None:
        kwargs['timeout'] = datetime.timedelta(
            seconds=float(dist_cfg['timeout']))
    if torch.cuda.is_available():
        torch.cuda.set_device(int(env['LOCAL_RANK']))
    dist.init_process_group(backend=backend, init_method='env://',
                            rank=int(env['RANK']),
                            world_size=int(env['WORLD_SIZE']), **kwargs)
    print_log(
        f'--launcher {launcher}: started the {backend} process group (rank '
        f"{env['RANK']} of {env['WORLD_SIZE']}, local rank "
        f"{env['LOCAL_RANK']}"
        + (f", cuda:{env['LOCAL_RANK']}" if torch.cuda.is_available() else
           ', CPU') + ')', logger='current')
    return True


def set_collective_timeout(seconds: Optional[float]) -> None:
    """Timeout of the searches' object collectives (the gloo group of
    :func:`object_group`); ``None`` restores
    :data:`DEFAULT_COLLECTIVE_TIMEOUT_S`. Call it on every rank at the same
    point (a changed timeout makes a new group, a collective call).

    Raises:
        ValueError: a timeout that is not a positive number.
    """
    if seconds is None:
        seconds = DEFAULT_COLLECTIVE_TIMEOUT_S
    if not isinstance(seconds, (int, float)) or seconds <= 0:
        raise ValueError(f'collective_timeout must be a positive number of '
                         f'seconds, got {seconds!r}')
    _collective_timeout[0] = float(seconds)


def object_group():
    """The gloo group of the searches' object collectives, made on first
    use (on every rank: the collective calls that use it are made by every
    rank in the same order) and again when the default group or the timeout
    changes. ``None`` when not distributed.
    """
    if not (dist.is_available() and dist.is_initialized()) or \
            dist.get_world_size() == 1:
        return None
    world = dist.group.WORLD
    timeout = _collective_timeout[0]
    if _object_group['world'] is not world or \
            _object_group['timeout'] != timeout:
        _object_group.update(
            world=world, timeout=timeout,
            group=dist.new_group(
                backend='gloo',
                timeout=datetime.timedelta(seconds=timeout)))
    return _object_group['group']


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Return rank ``src``'s ``obj`` on every rank (no-op when not
    distributed), through :func:`object_group`.

    Args:
        obj (Any): a picklable object (ignored on the other ranks).
        src (int): the rank whose object is returned.

    Returns:
        Any: rank ``src``'s ``obj``.
    """
    if get_world_size() == 1:
        return obj
    box = [obj]
    broadcast_object_list(box, src=src, group=object_group())
    return box[0]


def gather_objects(obj: Any) -> List[Any]:
    """Every rank's ``obj``, in rank order, on every rank (``[obj]`` when
    not distributed), through :func:`object_group`.

    Args:
        obj (Any): a picklable object of this rank.

    Returns:
        list: the objects of ranks ``0 .. world_size - 1``.
    """
    if get_world_size() == 1:
        return [obj]
    return list(all_gather_object(obj, group=object_group()))


def object_barrier() -> None:
    """A barrier on :func:`object_group` (no-op when not distributed):
    ranks that finish early wait on the CPU with the search's timeout."""
    group = object_group()
    if group is not None:
        dist.barrier(group=group)


def finalize_dist() -> None:
    """Wait for every rank, then tear down the process groups at the end of
    a tool (no-op when not distributed).

    Without it a gloo rank may abort at interpreter exit ("terminate called
    without an active exception") after its work is done.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    object_barrier()
    _object_group.update(world=None, group=None, timeout=None)
    dist.destroy_process_group()
