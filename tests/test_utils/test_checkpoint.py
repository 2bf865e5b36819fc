"""Tests of the checkpoint loading fix for torch >= 2.6
(mmdetnas.utils.checkpoint)."""
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint, load_checkpoint

import mmdetnas  # noqa: F401  (registers the loader)
from mmdetnas.utils import load_local_checkpoint


def _full_checkpoint(path):
    """A checkpoint like mmengine's: numpy scalars and a message hub with
    HistoryBuffer instances in an OrderedDict."""
    buffer = HistoryBuffer()
    for v in (1.0, 2.0, 4.0):
        buffer.update(v)
    ckpt = dict(
        state_dict=OrderedDict(
            weight=torch.arange(6.).reshape(2, 3), bias=torch.ones(2)),
        meta=dict(epoch=3, lr=np.float64(0.02)),
        message_hub=dict(log_scalars=OrderedDict(loss=buffer)))
    torch.save(ckpt, path)
    return ckpt


def test_plain_torch_load_refuses(tmp_path):
    """Precondition of the fix: torch's default weights_only=True load
    rejects such a file."""
    path = str(tmp_path / 'full.pth')
    _full_checkpoint(path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


def test_mmengine_loads_full_checkpoint(tmp_path):
    path = str(tmp_path / 'full.pth')
    ckpt = _full_checkpoint(path)
    loaded = _load_checkpoint(path, map_location='cpu')
    assert set(loaded) == set(ckpt)
    for k, v in ckpt['state_dict'].items():
        assert torch.equal(loaded['state_dict'][k], v)
    assert isinstance(loaded['meta']['lr'], np.float64)
    assert loaded['meta']['lr'] == 0.02
    buffer = loaded['message_hub']['log_scalars']['loss']
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.mean() == pytest.approx(7 / 3)
    assert buffer.current() == 4.0


def test_load_checkpoint_into_model(tmp_path):
    path = str(tmp_path / 'full.pth')
    ckpt = _full_checkpoint(path)
    model = nn.Linear(3, 2)
    load_checkpoint(model, path, strict=True)
    assert torch.equal(model.weight.data, ckpt['state_dict']['weight'])


@pytest.mark.parametrize('zipfile_format', [True, False])
@pytest.mark.parametrize('keep', [0.5, 0.05])
def test_truncated_checkpoint(tmp_path, zipfile_format, keep):
    path = tmp_path / 'killed.pth'
    torch.save(
        dict(state_dict=dict(w=torch.randn(64, 64))),
        str(path),
        _use_new_zipfile_serialization=zipfile_format)
    raw = path.read_bytes()
    path.write_bytes(raw[:int(len(raw) * keep)])
    with pytest.raises(RuntimeError, match='killed.pth'):
        _load_checkpoint(str(path))
    with pytest.raises(RuntimeError, match='killed.pth'):
        load_local_checkpoint(str(path))


def test_empty_and_garbage_files(tmp_path):
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    with pytest.raises(RuntimeError, match='empty.pth'):
        _load_checkpoint(str(empty))
    garbage = tmp_path / 'notes.pth'
    garbage.write_text('this is not a checkpoint\n')
    with pytest.raises(RuntimeError, match='notes.pth'):
        _load_checkpoint(str(garbage))


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        _load_checkpoint(str(tmp_path / 'missing.pth'))
    with pytest.raises(FileNotFoundError):
        load_local_checkpoint(str(tmp_path / 'missing.pth'))
