"""The install check (``tools/check_install.py`` over
:mod:`mmdetnas.utils.install_check`) and the CUDA decision of
``tools/install.sh``, without a GPU and without building anything."""
import os
import shutil
import subprocess
import sys

import mmcv.ops
import pytest
import torch

from mmdetnas.utils import install_check

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, 'tools', 'check_install.py')
INSTALL_SH = os.path.join(REPO, 'tools', 'install.sh')
MISSING_CUDA = 'nms_impl: implementation for device cuda:0 not found.\n'
PIP_FORM = ('--no-build-isolation --no-cache-dir --force-reinstall '
            '--no-deps mmcv==2.1.0')
CPU_ONLY_MMCV = mmcv.ops.get_compiling_cuda_version() == 'not available'


def _assert_names_rebuild(message):
    assert 'MMCV_WITH_CUDA=1 bash tools/install.sh' in message
    assert 'FORCE_CUDA=1 MAX_JOBS=8 TORCH_CUDA_ARCH_LIST=' in message
    assert 'pip install ' + PIP_FORM in message


# ----------------------------------------------------------------------------
# the ops check
# ----------------------------------------------------------------------------
def test_real_cpu_ops_match_hand_values_and_check_passes():
    # NMS: boxes 0 and 1 overlap in [1, 10]^2 -> IoU 81 / (100 + 100 - 81)
    # = 0.68 > 0.5, box 1 goes; box 2 is disjoint and stays
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.],
                          [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, keep = mmcv.ops.nms(boxes, scores, 0.5)
    assert keep.tolist() == [0, 2]
    assert dets.flatten().tolist() == pytest.approx(
        [0, 0, 10, 10, 0.9, 20, 20, 30, 30, 0.7])
    # ... and at IoU 0.7 nothing overlaps enough
    assert mmcv.ops.nms(boxes, scores, 0.7)[1].tolist() == [0, 1, 2]

    # RoIAlign, aligned: roi x, y in [2, 6] -> pixel-centre coordinates
    # [1.5, 5.5], 2 bins of 2 pixels centred at 2.5 and 4.5; the map
    # f = x + 10 y is linear, so each bin is f at its centre
    ys, xs = torch.meshgrid(torch.arange(8.), torch.arange(8.),
                            indexing='ij')
    feat = torch.stack([xs + 10 * ys, torch.full((8, 8), 3.)])[None]
    rois = torch.tensor([[0., 2., 2., 6., 6.]])
    out = mmcv.ops.roi_align(feat, rois, (2, 2), 1.0, 0, 'avg', True)
    assert out.shape == (1, 2, 2, 2)
    assert out[0, 0].flatten().tolist() == pytest.approx(
        [27.5, 29.5, 47.5, 49.5])
    assert out[0, 1].flatten().tolist() == pytest.approx([3, 3, 3, 3])

    install_check.check_cuda_ops('cpu')  # the same checks: no error


def test_missing_device_implementation_names_the_rebuild(monkeypatch):
    calls = []

    def nms_without_cuda(*args, **kwargs):
        calls.append(args)
        raise RuntimeError(MISSING_CUDA)

    monkeypatch.setattr(mmcv.ops, 'nms', nms_without_cuda)
    with pytest.raises(RuntimeError) as info:
        install_check.check_cuda_ops('cpu')
    assert calls, 'the check did not call mmcv.ops.nms'
    message = str(info.value)
    assert 'mmcv was built without CUDA ops' in message
    assert 'implementation for device cuda:0 not found' in message
    _assert_names_rebuild(message)


def test_roi_align_failure_is_reported_too(monkeypatch):
    def roi_align_without_cuda(*args, **kwargs):
        raise RuntimeError('roi_align_forward_impl: implementation for '
                           'device cuda:0 not found.\n')

    monkeypatch.setattr(mmcv.ops, 'roi_align', roi_align_without_cuda)
    with pytest.raises(RuntimeError, match='mmcv.ops.roi_align') as info:
        install_check.check_cuda_ops('cpu')
    _assert_names_rebuild(str(info.value))


def test_wrong_results_fail_the_check(monkeypatch):
    real_nms = mmcv.ops.nms

    def nms_keeping_everything(boxes, scores, iou_threshold, **kwargs):
        return real_nms(boxes, scores, 1.0, **kwargs)  # suppresses nothing

    monkeypatch.setattr(mmcv.ops, 'nms', nms_keeping_everything)
    with pytest.raises(RuntimeError, match=r'keeps boxes \[0, 1, 2\]'):
        install_check.check_cuda_ops('cpu')

    monkeypatch.setattr(mmcv.ops, 'nms', real_nms)
    monkeypatch.setattr(mmcv.ops, 'roi_align',
                        lambda feat, rois, size, *a: torch.zeros(
                            len(rois), feat.shape[1], *size))
    with pytest.raises(RuntimeError, match='roi_align on cpu gives wrong'):
        install_check.check_cuda_ops('cpu')


def test_main_fails_where_cuda_is_there_but_the_ops_are_not(
        monkeypatch, capsys):
    # pretend a GPU: the check runs (on CPU tensors) with an nms that fails
    # as a CPU-only mmcv fails on CUDA tensors
    real_check = install_check.check_cuda_ops
    devices = []

    def check_on_cpu(device='cuda'):
        devices.append(device)
        real_check('cpu')

    def nms_without_cuda(*args, **kwargs):
        raise RuntimeError(MISSING_CUDA)

    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(install_check, 'check_cuda_ops', check_on_cpu)
    monkeypatch.setattr(mmcv.ops, 'nms', nms_without_cuda)
    assert install_check.check_install(mmcv_only=True) == 1
    assert devices == ['cuda']
    err = capsys.readouterr().err
    assert 'built without CUDA ops' in err
    _assert_names_rebuild(err)
    # CPU ops asked for (MMCV_WITH_CUDA=0): only a warning
    assert install_check.check_install('cpu', mmcv_only=True) == 0
    assert 'WARNING' in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason='a GPU is visible')
def test_main_without_cuda_skips_the_cuda_check(capsys):
    import mmdet

    import mmdetnas
    assert install_check.check_install() == 0
    out = capsys.readouterr().out
    assert f'mmdetnas {mmdetnas.__version__} ready: mmdet ' \
        f'{mmdet.__version__} mmcv {mmcv.__version__}' in out
    assert 'CUDA check skipped: torch.cuda.is_available() is False' in out
    if torch.version.cuda is None:
        assert 'is a CPU build' in out
    else:
        assert 'no GPU is visible' in out


@pytest.mark.skipif(not CPU_ONLY_MMCV, reason='mmcv has CUDA ops here')
def test_expect_cuda_rejects_a_cpu_only_mmcv(capsys):
    # the reuse check of install.sh: must not keep a CPU-only mmcv
    assert install_check.check_install('cuda', mmcv_only=True) == 1
    err = capsys.readouterr().err
    assert 'get_compiling_cuda_version() is "not available"' in err
    _assert_names_rebuild(err)


# ----------------------------------------------------------------------------
# the build decision
# ----------------------------------------------------------------------------
def _bin(tmp_path, name='bin', nvcc=False):
    path = tmp_path / name
    path.mkdir()
    if nvcc:
        (path / 'nvcc').write_text('#!/bin/sh\nexit 0\n')
        (path / 'nvcc').chmod(0o755)
    return str(path)


def _never():
    raise AssertionError('torch was asked although the answer was known')


def test_want_cuda_switch_and_auto(tmp_path):
    with_nvcc = _bin(tmp_path, 'with', nvcc=True)
    without = _bin(tmp_path, 'without')
    notes = []

    def want(cuda='12.1', gpus=1, **env):
        return install_check.want_cuda(
            env, lambda: cuda, lambda: gpus, notes.append)

    # 0: CPU only, whatever is installed; torch is not asked
    assert install_check.want_cuda(
        {'MMCV_WITH_CUDA': '0', 'PATH': with_nvcc}, _never, _never) is False
    # unset: no nvcc on PATH -> CPU, torch is not asked
    assert install_check.want_cuda({'PATH': without}, _never, _never) is False
    assert install_check.want_cuda(
        {'PATH': without, 'MMCV_WITH_CUDA': ''}, _never, _never) is False
    # unset: nvcc and a CUDA torch -> CUDA ops
    assert want(PATH=with_nvcc) is True
    # unset: nvcc but a CPU torch -> CPU, with a note saying so
    assert want(cuda=None, PATH=with_nvcc) is False
    assert 'torch is a CPU build' in notes[-1]
    # the GPU count is only needed without TORCH_CUDA_ARCH_LIST
    assert install_check.want_cuda(
        {'PATH': with_nvcc, 'TORCH_CUDA_ARCH_LIST': '8.0;9.0+PTX'},
        lambda: '12.1', _never) is True
    with pytest.raises(ValueError, match='TORCH_CUDA_ARCH_LIST is unset'):
        want(gpus=0, PATH=with_nvcc)
    with pytest.raises(ValueError, match='TORCH_CUDA_ARCH_LIST is native'):
        want(gpus=0, PATH=with_nvcc, TORCH_CUDA_ARCH_LIST='native')
    assert want(gpus=2, PATH=with_nvcc, TORCH_CUDA_ARCH_LIST='native')


def test_want_cuda_rejects_bad_values(tmp_path):
    with_nvcc = _bin(tmp_path, 'with', nvcc=True)
    with pytest.raises(ValueError, match="MMCV_WITH_CUDA='yes': expected 1"):
        install_check.want_cuda({'MMCV_WITH_CUDA': 'yes'}, _never, _never)
    with pytest.raises(ValueError, match="'sm_90' is not a compute"):
        install_check.want_cuda(
            {'PATH': with_nvcc, 'TORCH_CUDA_ARCH_LIST': '8.0;sm_90'},
            lambda: '12.1', _never)


def test_want_cuda_forced(tmp_path):
    without = _bin(tmp_path, 'without')
    toolkit = tmp_path / 'cuda'
    toolkit.mkdir()
    _bin(toolkit, 'bin', nvcc=True)
    empty_toolkit = tmp_path / 'empty-cuda'
    empty_toolkit.mkdir()
    forced = {'MMCV_WITH_CUDA': '1', 'PATH': without}
    # nvcc where torch's build finds it: $CUDA_HOME/bin, not only PATH
    assert install_check.want_cuda(
        dict(forced, CUDA_HOME=str(toolkit)), lambda: '12.1', lambda: 1)
    with pytest.raises(ValueError, match='no nvcc was found'):
        install_check.want_cuda(dict(forced, CUDA_HOME=str(empty_toolkit)),
                                lambda: '12.1', lambda: 1)
    # a CPU torch cannot take CUDA ops: say so instead of building
    with pytest.raises(ValueError, match='torch is a CPU build') as info:
        install_check.want_cuda(dict(forced, CUDA_HOME=str(toolkit)),
                                lambda: None, _never)
    assert 'TORCH_SPEC=' in str(info.value)


def test_torch_cuda_version_of_the_installed_torch():
    assert install_check.torch_cuda_version() == torch.version.cuda


def _fake_torch(tmp_path, cuda, gpus=0, importable=True):
    """A ``torch`` package that has only ``version.cuda`` and
    ``cuda.device_count()``; one that is not importable raises on import."""
    root = tmp_path / 'faketorch'
    pkg = root / 'torch'
    pkg.mkdir(parents=True)
    (pkg / '__init__.py').write_text(
        'from . import cuda, version\n' if importable else
        'raise ImportError("torch was imported")\n')
    (pkg / 'version.py').write_text(
        'from typing import Optional\n'
        "__version__ = '2.13.0+fake'\n"
        f'cuda: Optional[str] = {cuda!r}\n')
    (pkg / 'cuda.py').write_text(f'def device_count():\n    return {gpus}\n')
    return str(root)


def _env(path, pythonpath=None, **extra):
    env = {k: v for k, v in os.environ.items() if k not in (
        'MMCV_WITH_CUDA', 'TORCH_CUDA_ARCH_LIST', 'CUDA_HOME', 'CUDA_PATH',
        'PYTHONPATH', 'MAX_JOBS', 'TORCH_SPEC', 'FORCE_CUDA')}
    env['PATH'] = path
    if pythonpath:
        env['PYTHONPATH'] = pythonpath
    env.update(extra)
    return env


def _want_cli(env):
    return subprocess.run([sys.executable, SCRIPT, '--want-cuda'], env=env,
                          capture_output=True, text=True, cwd=REPO)


def test_want_cuda_command_line(tmp_path):
    with_nvcc = _bin(tmp_path, 'with', nvcc=True)
    without = _bin(tmp_path, 'without')
    cuda_torch = _fake_torch(tmp_path / 'a', '12.1', gpus=1)
    cpu_torch = _fake_torch(tmp_path / 'b', None)
    unimportable = _fake_torch(tmp_path / 'c', '12.1', importable=False)
    cases = [
        (_env(with_nvcc, cuda_torch), '1'),
        (_env(without, cuda_torch), '0'),
        (_env(with_nvcc, cpu_torch), '0'),
        (_env(with_nvcc, cuda_torch, MMCV_WITH_CUDA='0'), '0'),
        # the decision reads torch/version.py: torch itself is not imported
        (_env(with_nvcc, unimportable, TORCH_CUDA_ARCH_LIST='9.0'), '1'),
        # the real (installed) torch, no nvcc: CPU ops
        (_env(without), '0'),
    ]
    for env, expected in cases:
        proc = _want_cli(env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == expected, (env['PATH'], proc)
    proc = _want_cli(_env(without, cuda_torch, MMCV_WITH_CUDA='true'))
    assert proc.returncode == 2
    assert "MMCV_WITH_CUDA='true'" in proc.stderr and proc.stdout == ''
    proc = _want_cli(_env(with_nvcc, cpu_torch, MMCV_WITH_CUDA='1'))
    assert proc.returncode == 2 and 'CPU build' in proc.stderr


# ----------------------------------------------------------------------------
# install.sh, with a logging stand-in for the venv's python
# ----------------------------------------------------------------------------
FAKE_PYTHON = r'''#!/bin/bash
echo "FORCE_CUDA=${FORCE_CUDA-unset} MAX_JOBS=${MAX_JOBS-unset} \
CVD=${CUDA_VISIBLE_DEVICES-unset} | $*" >> "$FAKE_LOG"
case "$1 $2" in
  "-m pip") exit 0 ;;
  "tools/check_install.py --want-cuda") exec "$REAL_PYTHON" "$@" ;;
  "tools/check_install.py --mmcv-only") exit "$FAKE_CUDA_MMCV_RC" ;;
  "tools/check_install.py --expect") exit 0 ;;
  "-c import mmcv.ops") exit "$FAKE_MMCV_RC" ;;
esac
echo "unexpected call: $*" >&2
exit 99
'''


def test_install_sh_parses():
    proc = subprocess.run(['bash', '-n', INSTALL_SH], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture
def run_install(tmp_path):
    """Run tools/install.sh against a stand-in venv whose python logs its
    calls (pip does nothing); returns (process, logged lines)."""
    tools = tmp_path / 'tools'
    tools.mkdir()
    for name in ('bash', 'dirname', 'nproc', 'touch', 'id'):
        found = shutil.which(name)
        assert found, f'{name} is needed by install.sh'
        os.symlink(found, tools / name)
    counter = [0]

    def run(nvcc=False, torch_cuda=None, mmcv_ok=False, cuda_mmcv_ok=False,
            **extra):
        counter[0] += 1
        case = tmp_path / f'case{counter[0]}'
        venv = case / 'venv'
        (venv / 'bin').mkdir(parents=True)
        (venv / 'bin' / 'python').write_text(FAKE_PYTHON)
        (venv / 'bin' / 'python').chmod(0o755)
        path = str(tools)
        if nvcc:
            path += ':' + _bin(case, 'cudabin', nvcc=True)
        log = case / 'log'
        env = _env(path, _fake_torch(case, torch_cuda, gpus=0),
                   VENV=str(venv), FAKE_LOG=str(log),
                   REAL_PYTHON=sys.executable,
                   FAKE_MMCV_RC='0' if mmcv_ok else '1',
                   FAKE_CUDA_MMCV_RC='0' if cuda_mmcv_ok else '1', **extra)
        proc = subprocess.run([str(tools / 'bash'), INSTALL_SH], env=env,
                              capture_output=True, text=True, cwd=case)
        lines = log.read_text().splitlines() if log.exists() else []
        return proc, lines, (venv / '.installed').exists()

    return run


def _pip(lines):
    return [x for x in lines if '| -m pip ' in x]


def test_install_sh_default_is_the_cpu_build(run_install):
    proc, lines, installed = run_install()
    assert proc.returncode == 0, proc.stderr
    assert installed
    pip = _pip(lines)
    assert any(x.endswith('| -m pip install -q torch==2.13.0') for x in pip)
    mmcv_builds = [x for x in pip if 'mmcv==2.1.0' in x]
    # CPU ops, 2 jobs, GPUs hidden from mmcv's setup.py, pip's cache kept
    assert mmcv_builds == ['FORCE_CUDA=0 MAX_JOBS=2 CVD= | -m pip install '
                           '--no-build-isolation mmcv==2.1.0']
    assert lines[-1].endswith('| tools/check_install.py --expect any')
    # mmcv with working ops is kept, and asked about only with `import`
    proc, lines, installed = run_install(mmcv_ok=True, MAX_JOBS='3')
    assert proc.returncode == 0 and installed
    assert not [x for x in _pip(lines) if 'mmcv==2.1.0' in x]
    assert not [x for x in lines if '--mmcv-only' in x]


def test_install_sh_builds_cuda_ops_when_wanted(run_install):
    jobs = min(len(os.sched_getaffinity(0)), 8)
    spec = 'torch==2.13.0 --index-url https://download.pytorch.org/whl/cu121'
    # automatic: nvcc on PATH and a CUDA torch; the installed mmcv's ops
    # import but have no CUDA (the --expect cuda check fails): rebuilt
    proc, lines, installed = run_install(
        nvcc=True, torch_cuda='12.1', mmcv_ok=True, TORCH_SPEC=spec,
        TORCH_CUDA_ARCH_LIST='9.0')
    assert proc.returncode == 0, proc.stderr
    assert installed
    pip = _pip(lines)
    assert any(x.endswith(f'| -m pip install -q {spec}') for x in pip)
    assert [x for x in pip if 'mmcv==2.1.0' in x] == [
        f'FORCE_CUDA=1 MAX_JOBS={jobs} CVD=unset | -m pip install '
        f'{PIP_FORM}']
    assert 'TORCH_CUDA_ARCH_LIST=9.0' in proc.stdout
    assert lines[-1].endswith('| tools/check_install.py --expect cuda')
    assert any('--mmcv-only --expect cuda' in x for x in lines)
    # an mmcv that passes the CUDA check is kept
    proc, lines, _ = run_install(
        nvcc=True, torch_cuda='12.1', mmcv_ok=True, cuda_mmcv_ok=True,
        TORCH_CUDA_ARCH_LIST='9.0', MAX_JOBS='5')
    assert proc.returncode == 0, proc.stderr
    assert not [x for x in _pip(lines) if 'mmcv==2.1.0' in x]
    # forced, MAX_JOBS passed through
    proc, lines, _ = run_install(
        nvcc=True, torch_cuda='12.1', MMCV_WITH_CUDA='1',
        TORCH_CUDA_ARCH_LIST='8.0', MAX_JOBS='5')
    assert proc.returncode == 0, proc.stderr
    assert [x for x in _pip(lines) if 'mmcv==2.1.0' in x] == [
        f'FORCE_CUDA=1 MAX_JOBS=5 CVD=unset | -m pip install {PIP_FORM}']


def test_install_sh_cpu_forced_and_impossible_cuda(run_install):
    # MMCV_WITH_CUDA=0 wins over nvcc and a CUDA torch
    proc, lines, installed = run_install(
        nvcc=True, torch_cuda='12.1', MMCV_WITH_CUDA='0')
    assert proc.returncode == 0, proc.stderr
    assert installed
    assert [x for x in _pip(lines) if 'mmcv==2.1.0' in x] == [
        'FORCE_CUDA=0 MAX_JOBS=2 CVD= | -m pip install --no-build-isolation '
        'mmcv==2.1.0']
    assert lines[-1].endswith('| tools/check_install.py --expect cpu')
    # CUDA ops forced onto a CPU torch: stop before building, say why
    proc, lines, installed = run_install(
        nvcc=True, torch_cuda=None, MMCV_WITH_CUDA='1')
    assert proc.returncode == 2
    assert 'torch is a CPU build' in proc.stderr
    assert not installed
    assert not [x for x in _pip(lines) if 'mmcv==2.1.0' in x]
