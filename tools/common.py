"""The shared start-up of the command-line tools (train, test, search,
search_structure, ranking_correlation): mmdet's flags, loading a config with
them, the distributed start-up (process group, device and rank variables for
every launcher, before any rank-dependent decision) and building the runner.

Library code does not import this module; tests and benchmarks that run a
tool's start-up do (``from tools.common import prepare_cfg``).
"""
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.logging import print_log

from mmdetnas.utils.dist import (dist_backend, finalize_dist,  # noqa: F401
                                 init_dist_env)
from mmdetnas.utils.setup_env import adapt_sync_bn


def parse_tool_args(parser, argv=None):
    """Add the flags every tool shares with mmdet's tools (``--work-dir``,
    ``--cfg-options``, ``--launcher``, ``--local-rank``), parse ``argv`` and
    export ``LOCAL_RANK`` for the launcher."""
    import os

    from mmengine.config import DictAction
    parser.add_argument('--work-dir', help='the dir to save logs and outputs')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, e.g. model.backbone.arch=a.yaml')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def prepare_cfg(args, default_work_dir_root: str = './work_dirs') -> Config:
    """Load a config and apply mmdet's common flags.

    Handles ``--cfg-options``, ``--work-dir`` (default
    ``work_dirs/<config name>``), ``--launcher``, ``--amp`` and the SyncBN
    adaptation. Raises FileNotFoundError for a missing config.
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


def data_root_options(root: str) -> list:
    """``--cfg-options`` items that point the train, val and test dataloaders
    of a config at another dataset folder ``root`` (e.g. a Fashion-MNIST copy
    of another size, written by ``prepare_fashion_mnist.py``)."""
    return [f'{dl}.dataset.data_root={root.rstrip("/")}/'
            for dl in ('train_dataloader', 'val_dataloader',
                       'test_dataloader')]


def build_runner(cfg: Config):
    """``Runner.from_cfg`` or the config's ``runner_type``; a model with a
    searchable backbone also gets :class:`mmdetnas.engine.RecordArchHook` (its
    checkpoints record the architecture and search space)."""
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
    fit_arch_to_checkpoint`). Returns the loaded checkpoint for
    :func:`check_checkpoint_fits`.

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
    model (:func:`mmdetnas.utils.arch_meta.check_weights_fit`)."""
    from mmdetnas.utils.arch_meta import check_weights_fit
    check_weights_fit(runner.model, ckpt, checkpoint)


def die_with_parent() -> None:
    """``preexec_fn`` for a stage subprocess: on Linux the child gets
    SIGKILL when the tool that started it dies, even by ``kill -9``, so a
    restarted tool never races a leftover training in the same work dir
    (``prctl(PR_SET_PDEATHSIG, SIGKILL)``). Elsewhere a no-op."""
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


#: errors that mean "bad input" (a message for the user, not a bug): the
#: tools print them as one line unless --debug is given
INPUT_ERRORS = (ValueError, FileNotFoundError, KeyError, PermissionError,
                IsADirectoryError, NotADirectoryError)


def explain_unexpected_keyword(message: str) -> str:
    """``X.__init__() got an unexpected keyword argument 'k'`` (a misspelt
    config or ``--cfg-options`` key) with what ``X`` takes: its
    arguments, the closest one to ``k`` and where the key came from.
    Other messages, or a type found in no registry, are returned as they
    are (plus the hint)."""
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


def cli(main, argv=None):
    """Run a tool's ``main``: an input error (:data:`INPUT_ERRORS`, and a
    ``TypeError`` for an unexpected keyword, e.g. a misspelt
    ``--cfg-options`` key) ends in one line ``<tool>: error: <message>``
    on stderr and exit status 1; ``--debug`` (anywhere on the command
    line) shows the traceback instead. Other exceptions keep their
    traceback (unexpected errors)."""
    import sys
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = '--debug' in argv
    if debug:
        argv = [a for a in argv if a != '--debug']
    prog = osp.basename(sys.argv[0]) if sys.argv else 'tool'
    try:
        return main(argv)
    except Exception as e:  # noqa: BLE001 (re-raised unless an input error)
        expected = isinstance(e, INPUT_ERRORS) or (
            isinstance(e, TypeError) and 'unexpected keyword' in str(e))
        if debug or not expected:
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        if isinstance(e, TypeError):
            msg = explain_unexpected_keyword(str(e))
        print(f'{prog}: error: {msg} (--debug shows the traceback)',
              file=sys.stderr)
        sys.exit(1)

