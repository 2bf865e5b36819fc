"""Files left whole by a kill: ``atomic_write`` and the stage subprocesses
that die with the tool that started them."""
import os
import signal
import subprocess
import sys
import time

import pytest

from mmdetnas.utils import atomic_write


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    path = tmp_path / 'sub' / 'state.json'
    with atomic_write(str(path)) as f:
        f.write('old')
    assert path.read_text() == 'old'
    # an error inside the block: the old content stays, no temporary left
    with pytest.raises(RuntimeError):
        with atomic_write(str(path)) as f:
            f.write('new, half written')
            raise RuntimeError('killed')
    assert path.read_text() == 'old'
    assert os.listdir(path.parent) == ['state.json']
    with atomic_write(str(path), 'wb') as f:
        f.write(b'\x00new')
    assert path.read_bytes() == b'\x00new'
    with pytest.raises(ValueError, match="'a'"):
        with atomic_write(str(path), 'a'):
            pass


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='PR_SET_PDEATHSIG is Linux only')
def test_stage_subprocess_dies_with_a_killed_tool(tmp_path):
    """A tool killed with SIGKILL takes its running stage with it, so a
    restarted tool never races a leftover training in its work dir."""
    pid_file = tmp_path / 'child.pid'
    parent = (
        'import subprocess, sys, time\n'
        'from mmdetnas.apis.tool_setup import die_with_parent\n'
        'p = subprocess.Popen([sys.executable, "-c", '
        '"import time; time.sleep(60)"], preexec_fn=die_with_parent)\n'
        f'open({str(pid_file)!r}, "w").write(str(p.pid))\n'
        'time.sleep(60)\n')
    proc = subprocess.Popen([sys.executable, '-c', parent])
    for _ in range(300):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.1)
    child = int(pid_file.read_text())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        # reaped by init once dead; a zombie still answers signal 0
        try:
            with open(f'/proc/{child}/stat') as f:
                if f.read().split(')')[-1].split()[0] == 'Z':
                    break
        except FileNotFoundError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail('the stage subprocess outlived its killed parent')
