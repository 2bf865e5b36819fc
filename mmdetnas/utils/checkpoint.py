"""Checkpoint loading that works with torch >= 2.6 (the one place it is fixed).

torch 2.6 made ``torch.load`` default to ``weights_only=True``; mmengine
0.10.7 checkpoints hold the message hub, numpy scalars and optimizer state,
so ``--resume`` and ``load_from`` fail with "Weights only load failed".
:func:`register_checkpoint_loader` replaces mmengine's loader for local paths
(scheme ``''``, used by ``Runner.load_checkpoint``, ``resume``,
``load_checkpoint`` and ``init_cfg=dict(type='Pretrained')``) with one that
loads full pickles, and turns a truncated or corrupt file into an error that
names the file. Only load checkpoints you trust: a pickle can run code.
It is registered when ``mmdetnas`` is imported.
"""
import os.path as osp
import pickle
import zipfile

import torch
from mmengine.runner.checkpoint import CheckpointLoader


def load_local_checkpoint(filename: str, map_location=None):
    """Load a local checkpoint file with ``weights_only=False``.

    Raises:
        FileNotFoundError: the file does not exist.
        RuntimeError: the file exists but cannot be unpickled (corrupt,
            truncated, not a checkpoint); the message names the file.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint not found: {filename!r}')
    try:
        return torch.load(filename, map_location=map_location,
                          weights_only=False)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError,
            zipfile.BadZipFile, ValueError) as e:
        raise RuntimeError(
            f'cannot read checkpoint {filename!r} '
            f'({osp.getsize(filename)} bytes): {type(e).__name__}: {e}. The '
            'file is corrupt or truncated (e.g. written by a killed run) or '
            'not a torch checkpoint') from e


def register_checkpoint_loader() -> None:
    """Make :func:`load_local_checkpoint` mmengine's loader for local
    files. Idempotent."""
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_local_checkpoint, force=True)
