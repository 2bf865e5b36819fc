"""BN recalibration of a supernet path (DetNAS Sec. 3.4; SPOS Sec. 3.3).

The running statistics of a supernet's BN layers mix every path that used
them, so a path is evaluated only after re-estimating them: reset, then
train-mode forward passes of the path on training images, without
gradients.

Only the part of the model that holds BN layers is run: for a detector its
``backbone`` (plus its ``neck`` when the neck has BN layers), for a
classifier its ``backbone``; no head, no loss, no target assignment. The
statistics are those of a full train-mode forward, because a BN layer sees
the same inputs either way. A model with BN layers elsewhere (e.g. the
4conv-1fc box head of the DetNAS Faster R-CNN) is run whole, in ``'loss'``
mode (the box head's BN sees the RoIs sampled by target assignment), unless
``scope='features'`` asks to recalibrate only the backbone and neck and keep
the other BN layers' statistics.

The recalibration is seeded by its own ``seed`` only (each image's
augmentation by the seed and its position, so DataLoader workers and
several processes give the same statistics), and leaves the global
``random`` / ``numpy`` / ``torch`` generators of the process as it found
them.
"""
import contextlib
import random
import time
import types
import zlib
from typing import Callable, Iterator, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import Dataset


def arch_seed(arch: Sequence[str], seed: int = 0) -> int:
    """A process-independent seed for an architecture (Python's ``hash`` of
    strings changes between processes).

    Args:
        arch (Sequence[str]): the architecture (one choice name per layer).
        seed (int): the base seed (e.g. the search's ``seed``).

    Returns:
        int: ``seed`` plus the CRC32 of the comma-joined choices.
    """
    return seed + zlib.crc32(','.join(arch).encode())


def _has_bn(module: Optional[nn.Module]) -> bool:
    return module is not None and any(
        isinstance(m, _BatchNorm) for m in module.modules())


SCOPES = ('auto', 'features', 'full')


def bn_forward_parts(model: nn.Module,
                     scope: str = 'auto') -> Optional[List[nn.Module]]:
    """The sub-modules that a BN recalibration needs to run, in order.

    ``[model.backbone]``, plus ``model.neck`` when it holds BN layers
    (mmdet detectors: ``extract_feat`` runs the backbone then the neck;
    mmdetnas classifiers have no neck).

    Args:
        model (nn.Module): an unwrapped model.
        scope (str): ``'auto'``: the parts when they hold every BN layer of
            the model, else ``None``; ``'features'``: the parts whatever
            else holds BN layers; ``'full'``: ``None``.

    Returns:
        list[nn.Module] | None: the parts, or ``None`` when the model must
        be run whole (no ``backbone``, or see ``scope``).

    Raises:
        ValueError: unknown ``scope``.
    """
    if scope not in SCOPES:
        raise ValueError(f'scope must be one of {SCOPES}, got {scope!r}')
    backbone = getattr(model, 'backbone', None)
    if scope == 'full' or not isinstance(backbone, nn.Module):
        return None
    parts = [backbone]
    neck = getattr(model, 'neck', None)
    if isinstance(neck, nn.Module) and _has_bn(neck):
        parts.append(neck)
    covered = {id(m) for p in parts for m in p.modules()}
    outside = any(isinstance(m, _BatchNorm) and id(m) not in covered
                  for m in model.modules())
    if scope == 'auto' and outside:
        return None
    return parts


@contextlib.contextmanager
def preserved_global_rng(seed: Optional[int] = None) -> Iterator[None]:
    """Save the global ``random``, ``numpy`` and ``torch`` (CPU, and CUDA
    when initialised) generator states, optionally seed them all with
    ``seed``, and restore the saved states on exit.

    Args:
        seed (int, optional): seed of the three generators inside the
            block; ``None`` leaves them as they are.

    Yields:
        None
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    cuda_states = torch.cuda.get_rng_state_all() if cuda else None
    try:
        if seed is not None:
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.manual_seed(seed)
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


#: BN forward of a recalibration per device type when ``kernel='auto'``:
#: on a CPU the two per-channel reductions of :func:`calibration_bn_forward`
#: beat torch's train-mode kernel 1.6-3.7x on ShuffleNetV2 feature maps
#: (measured, torch 2.13, benchmarks/bench_candidate_eval.py); on CUDA
#: torch's fused cuDNN/ATen kernel is used (one pass, no extra reduction
#: kernels); ``tools/gpu_check.py`` times both on the GPU it runs on.
AUTO_KERNEL = dict(cpu='reduction', cuda='torch')
KERNELS = ('auto', 'reduction', 'torch')


def resolve_kernel(kernel: str, device) -> str:
    """``'reduction'`` or ``'torch'``: the BN forward of a recalibration on
    ``device`` (:data:`AUTO_KERNEL` for ``'auto'``).

    Raises:
        ValueError: ``kernel`` not in :data:`KERNELS`.
    """
    if kernel not in KERNELS:
        raise ValueError(f'kernel must be one of {KERNELS}, got {kernel!r}')
    if kernel != 'auto':
        return kernel
    return AUTO_KERNEL.get(torch.device(device).type, 'torch')


def calibration_bn_forward(bn: _BatchNorm, x: torch.Tensor,
                           count: Optional[int] = None,
                           kernel: str = 'reduction') -> torch.Tensor:
    """Train-mode BN forward of a recalibration, without autograd.

    The same output and the same running-statistics update as
    ``_BatchNorm.forward`` in train mode with ``momentum=None`` (cumulative
    average of the batch mean and of the unbiased batch variance; PyTorch's
    ``nn.BatchNorm2d`` documentation). ``kernel='reduction'`` computes the
    batch statistics as two per-channel reductions over the contiguous
    ``(N, C, -1)`` view followed by an eval-mode ``F.batch_norm`` with
    them (on CPU 1.6-3.7x faster than the native train-mode kernel on
    ShuffleNetV2 feature maps, measured, torch 2.13);
    ``kernel='torch'`` calls torch's train-mode ``F.batch_norm`` with the
    cumulative factor. Neither reads a device value on the host when
    ``count`` is given. Local to the process (SyncBN layers are run as local
    BN), as a recalibration needs.

    Args:
        bn (_BatchNorm): a BN layer with ``track_running_stats``.
        x (Tensor): input of shape ``(N, C, *)`` (BN1d ``(N, C)``, BN2d
            ``(N, C, H, W)``, BN3d ``(N, C, D, H, W)``), with more than one
            value per channel, or empty (``N = 0``: returned as is, the
            statistics unchanged, the batch counted, as torch does).
        count (int, optional): batches tracked including this one, kept by
            the caller on the host; ``None`` reads ``num_batches_tracked``
            (a host sync on CUDA).
        kernel (str): ``'reduction'`` or ``'torch'``.

    Returns:
        Tensor: the normalised input, shape of ``x``.

    Raises:
        ValueError: a single value per channel (as train-mode BN), or an
            unknown ``kernel``.
    """
    c = x.shape[1]
    bn.num_batches_tracked.add_(1)
    if x.numel() == 0:  # as torch: counted, statistics unchanged
        return x.clone()
    v = x.reshape(x.shape[0], c, -1)
    n = v.shape[0] * v.shape[2]
    if n < 2:
        raise ValueError(
            f'BN recalibration needs more than 1 value per channel, got '
            f'input of shape {tuple(x.shape)}')
    if bn.momentum is not None:
        f = bn.momentum
    else:
        f = 1.0 / (count if count is not None else
                   float(bn.num_batches_tracked))
    if kernel == 'torch':
        return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight,
                            bn.bias, True, f, bn.eps)
    if kernel != 'reduction':
        raise ValueError(f"kernel must be 'reduction' or 'torch', got "
                         f'{kernel!r}')
    mean = v.sum(2).sum(0) / n
    var = (v - mean.view(1, c, 1)).square_().sum(2).sum(0) / n
    bn.running_mean.mul_(1 - f).add_(mean, alpha=f)
    unbiased = var * (n / (n - 1))
    bn.running_var.mul_(1 - f).add_(unbiased, alpha=f)
    return F.batch_norm(x, mean, var, bn.weight, bn.bias, False, 0.0,
                        bn.eps)


@contextlib.contextmanager
def _calibration_bn(bns: Sequence[_BatchNorm],
                    kernel: str = 'reduction') -> Iterator[dict]:
    """Run the BN layers ``bns`` with :func:`calibration_bn_forward` inside
    the block (SyncBN layers included: a recalibration has no cross-rank
    collective in the forward, every rank sees its own batches). Layers
    without running statistics keep their own batch normalisation (SyncBN
    ones as local BN). Yields the host-side batch counts, ``{id(bn): n}``,
    of the layers with running statistics."""
    counts = {}
    patched = [m for m in bns
               if m.track_running_stats or isinstance(m, nn.SyncBatchNorm)]

    def counted(m, x):
        counts[id(m)] = counts.get(id(m), 0) + 1
        return calibration_bn_forward(m, x, counts[id(m)], kernel)

    for m in patched:
        m.forward = types.MethodType(
            counted if m.track_running_stats else _BatchNorm.forward, m)
    try:
        yield counts
    finally:
        for m in patched:
            del m.forward


def image_seed(seed: int, position: int) -> int:
    """The augmentation seed of the ``position``-th calibration image of a
    recalibration seeded by ``seed`` (independent of which process or
    DataLoader worker loads it).

    Returns:
        int: a seed in ``[0, 2**32)``.
    """
    return int(np.random.SeedSequence(
        [seed % 2**63, position]).generate_state(1)[0])


def forward_seed(seed: int, batch: int) -> int:
    """The seed of the global generators while the model runs the
    ``batch``-th calibration batch of a recalibration seeded by ``seed``:
    what the forward itself draws (mmdet's RoI samplers of a whole-model,
    ``'loss'``-mode recalibration) is then the same whichever process or
    worker count loaded the images. Distinct from every :func:`image_seed`
    (another entropy pool).

    Returns:
        int: a seed in ``[0, 2**32)``.
    """
    return int(np.random.SeedSequence(
        [seed % 2**63, batch, 0x5EED]).generate_state(1)[0])


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class CalibrationSet(Dataset):
    """The images of one recalibration: item ``j`` is
    ``dataset[indices[j]]`` loaded with the global ``random`` / ``numpy`` /
    ``torch`` generators seeded by :func:`image_seed` ``(seed, j)``, so
    the pipeline's augmentation of each image is the same in the main
    process and in any DataLoader worker, in any order.

    Args:
        dataset (Dataset): the training dataset (its training pipeline).
        indices (Sequence[int]): dataset indices, in calibration order.
        seed (int): the recalibration's seed.
    """

    def __init__(self, dataset: Dataset, indices: Sequence[int], seed: int):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]
        self.seed = seed

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int):
        _seed_all(image_seed(self.seed, j))
        return self.dataset[self.indices[j]]


def _combine_statistics(bns: Sequence[_BatchNorm], counts: dict) -> None:
    """Make every rank's running statistics those of all ranks' batches:
    the count-weighted mean of the ranks' cumulative averages (sums in
    float64 over the default process group; the same, up to float
    rounding, as one process averaging every batch)."""
    import torch.distributed as dist
    tracked = [m for m in bns if m.track_running_stats]
    if not tracked:
        return
    device = tracked[0].running_mean.device
    parts = []
    for m in tracked:
        k = float(counts.get(id(m), 0))
        parts += [m.running_mean.double().flatten() * k,
                  m.running_var.double().flatten() * k,
                  torch.tensor([k], dtype=torch.float64, device=device)]
    flat = torch.cat([p.to(device) for p in parts])
    dist.all_reduce(flat)
    offset = 0
    for m in tracked:
        c = m.running_mean.numel()
        total = flat[offset + 2 * c]
        ran = total > 0  # a layer no rank ran (a choice off the path)
        scale = 1.0 / total.clamp(min=1.0)  # keeps its reset statistics
        m.running_mean.copy_(torch.where(
            ran, flat[offset:offset + c] * scale,
            m.running_mean.double().flatten()).view_as(m.running_mean))
        m.running_var.copy_(torch.where(
            ran, flat[offset + c:offset + 2 * c] * scale,
            m.running_var.double().flatten()).view_as(m.running_var))
        m.num_batches_tracked.copy_(total.long())
        offset += 2 * c + 1


@torch.no_grad()
def recalibrate_bn(model: nn.Module, dataset: Dataset, collate_fn: Callable,
                   num_batches: int, batch_size: int, seed: int,
                   scope: str = 'auto', num_workers: int = 0,
                   kernel: str = 'auto',
                   shard: Optional[Sequence[int]] = None) -> float:
    """Reset every BN layer of ``model`` and re-estimate its running mean and
    variance as the plain average over ``num_batches`` batches of
    ``batch_size`` images drawn (seeded, with replacement only if the
    dataset is too small) from ``dataset``.

    The images are loaded by a ``DataLoader`` over a
    :class:`CalibrationSet` (``num_workers`` worker processes, pinned
    memory on CUDA): the augmentation of the ``j``-th image is seeded by
    :func:`image_seed` ``(seed, j)``, so the statistics are the same with
    any number of workers or processes; the ``b``-th batch then runs with
    the global generators seeded by :func:`forward_seed` ``(seed, b)``
    (what the forward draws itself, e.g. mmdet's RoI sampling, does not
    depend on the loading either). Each batch goes through the
    model's data preprocessor (training mode) and then through the parts
    given by :func:`bn_forward_parts` in train mode (the whole model in
    ``'loss'`` mode when that is ``None``); only the BN layers of what runs
    are reset and re-estimated. The BN layers run
    :func:`calibration_bn_forward` with host-side batch counts (no
    per-layer device read; SyncBN layers locally), whatever their
    ``training`` flag (a ``norm_eval`` backbone is recalibrated too). The
    global generators of the process are left as they were. The model must
    be unwrapped (no DDP) and its path already active; it is left in eval
    mode.

    With ``shard=(rank, world_size)`` (all ranks of the default process
    group call it together) this process runs batches ``rank, rank +
    world_size, ...`` only, and the ranks' statistics are then combined
    (:func:`_combine_statistics`): every rank ends with the statistics of
    all ``num_batches`` batches, at ``1 / world_size`` of the cost.

    Args:
        model (nn.Module): an mmengine model with ``data_preprocessor`` and
            ``_run_forward`` (mmdet detectors, mmdetnas classifiers).
        dataset (Dataset): training dataset (with its training pipeline).
        collate_fn (Callable): the training dataloader's collate function.
        num_batches (int): forward passes (reference: 500).
        batch_size (int): images per pass (reference: 8).
        seed (int): e.g. :func:`arch_seed` of the path.
        scope (str): see :func:`bn_forward_parts` (default ``'auto'``: the
            statistics of a full train-mode forward, at the cost of the
            backbone and neck alone when they hold every BN layer).
        num_workers (int): DataLoader workers (e.g. the training
            dataloader's); 0 loads in this process.
        kernel (str): BN forward, ``'auto'`` (:data:`AUTO_KERNEL` by the
            model's device), ``'reduction'`` or ``'torch'``.
        shard (tuple[int, int], optional): ``(rank, world_size)`` to split
            the batches over the ranks of the default process group.

    Returns:
        float: seconds spent.

    Raises:
        ValueError: unknown ``scope`` or ``kernel``.
    """
    t0 = time.time()
    parts = bn_forward_parts(model, scope)
    bns = [m for m in (model.modules() if parts is None else
                       (x for p in parts for x in p.modules()))
           if isinstance(m, _BatchNorm)]
    device = next(iter(model.parameters()), torch.empty(0)).device
    kernel = resolve_kernel(kernel, device)
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    n = num_batches * batch_size
    idx = np.random.default_rng(seed).choice(
        len(dataset), n, replace=n > len(dataset))
    rank, world = (0, 1) if shard is None else (int(shard[0]), int(shard[1]))
    batches = [list(range(b * batch_size, (b + 1) * batch_size))
               for b in range(rank, num_batches, world)]
    loader = torch.utils.data.DataLoader(
        CalibrationSet(dataset, idx, seed), batch_sampler=batches,
        num_workers=num_workers, collate_fn=collate_fn,
        pin_memory=device.type == 'cuda' and num_workers > 0)
    model.train()
    try:
        with preserved_global_rng(), _calibration_bn(bns, kernel) as counts:
            for b, batch in zip(range(rank, num_batches, world), loader):
                # the forward's own draws (RoI sampling) by batch, not by
                # whatever the loading left in the generators
                _seed_all(forward_seed(seed, b))
                data = model.data_preprocessor(batch, True)
                if parts is None:
                    model._run_forward(data, mode='loss')
                    continue
                x = data['inputs']
                for part in parts:
                    x = part(x)
        if world > 1:
            _combine_statistics(bns, counts)
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        model.eval()
    return time.time() - t0


def dataloader_batch_size(dataloader) -> int:
    """Images per batch of a dataloader, also when a batch sampler sets it
    (mmdet's ``AspectRatioBatchSampler`` of the stock configs: then
    ``DataLoader.batch_size`` is ``None``).

    Args:
        dataloader (DataLoader): a built dataloader.

    Returns:
        int: the batch size.

    Raises:
        ValueError: neither the dataloader nor its batch sampler has one.
    """
    size = getattr(dataloader, 'batch_size', None)
    if size is None:
        size = getattr(getattr(dataloader, 'batch_sampler', None),
                       'batch_size', None)
    if not isinstance(size, int) or size < 1:
        raise ValueError(
            'cannot tell the batch size of the dataloader (batch_size '
            f'{getattr(dataloader, "batch_size", None)!r}, batch sampler '
            f'{type(getattr(dataloader, "batch_sampler", None)).__name__} '
            'without a batch_size): set calib_batch_size')
    return size


def recalibrate_path_bn(model: nn.Module, dataloader, arch: Sequence[str],
                        num_batches: int, batch_size: Optional[int] = None,
                        seed: int = 0, scope: str = 'auto',
                        num_workers: Optional[int] = None,
                        kernel: str = 'auto',
                        shard: Optional[Sequence[int]] = None) -> float:
    """BN recalibration of the active path ``arch`` on a training
    dataloader's dataset, seeded by :func:`arch_seed` ``(arch, seed)``.

    The one entry point of the search loop and of
    :class:`mmdetnas.engine.PathSamplerHook`, so both compute the same
    statistics for the same path and seed.

    Args:
        model (nn.Module): the unwrapped model, ``arch`` already active.
        dataloader (DataLoader): the training dataloader (its ``dataset``,
            ``collate_fn`` and, by default, ``batch_size`` and
            ``num_workers`` are used).
        arch (Sequence[str]): the active architecture.
        num_batches (int): forward passes.
        batch_size (int, optional): images per pass (default: the
            dataloader's batch size, see :func:`dataloader_batch_size`).
        seed (int): base seed (the search's ``seed``; 0 in the hook unless
            configured).
        scope (str): see :func:`bn_forward_parts`.
        num_workers (int, optional): DataLoader workers of the calibration
            images (default: the dataloader's ``num_workers``).
        kernel (str): see :func:`recalibrate_bn`.
        shard (tuple[int, int], optional): see :func:`recalibrate_bn`.

    Returns:
        float: seconds spent.

    Raises:
        ValueError: unknown ``scope`` or ``kernel``; no ``batch_size``
            given and none found in the dataloader.
    """
    if num_workers is None:
        num_workers = getattr(dataloader, 'num_workers', 0) or 0
    return recalibrate_bn(model, dataloader.dataset, dataloader.collate_fn,
                          num_batches,
                          batch_size or dataloader_batch_size(dataloader),
                          arch_seed(arch, seed), scope, num_workers, kernel,
                          shard)
