"""The stand-alone training commands that
``tools/analysis_tools/ranking_correlation.py --print-commands`` writes
(``train_commands.sh``) for one process, ``--gpus N`` (tools/dist_train.sh)
and ``--slurm PARTITION`` (tools/slurm_train.sh).

The written script is run by bash with ``python`` and ``srun`` replaced by
stubs that record their arguments, so the launch scripts' own argument
order decides what reaches ``tools/train.py``; those arguments are then
parsed by ``tools/train.py``'s own parser. The two tools' parsers are loaded
from their files (``load_tool``); the lines are written by the library
(:mod:`mmdetnas.search.ranking_study`).
"""
import json
import os
import os.path as osp
import shlex
import subprocess
import sys

import pytest

from mmdetnas.search import ranking_study as study
from mmdetnas.spaces import official_arch, PRESETS
from tests.e2e_utils import ROOT, load_tool

TOOL = 'tools/analysis_tools/ranking_correlation.py'
SPACE = PRESETS['300M']
QS = 'configs/quickstart'
SEARCH = (
    f'{QS}/'
    f'detnas_search_faster-rcnn_shufflenetv2-300m_fpn_quick_neon-trees.py')
SUBNET = (
    f'{QS}/'
    f'detnas_subnet_faster-rcnn_shufflenetv2-300m_fpn_quick_neon-trees.py')
OPTS = ['train_cfg.max_iters=6', 'model.backbone.init_cfg=None']
NAMES = ('COCO-FPN-300M', 'COCO-RetinaNet-300M')


def _parse(argv):
    """``ranking_correlation.py``'s parse of ``argv``"""
    return load_tool(TOOL).parse_args(argv)


def _args(tmp_path, *extra, opts=OPTS):
    return _parse([
        SEARCH, str(tmp_path / 'super.pth'), '--subnet-config', SUBNET,
        '--work-dir', str(tmp_path / 'rank'), '--print-commands', *extra,
        '--standalone-opts', *opts
    ])


def _archs(args):
    """keys and architecture files of two official architectures"""
    keys = [study.arch_key(official_arch(n)[1], SPACE) for n in NAMES]
    args.work_dir = osp.abspath(args.work_dir)
    return keys, {
        k: osp.join(args.work_dir, 'archs', f'{k}.yaml')
        for k in keys
    }


def _run_script(path, tmp_path):
    """Run a written train_commands.sh with stub ``python`` and ``srun``
    (first on PATH) from another folder; returns what each was called with,
    in order, as ``(program, argv)``."""
    stubs = tmp_path / 'stubs'
    stubs.mkdir()
    log = tmp_path / 'calls.jsonl'
    for name in ('python', 'srun'):
        stub = stubs / name
        stub.write_text(
            f'#!{sys.executable}\n'
            'import json, os, sys\n'
            f"with open({str(log)!r}, 'a') as f:\n"
            f'    f.write(json.dumps([{name!r}, sys.argv[1:]]) + "\\n")\n')
        stub.chmod(0o755)
    env = dict(os.environ, PATH=f'{stubs}:{os.environ["PATH"]}')
    env.pop('PYTHON', None)
    proc = subprocess.run(['bash', str(path)], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    with open(log) as f:
        return [tuple(json.loads(x)) for x in f]


def _train_args(argv, monkeypatch):
    """``tools/train.py``'s parse of the arguments after ``train.py``"""
    idx = next(i for i, a in enumerate(argv) if a.endswith('train.py'))
    monkeypatch.setenv('LOCAL_RANK', '0')  # parse_tool_args exports it
    return (load_tool('tools/train.py').parse_args(argv[idx + 1:]),
            argv[:idx + 1])


def _check_options(argv, targs, arch_file, opts=OPTS):
    """``tools/train.py`` got exactly the architecture file and the
    ``--standalone-opts`` as ``--cfg-options`` (each word intact), and its
    parser read the architecture file from them"""
    assert argv.count('--cfg-options') == 1
    assert argv[argv.index('--cfg-options') + 1:] == [
        f'model.backbone.arch={arch_file}', *opts]
    assert targs.cfg_options['model.backbone.arch'] == arch_file
    assert set(targs.cfg_options) == {'model.backbone.arch'} | {
        o.split('=', 1)[0] for o in opts}


def _lines(path):
    """the command lines of a train_commands.sh (after the cd)"""
    with open(path) as f:
        lines = [x for x in f.read().splitlines()
                 if x and not x.startswith('#')]
    assert shlex.split(lines[0]) == ['cd', ROOT]
    return [shlex.split(x) for x in lines[1:]]


def test_one_gpu_lines_are_plain_train_py(tmp_path, monkeypatch):
    args = _args(tmp_path)
    assert args.gpus == 1 and args.slurm is None
    keys, files = _archs(args)
    path = study.write_train_commands(args, keys, files)
    lines = _lines(path)
    assert len(lines) == len(keys)
    for words, key in zip(lines, keys):
        assert words[:3] == ['python', 'tools/train.py',
                             osp.join(ROOT, SUBNET)]
    calls = _run_script(path, tmp_path)
    assert [c[0] for c in calls] == ['python'] * len(keys)
    for (_, argv), key in zip(calls, keys):
        targs, head = _train_args(argv, monkeypatch)
        assert head == ['tools/train.py']
        assert targs.config == osp.join(ROOT, SUBNET)
        assert targs.launcher == 'none'
        assert targs.work_dir == osp.join(args.work_dir, 'standalone', key)
        assert targs.resume is None
        _check_options(argv, targs, files[key])


def test_gpus_lines_use_dist_train(tmp_path, monkeypatch):
    # a --standalone-opts value with a space reaches train.py whole
    opts = OPTS + ["train_dataloader.dataset.metainfo.classes=['a b']"]
    args = _args(tmp_path, '--gpus', '8', opts=opts)
    keys, files = _archs(args)
    path = study.write_train_commands(args, keys, files)
    for words, key in zip(_lines(path), keys):
        assert words[:3] == ['tools/dist_train.sh', osp.join(ROOT, SUBNET),
                             '8']
    calls = _run_script(path, tmp_path)
    assert [c[0] for c in calls] == ['python'] * len(keys)
    for (_, argv), key in zip(calls, keys):
        targs, head = _train_args(argv, monkeypatch)
        # torchrun with 8 processes on this node
        assert head[:2] == ['-m', 'torch.distributed.run']
        assert '--nproc_per_node=8' in head and '--nnodes=1' in head
        assert osp.realpath(head[-1]) == osp.join(ROOT, 'tools', 'train.py')
        assert targs.config == osp.join(ROOT, SUBNET)
        assert targs.launcher == 'pytorch'
        assert targs.work_dir == osp.join(args.work_dir, 'standalone', key)
        _check_options(argv, targs, files[key], opts)


@pytest.mark.parametrize('gpus,per_node', [(None, 1), (4, 4), (16, 8)])
def test_slurm_lines_use_slurm_train(tmp_path, monkeypatch, gpus, per_node):
    extra = ['--slurm', 'gpu_part'] + (['--gpus', str(gpus)] if gpus else [])
    args = _args(tmp_path, *extra)
    total = gpus or 1
    keys, files = _archs(args)
    path = study.write_train_commands(args, keys, files)
    for words, key in zip(_lines(path), keys):
        assert words[:3] == [f'GPUS={total}', f'GPUS_PER_NODE={per_node}',
                             'tools/slurm_train.sh']
    calls = _run_script(path, tmp_path)
    assert [c[0] for c in calls] == ['srun'] * len(keys)
    jobs = set()
    for (_, argv), key in zip(calls, keys):
        targs, head = _train_args(argv, monkeypatch)
        assert head[:2] == ['-p', 'gpu_part']
        assert f'--ntasks={total}' in head
        assert f'--ntasks-per-node={per_node}' in head
        assert f'--gres=gpu:{per_node}' in head
        assert head[-3:] == ['python', '-u', 'tools/train.py']
        jobs |= {a for a in head if a.startswith('--job-name=')}
        assert targs.config == osp.join(ROOT, SUBNET)
        assert targs.launcher == 'slurm'
        assert targs.work_dir == osp.join(args.work_dir, 'standalone', key)
        _check_options(argv, targs, files[key])
    assert len(jobs) == len(keys)  # one job name per architecture


def test_slurm_refuses_arguments_with_spaces(tmp_path):
    args = _args(tmp_path, '--slurm', 'p',
                 opts=["train_dataloader.dataset.metainfo.classes=['a b']"])
    keys, files = _archs(args)
    with pytest.raises(ValueError, match='white space'):
        study.write_train_commands(args, keys, files)
    assert not osp.exists(osp.join(args.work_dir, 'train_commands.sh'))


def test_gpus_and_slurm_need_print_commands(tmp_path):
    (tmp_path / 'super.pth').write_bytes(b'weights')
    base = [SEARCH, str(tmp_path / 'super.pth'), '--subnet-config', SUBNET,
            '--work-dir', str(tmp_path / 'rank')]
    for extra in (['--gpus', '8'], ['--slurm', 'p']):
        with pytest.raises(ValueError, match='--print-commands'):
            study.run_ranking_study(_parse(base + extra))
    assert not osp.exists(tmp_path / 'rank' / study.STATE_FILE)
    with pytest.raises(SystemExit):
        _parse(base + ['--gpus', '0'])
    with pytest.raises(SystemExit):  # --work-dir stays required
        _parse(base[:-2])
