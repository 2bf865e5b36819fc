"""tools/gpu_check.py (mmdetnas.apis.gpu_check): the CPU mode end to end (a
smoke test of the GPU check itself: what a CPU can run passes, the CUDA rows
are skipped), and how a failing or dependent check is reported."""
import os
import re
import subprocess
import sys

import pytest

from mmdetnas.apis import gpu_check
from tests.e2e_utils import ROOT, load_tool


def _rows(table):
    """``{check: (result, value)}`` of the Markdown table."""
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) == 4 and cells[1] in ('PASS', 'FAIL', 'SKIP'):
            rows[cells[0]] = (cells[1], cells[2])
    return rows


@pytest.mark.slow
def test_cpu_mode_runs_what_a_cpu_can(tmp_path):
    out = tmp_path / 'table.md'
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1',
               PYTHONWARNINGS='ignore')
    proc = subprocess.run(
        [sys.executable, 'tools/gpu_check.py', '--smoke', '--work-dir',
         str(tmp_path / 'wd'), '--out', str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    rows = _rows(out.read_text())
    assert rows == _rows(proc.stdout)  # printed and written alike
    assert {k: v[0] for k, v in rows.items()} == {
        'mmcv CUDA ops': 'SKIP',
        'supernet training, torchrun + --resume': 'PASS',
        'DetNAS search (4 candidates)': 'PASS',
        'DetNAS search CUDA = CPU': 'SKIP',
        'BN recalibration kernels': 'PASS',
        'latency spread': 'PASS',
        'SM-NAS structural search (2 candidates)': 'PASS',
        'device memory after candidate Runners': 'SKIP',
    }
    train = rows['supernet training, torchrun + --resume'][1]
    assert 'gloo' in train and 'AMP off' in train and '2 it + --resume to 4' \
        in train
    assert (tmp_path / 'wd' / 'supernet' / 'iter_4.pth').is_file()
    # the kernels agree (the table's tolerance) and both were timed
    m = re.search(r'reduction (\S+), torch (\S+) \(tol', rows[
        'BN recalibration kernels'][1])
    assert max(float(m.group(1)), float(m.group(2))) <= gpu_check.STATS_TOL
    assert 'no CUDA' in out.read_text().splitlines()[0]


def test_a_failing_check_fails_the_command_and_its_dependents_skip(
        tmp_path, monkeypatch, capsys):
    def boom(self):
        raise RuntimeError('nccl went away')

    def never(self):
        raise AssertionError('a check whose input failed must not run')

    monkeypatch.setattr(gpu_check.Check, 'cuda_ops', lambda self: (
        gpu_check.SKIP, 'no CUDA'))
    monkeypatch.setattr(gpu_check.Check, 'supernet_training', boom)
    for name in ('detnas_search', 'search_cuda_equals_cpu',
                 'recalibration_kernels', 'latency_spread'):
        monkeypatch.setattr(gpu_check.Check, name, never)
    monkeypatch.setattr(gpu_check.Check, 'structural_search', lambda self: (
        gpu_check.PASS, 'stub'))
    code = gpu_check.run_gpu_check(str(tmp_path / 'wd'), smoke=True)
    assert code == 1
    rows = _rows((tmp_path / 'wd' / 'gpu_check.md').read_text())
    assert rows['supernet training, torchrun + --resume'] == (
        'FAIL', 'RuntimeError: nccl went away')
    for name in ('DetNAS search (4 candidates)', 'BN recalibration kernels',
                 'latency spread', 'DetNAS search CUDA = CPU'):
        assert rows[name][0] == 'SKIP', name
    assert rows['SM-NAS structural search (2 candidates)'][0] == 'PASS'
    assert 'FAILED: supernet training' in capsys.readouterr().out


def test_bad_arguments_are_named(capsys):
    tool = load_tool('tools/gpu_check.py')
    with pytest.raises(SystemExit):
        tool.parse_args(['--gpus', '0'])
    assert '--gpus must be >= 1' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.parse_args(['--iters', '1'])
    assert '--iters must be >= 2' in capsys.readouterr().err
    with pytest.raises(ValueError, match='--gpus must be >= 1'):
        gpu_check.run_gpu_check(gpus=0)
    with pytest.raises(ValueError, match='--iters must be >= 2'):
        gpu_check.run_gpu_check(iters=1)
