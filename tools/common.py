"""The command-line side of the tools (train, test, search,
ranking_correlation, ...): mmdet's shared flags
(:func:`parse_tool_args`) and one-line input errors (:func:`cli`).

The start-up the tools share (loading a config with those flags, the
distributed start-up, building the runner, fitting a checkpoint's
architecture) is library code, :mod:`mmdetnas.apis.tool_setup`; its names
are re-exported here so that ``from tools.common import prepare_cfg`` keeps
working in the tools. Tests, benchmarks and other library code import them
from ``mmdetnas.apis.tool_setup``.
"""
import os.path as osp

from mmdetnas.apis.tool_setup import (  # noqa: F401 (re-exported)
    build_runner, check_checkpoint_fits, data_root_options, die_with_parent,
    explain_unexpected_keyword, finalize_dist, fit_checkpoint_arch,
    parse_cfg_options, prepare_cfg)


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


#: errors that mean "bad input" (a message for the user, not a bug): the
#: tools print them as one line unless --debug is given
INPUT_ERRORS = (ValueError, FileNotFoundError, KeyError, PermissionError,
                IsADirectoryError, NotADirectoryError)


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

