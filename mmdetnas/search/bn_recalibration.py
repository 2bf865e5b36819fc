"""BN recalibration of a supernet path (DetNAS Sec. 3.4; SPOS Sec. 3.3).

The running statistics of a supernet's BN layers mix every path that used
them, so a path is evaluated only after re-estimating them: reset, then
train-mode forward passes of the path on training images, without
gradients.
"""
import random
import time
import zlib
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import DataLoader, Dataset, Subset


def arch_seed(arch: Sequence[str], seed: int = 0) -> int:
    """A process-independent seed for an architecture (Python's ``hash`` of
    strings changes between processes)."""
    return seed + zlib.crc32(','.join(arch).encode())


@torch.no_grad()
def recalibrate_bn(model: nn.Module, dataset: Dataset, collate_fn: Callable,
                   num_batches: int, batch_size: int, seed: int) -> float:
    """Reset every BN layer of ``model`` and re-estimate its running mean and
    variance as the plain average over ``num_batches`` batches of
    ``batch_size`` images drawn (seeded, with replacement only if the
    dataset is too small) from ``dataset``.

    The draw and the data augmentation are seeded with ``seed`` only, so
    every rank computes the same statistics. The model must be unwrapped
    (no DDP) and its path already active; it is left in eval mode.

    Args:
        model: an mmengine model with ``data_preprocessor`` and
            ``_run_forward`` (mmdet detectors, mmdetnas classifiers).
        dataset: training dataset (with its training pipeline).
        collate_fn: the training dataloader's collate function.
        num_batches (int): forward passes (reference: 500).
        batch_size (int): images per pass (reference: 8).
        seed (int): e.g. :func:`arch_seed` of the path.

    Returns:
        float: seconds spent.
    """
    t0 = time.time()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    n = num_batches * batch_size
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(dataset), n, replace=n > len(dataset))
    np.random.seed(seed % 2**32)
    random.seed(seed)
    torch.manual_seed(seed)
    loader = DataLoader(
        Subset(dataset, idx.tolist()), batch_size=batch_size, shuffle=False,
        num_workers=0, collate_fn=collate_fn)
    model.train()
    try:
        for batch in loader:
            data = model.data_preprocessor(batch, True)
            model._run_forward(data, mode='loss')
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        model.eval()
    return time.time() - t0
