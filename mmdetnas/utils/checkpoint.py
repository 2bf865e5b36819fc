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


class CheckpointReadError(RuntimeError, ValueError):
    """A checkpoint file that exists but cannot be read (corrupt,
    truncated, not a torch file). A ``RuntimeError`` as torch's own load
    errors are, and a ``ValueError`` (bad input) for the tools, which end
    it in one line."""


def load_local_checkpoint(filename: str, map_location=None):
    """Load a local checkpoint file with ``weights_only=False``.

    Raises:
        FileNotFoundError: the file does not exist.
        CheckpointReadError: (a ``RuntimeError`` and ``ValueError``) the
            file exists but cannot be unpickled (corrupt, truncated, not a
            checkpoint); the message names the file.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint not found: {filename!r}')
    try:
        return torch.load(filename, map_location=map_location,
                          weights_only=False)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError,
            zipfile.BadZipFile, ValueError) as e:
        why = str(e).strip().splitlines()[0] if str(e).strip() else ''
        raise CheckpointReadError(
            f'cannot read checkpoint {filename!r} '
            f'({osp.getsize(filename)} bytes): {type(e).__name__}: '
            f'{why.rstrip(".")}. The file is corrupt or truncated (e.g. '
            'written by a killed run) or not a torch checkpoint') from e


def register_checkpoint_loader() -> None:
    """Make :func:`load_local_checkpoint` mmengine's loader for local
    files. Idempotent."""
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_local_checkpoint, force=True)


def weight_mismatches(own: dict, sd: dict, prefix: str = ''):
    """Keys of a model's state dict ``own`` against a checkpoint's ``sd``,
    restricted to keys starting with ``prefix``: ``(missing, unexpected,
    shapes)``, the last as ``'key (checkpoint shape) vs (model shape)'``
    strings."""
    mine = [k for k in own if k.startswith(prefix)]
    theirs = [k for k in sd if k.startswith(prefix)]
    missing = [k for k in mine if k not in sd]
    unexpected = [k for k in theirs if k not in own]
    shapes = [f'{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}'
              for k in mine if k in sd and hasattr(sd[k], 'shape')
              and tuple(sd[k].shape) != tuple(own[k].shape)]
    return missing, unexpected, shapes


def name_keys(keys, max_names: int = 4) -> str:
    """The first ``max_names`` keys, and how many more."""
    more = len(keys) - max_names
    return ', '.join(keys[:max_names]) + (f' (+{more} more)'
                                          if more > 0 else '')


def check_checkpoint_matches(model: torch.nn.Module,
                             filename: str,
                             what: str = 'supernet checkpoint',
                             ignore_suffixes: tuple = ('shuffle_order', ),
                             max_names: int = 4) -> None:
    """Raise unless a checkpoint holds exactly the weights of ``model``.

    ``Runner(load_from=...)`` loads non-strictly: keys of another search
    space, weight-sharing layout or model (a classification supernet given to
    a detection search) are only logged, and the search then scores random
    weights. The search tools call this first.

    Args:
        model (nn.Module): The (possibly wrapped) model the checkpoint is
            for.
        filename (str): Checkpoint path or URL (any scheme mmengine loads);
            its ``'state_dict'`` (or the dict itself), ``'module.'``
            prefixes removed.
        what (str): Name of the checkpoint in the message.
        ignore_suffixes (tuple[str]): Checkpoint keys ending so are records,
            not weights (the channel-shuffle order of converted
            checkpoints).
        max_names (int): Keys named per kind of mismatch.

    Raises:
        ValueError: missing keys, unexpected keys or tensors of another
            shape; the message counts each kind, names the first keys (with
            both shapes), the top-level modules concerned, and the likely
            cause.
    """
    from mmengine.model import is_model_wrapper
    if is_model_wrapper(model):
        model = model.module
    ckpt = CheckpointLoader.load_checkpoint(filename, map_location='cpu')
    sd = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict):
        raise ValueError(f'{what} {filename!r} holds no state dict (got '
                         f'{type(ckpt).__name__})')
    sd = {(k[7:] if k.startswith('module.') else k): v
          for k, v in sd.items()
          if not any(k.endswith(s) for s in ignore_suffixes)}
    own = model.state_dict()
    missing, unexpected, shapes = weight_mismatches(own, sd)
    if not (missing or unexpected or shapes):
        return

    def names(keys):
        return name_keys(keys, max_names)

    def modules(keys):
        return sorted({k.split('.')[0] for k in keys})

    parts = []
    if missing:
        parts.append(f'{len(missing)} weight(s) of the model are missing '
                     f'(modules {modules(missing)}; e.g. {names(missing)})')
    if unexpected:
        parts.append(f'{len(unexpected)} key(s) of the checkpoint are not '
                     f'in the model (modules {modules(unexpected)}; e.g. '
                     f'{names(unexpected)})')
    if shapes:
        parts.append(f'{len(shapes)} tensor(s) have another shape '
                     f'(checkpoint vs model: {names(shapes)})')
    raise ValueError(
        f'{what} {filename!r} does not fit the model of this config: '
        + '; '.join(parts) + '. Use the checkpoint of the supernet that '
        'this config inherits (same model, model.backbone.search_space and '
        'weight_sharing; a detection search needs the detection supernet, '
        'not the classification one)')


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file's content (read in 1 MiB chunks): the identity
    of a checkpoint, whatever its path.

    Raises:
        OSError: the file cannot be read.
    """
    import hashlib
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()
