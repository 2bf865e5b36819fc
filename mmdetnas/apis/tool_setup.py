"""The start-up the command-line tools share (train, test, search,
search_structure, ranking_correlation, the quickstart): loading a config
with mmdet's flags, the distributed start-up (process group, device and rank
variables for every launcher, before any rank-dependent decision), building
the runner, fitting a checkpoint's architecture, and the helpers of a tool
that starts stage subprocesses or explains a misspelt config key.

The argument parsing itself (the flags every tool shares, and printing an
input error as one line) is the tools' own: ``tools/common.py``. The
functions here take an ``args``-like object (an ``argparse.Namespace`` or
anything with the same attributes), so a test, a benchmark or another
program calls them without a command line.
"""
import os.path as osp
from typing import Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.logging import print_log

from mmdetnas.utils.dist import dist_backend, finalize_dist, init_dist_env
from mmdetnas.utils.setup_env import adapt_sync_bn

#: the checkout that holds ``tools/`` and ``configs/``: library code that
#: runs a tool in a subprocess (the quickstart, the ranking study, the GPU
#: check) runs it there (mmdetnas is used from its checkout,
#: ``pip install -e .``)
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
__all__ = [
    'REPO_ROOT', 'prepare_cfg', 'parse_cfg_options', 'data_root_options', 'build_runner',
    'fit_checkpoint_arch', 'check_checkpoint_fits', 'die_with_parent',
    'explain_unexpected_keyword', 'finalize_dist'
]


def prepare_cfg(args, default_work_dir_root: str = './work_dirs') -> Config:
    """Load a config and apply mmdet's common flags.

    Handles ``--cfg-options``, ``--work-dir`` (default
    ``work_dirs/<config name>``), ``--launcher``, ``--amp`` and the SyncBN
    adaptation; under a launcher the process group starts here.

    Args:
        args: an ``argparse.Namespace``-like object with ``config`` (path)
            and ``launcher`` (``'none'``, ``'pytorch'``, ``'slurm'`` or
            ``'mpi'``), and optionally ``cfg_options`` (dict, as
            ``--cfg-options`` parses it), ``work_dir`` and ``amp``.
        default_work_dir_root (str): Where ``work_dirs/<config name>``
            goes when neither ``args.work_dir`` nor the config sets one.

    Returns:
        Config: the loaded config.

    Raises:
        FileNotFoundError: the config file does not exist.
    """
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config not found: {args.config!r}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if getattr(args, 'cfg_options', None):
        cfg.merge_from_dict(args.cfg_options)
    if getattr(args, 'work_dir', None):
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join(default_work_dir_root,
                                osp.splitext(osp.basename(args.config))[0])
    if getattr(args, 'amp', False):
        optim = cfg.get('optim_wrapper', None)
        if optim is not None:
            if optim.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
                print_log('AMP is already enabled in the config',
                          logger='current')
            else:
                optim.type = 'AmpOptimWrapper'
                optim.loss_scale = 'dynamic'
    adapt_sync_bn(cfg, args.launcher)
    if args.launcher != 'none':
        # the process group, device and rank variables before anything
        # decides by rank (mmengine's Runner would start the group only
        # when built, after the SM-NAS searches' first decisions)
        dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
        dist_cfg['backend'] = dist_backend(dist_cfg.get('backend'))
        init_dist_env(args.launcher, dist_cfg)
        if not torch.cuda.is_available():
            # mmengine passes device_ids=[LOCAL_RANK], which DDP rejects
            # for CPU modules; a wrapper config with device_ids=None takes
            # priority
            wrapper = cfg.get('model_wrapper_cfg') or dict(
                type='MMDistributedDataParallel', broadcast_buffers=False,
                find_unused_parameters=cfg.get('find_unused_parameters',
                                               False))
            wrapper['device_ids'] = None
            cfg.model_wrapper_cfg = wrapper
    return cfg


def parse_cfg_options(opts: Optional[Sequence[str]]) -> dict:
    """``['a.b=1', 'c=[1,2]', ...]`` parsed as ``--cfg-options`` parses
    them (mmengine's ``DictAction``: numbers, lists, tuples, booleans).

    Args:
        opts (Sequence[str], optional): ``KEY=VALUE`` items.

    Returns:
        dict: ``{key: value}``; empty for no items.

    Raises:
        SystemExit: an item without ``=`` (as on a command line).
    """
    import argparse

    from mmengine.config import DictAction
    if not opts:
        return {}
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction, default={})
    return parser.parse_args(['--o', *opts]).o


def data_root_options(root: str) -> list:
    """``--cfg-options`` items that point the train, val and test dataloaders
    of a config at another dataset folder.

    Args:
        root (str): The dataset folder (e.g. a Fashion-MNIST copy of another
            size, written by ``prepare_fashion_mnist.py``).

    Returns:
        list[str]: ``<dataloader>.dataset.data_root=<root>/`` for the train,
        val and test dataloaders.
    """
    return [f'{dl}.dataset.data_root={root.rstrip("/")}/'
            for dl in ('train_dataloader', 'val_dataloader',
                       'test_dataloader')]


def build_runner(cfg: Config):
    """Build the runner of ``cfg``: ``Runner.from_cfg`` or the config's
    ``runner_type``. A model with a searchable backbone also gets
    :class:`mmdetnas.engine.RecordArchHook` (its checkpoints record the
    architecture and search space).

    Args:
        cfg (Config): A config (e.g. from :func:`prepare_cfg`).

    Returns:
        mmengine.runner.Runner: the runner.
    """
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from mmdetnas.engine.hooks import register_arch_hook
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    return register_arch_hook(runner)


def fit_checkpoint_arch(cfg: Config, checkpoint: str,
                        cfg_options: Optional[dict]) -> dict:
    """Load ``checkpoint`` (CPU) and give ``cfg``'s DetNAS backbone the
    architecture the checkpoint holds when the command line did not set
    one (logged), or refuse a ``--cfg-options model.backbone.arch`` that
    conflicts with it (:func:`mmdetnas.utils.arch_meta.
    fit_arch_to_checkpoint`).

    Args:
        cfg (Config): The config to fit (changed in place).
        checkpoint (str): The checkpoint file.
        cfg_options (dict, optional): The ``--cfg-options`` given (an
            architecture set there is explicit).

    Returns:
        dict: the loaded checkpoint, for :func:`check_checkpoint_fits`.

    Raises:
        ValueError: a conflicting architecture, or a file that holds no
            state dict.
    """
    from mmengine.runner import CheckpointLoader

    from mmdetnas.utils.arch_meta import fit_arch_to_checkpoint
    ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    if not isinstance(ckpt, dict):
        raise ValueError(f'checkpoint {checkpoint!r} holds no state dict '
                         f'(a {type(ckpt).__name__})')
    explicit = any(k == 'model.backbone.arch' or k == 'model.backbone'
                   or k.startswith('model.backbone.arch.')
                   for k in (cfg_options or {}))
    msg = fit_arch_to_checkpoint(cfg, ckpt, checkpoint, explicit)
    if msg:
        print_log(msg, logger='current')
    return ckpt


def check_checkpoint_fits(runner, ckpt: dict, checkpoint: str) -> None:
    """Refuse a checkpoint that would load only partly into the built
    model (:func:`mmdetnas.utils.arch_meta.check_weights_fit`).

    Args:
        runner: The built runner (its ``model``).
        ckpt (dict): The loaded checkpoint (:func:`fit_checkpoint_arch`).
        checkpoint (str): Its file, named in the message.

    Raises:
        ValueError: the checkpoint's weights do not fit the model.
    """
    from mmdetnas.utils.arch_meta import check_weights_fit
    check_weights_fit(runner.model, ckpt, checkpoint)


def die_with_parent() -> None:
    """``preexec_fn`` for a stage subprocess: on Linux the child gets
    SIGKILL when the process that started it dies, even by ``kill -9``, so
    a restarted tool never races a leftover training in the same work dir
    (``prctl(PR_SET_PDEATHSIG, SIGKILL)``). Elsewhere, or without
    ``prctl``, a no-op; it never raises."""
    import ctypes
    import signal
    import sys
    if not sys.platform.startswith('linux'):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # no prctl: the child outlives a killed parent, as before


def explain_unexpected_keyword(message: str) -> str:
    """``X.__init__() got an unexpected keyword argument 'k'`` (a misspelt
    config or ``--cfg-options`` key) with what ``X`` takes: its arguments,
    the closest one to ``k`` and where the key came from.

    Args:
        message (str): The ``TypeError``'s message.

    Returns:
        str: the explained message; other messages, or a type found in no
        registry, as they are (plus the hint for the latter).
    """
    import difflib
    import inspect
    import re
    hint = ' (a misspelt key in the config or --cfg-options?)'
    m = re.search(r"(\w+)\.__init__\(\) got an unexpected keyword "
                  r"argument '(\w+)'", message)
    if not m:
        return message
    name, key = m.groups()
    from mmdet import registry as det

    from mmdetnas import registry as own
    found = None
    for reg in (own.MODELS, det.MODELS, own.TASK_UTILS, det.TASK_UTILS,
                own.DATASETS, det.DATASETS, own.TRANSFORMS, det.TRANSFORMS,
                own.METRICS, det.METRICS, own.HOOKS, det.HOOKS, own.LOOPS,
                det.LOOPS):
        for type_name in (name, f'mmdetnas.{name}'):
            try:
                found = reg.get(type_name)
            except Exception:  # noqa: BLE001 (an unknown scope)
                found = None
            if found is not None:
                break
        if found is not None:
            break
    if found is None:
        return message + hint
    params = [p for p, v in inspect.signature(found.__init__).parameters
              .items() if p != 'self' and v.kind not in (v.VAR_POSITIONAL,
                                                         v.VAR_KEYWORD)]
    close = difflib.get_close_matches(key, params, n=1)
    return (f'{message}; {name} takes {params}'
            + (f", did you mean {close[0]!r}?" if close else '') + hint)
