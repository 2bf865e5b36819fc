"""RunFiles: a refused run removes what its (real) mmengine Runner created
in the work dir, and nothing else (issue 22, probes 2-5)."""
import os
import os.path as osp
import uuid

import pytest
import torch.nn as nn
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.runner import Runner

from mmdetnas.utils.run_files import RunFiles, file_signature


class Toy(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, *args, **kwargs):
        return {}


def config(tmp_path, work_dir):
    path = tmp_path / 'my_search.py'
    path.write_text('value = 1\n')
    cfg = Config.fromfile(str(path))
    cfg.work_dir = str(work_dir)
    return cfg


def build(cfg):
    # a name of its own: Runners of one process and second would share
    # mmengine's logger and visualizer instances
    return Runner(model=Toy(), work_dir=cfg.work_dir, cfg=cfg,
                  experiment_name=f'run_files_{uuid.uuid4().hex}')


def test_a_refused_run_in_a_new_work_dir_leaves_no_folder(tmp_path):
    cfg = config(tmp_path, tmp_path / 'a' / 'b' / 'wd')
    files = RunFiles(cfg)
    with pytest.raises(ValueError, match='refused'):
        with files.on_refusal():
            runner = files.track(build(cfg))
            assert osp.isdir(runner.log_dir)  # what the Runner created
            assert osp.isfile(tmp_path / 'a' / 'b' / 'wd' / 'my_search.py')
            raise ValueError('refused')
    assert sorted(os.listdir(tmp_path)) == ['my_search.py']


def test_a_refused_run_keeps_what_the_work_dir_held(tmp_path):
    wd = tmp_path / 'wd'
    (wd / '20200101_000000').mkdir(parents=True)
    (wd / 'notes.txt').write_text('mine\n')
    (wd / 'my_search.py').write_text('# an older copy\n')
    (wd / 'earlier_search_20200101_000000').mkdir()
    before = sorted(os.listdir(wd))
    cfg = config(tmp_path, wd)
    files = RunFiles(cfg)
    with pytest.raises(RuntimeError):
        with files.on_refusal():
            runner = files.track(build(cfg))
            assert (wd / 'my_search.py').read_text() != '# an older copy\n'
            assert osp.basename(runner.log_dir) not in before
            raise RuntimeError('refused')
    assert sorted(os.listdir(wd)) == before
    assert (wd / 'my_search.py').read_text() == '# an older copy\n'


def test_a_run_that_started_keeps_its_log(tmp_path):
    cfg = config(tmp_path, tmp_path / 'wd')
    files = RunFiles(cfg)
    state = tmp_path / 'wd' / 'search_state.pkl'
    before = file_signature(str(state))
    assert before is None

    def started():
        return file_signature(str(state)) not in (None, before)

    with pytest.raises(RuntimeError):
        with files.on_refusal(started):
            runner = files.track(build(cfg))
            state.write_bytes(b'state')
            raise RuntimeError('failed on candidate 3')
    assert osp.isdir(runner.log_dir)
    assert sorted(os.listdir(tmp_path / 'wd')) == sorted(
        [osp.basename(runner.log_dir), 'my_search.py', 'search_state.pkl'])


def test_a_runner_that_failed_while_built(tmp_path):
    """No Runner to ask: the new timestamp-named entries are its own."""
    wd = tmp_path / 'wd'
    wd.mkdir()
    (wd / 'notes.txt').write_text('mine\n')
    cfg = config(tmp_path, wd)
    files = RunFiles(cfg)
    with pytest.raises(TypeError):
        with files.on_refusal():
            (wd / '20991231_235959').mkdir()  # as Runner.__init__ does
            (wd / '20991231_235959' / 'x.log').write_text('log\n')
            (wd / 'written_by_someone_else.txt').write_text('keep\n')
            raise TypeError("unexpected keyword argument 'archh'")
    assert sorted(os.listdir(wd)) == ['notes.txt',
                                      'written_by_someone_else.txt']
