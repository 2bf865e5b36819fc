"""ONNX export of a searched network, checked against PyTorch.

What is exported (:class:`DeployableModel`): the backbone, the neck, and for
a one-stage detector (RetinaNet, FCOS, ...) its dense head, from an image
tensor ``(N, 3, H, W)`` to the raw network outputs (feature maps, or the
head's per-level class scores and box deltas). What stays in PyTorch: the
RPN, the RoI heads of two-stage detectors, box decoding and NMS, which
mmdet runs in its own post-processing. A classifier exports its backbone.

The ONNX file holds standard operators only (channel shuffle is a reshape
and a transpose) and runs with ONNX Runtime or OpenVINO without torch or
mmdetnas installed.
"""
import os
import os.path as osp
import warnings
from typing import List, Sequence

import numpy as np
import torch
import torch.nn as nn

#: Default ONNX opset.
OPSET = 17


class ExportMismatchError(ValueError):
    """The exported file's outputs differ from PyTorch's beyond float
    tolerance."""


def _flatten(out) -> List[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _flatten(o)]
    if isinstance(out, dict):
        return [t for k in sorted(out) for t in _flatten(out[k])]
    raise TypeError(f'cannot export an output of type {type(out).__name__}')


def is_one_stage(model: nn.Module) -> bool:
    """Whether ``model`` is an mmdet detector with a dense ``bbox_head``
    and no RoI head (RetinaNet, FCOS, ATSS, ...)."""
    return (hasattr(model, 'bbox_head') and not hasattr(model, 'roi_head')
            and getattr(model, 'bbox_head', None) is not None)


class DeployableModel(nn.Module):
    """The exportable part of a model: backbone -> neck -> dense head.

    Args:
        model (nn.Module): An mmdet detector, an mmdetnas classifier or a
            bare backbone (its searchable backbone fixed to one path).
        with_head (bool): Include the dense head of a one-stage detector
            (default True).

    Shapes:
        input ``(N, 3, H, W)``; output: a flat tuple of tensors, the
        backbone's ``out_indices`` maps, or the neck's levels, or the dense
        head's outputs level by level (class scores of every level, then
        box deltas, as the head returns them).
    """

    def __init__(self, model: nn.Module, with_head: bool = True):
        super().__init__()
        from mmengine.model import is_model_wrapper
        if is_model_wrapper(model):
            model = model.module
        self.backbone = getattr(model, 'backbone', model)
        self.neck = getattr(model, 'neck', None) if getattr(
            model, 'with_neck', hasattr(model, 'neck')) else None
        self.head = model.bbox_head if (with_head
                                        and is_one_stage(model)) else None

    @property
    def parts(self) -> List[str]:
        """The parts exported, in order: ``'backbone'``, ``'neck'``,
        ``'head'``."""
        return ['backbone'] + (['neck'] if self.neck is not None else []) + (
            ['head'] if self.head is not None else [])

    def forward(self, x: torch.Tensor):
        feats = self.backbone(x)
        if self.neck is not None:
            feats = self.neck(feats)
        if self.head is not None:
            feats = self.head(feats)
        return tuple(_flatten(feats))


def export_onnx(module: nn.Module, inputs, path: str, opset: int = OPSET,
                check: bool = True, backend: str = 'onnxruntime',
                rtol: float = 1e-3, atol: float = 1e-4) -> float:
    """Export ``module`` to ONNX (TorchScript exporter, fixed input shape)
    and check its outputs on ``backend`` against PyTorch's.

    Args:
        module (nn.Module): The network (put in eval mode here).
        inputs (Tensor | tuple[Tensor]): Example inputs, e.g. one
            ``(1, 3, H, W)`` image tensor.
        path (str): The ``.onnx`` file to write (its folder is created).
        opset (int): ONNX opset.
        check (bool): Run the file on ``backend`` and compare.
        backend (str): ``'onnxruntime'`` or ``'openvino'``.
        rtol, atol (float): An output agrees when
            ``max|onnx - torch| <= atol + rtol * max|torch|``.

    Returns:
        float: the largest absolute difference over every output (``nan``
        when ``check`` is False).

    Raises:
        ExportMismatchError: an output beyond tolerance, or a different
            number or shape of outputs (naming the output and both values).
        ImportError: ``check`` with the backend's package missing.
    """
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (
        inputs, )
    module = module.eval()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    names = ['input'] if len(inputs) == 1 else [
        f'input{i}' for i in range(len(inputs))]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter('ignore')
        torch.onnx.export(module, inputs, path, dynamo=False,
                          opset_version=opset, input_names=names,
                          do_constant_folding=True)
    if not check:
        return float('nan')
    return check_onnx(path, module, inputs, backend, rtol, atol)


def check_onnx(path: str, module: nn.Module, inputs,
               backend: str = 'onnxruntime', rtol: float = 1e-3,
               atol: float = 1e-4) -> float:
    """Compare an ONNX file's outputs on ``backend`` with ``module``'s.

    Returns:
        float: the largest absolute difference over every output.

    Raises:
        ExportMismatchError: see :func:`export_onnx`.
    """
    from .backends import build_backend
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (
        inputs, )
    with torch.no_grad():
        ref = [t.detach().cpu().numpy()
               for t in _flatten(module.eval()(*inputs))]
    got = build_backend(backend, device='cpu').run_onnx(path, inputs)
    if len(got) != len(ref):
        raise ExportMismatchError(
            f'{path}: {backend} returns {len(got)} outputs, PyTorch '
            f'{len(ref)}')
    worst = 0.0
    for i, (g, r) in enumerate(zip(got, ref)):
        if tuple(g.shape) != tuple(r.shape):
            raise ExportMismatchError(
                f'{path}: output {i} has shape {tuple(g.shape)} on '
                f'{backend}, {tuple(r.shape)} in PyTorch')
        diff = float(np.abs(g.astype(np.float64) - r).max()) if r.size else 0.
        bound = atol + rtol * (float(np.abs(r).max()) if r.size else 0.)
        if not diff <= bound:
            raise ExportMismatchError(
                f'{path}: output {i} differs from PyTorch by up to {diff:.3g}'
                f' on {backend} (tolerance {bound:.3g} = {atol:g} + {rtol:g}'
                f' x max|output|): the exported network computes something '
                'else')
        worst = max(worst, diff)
    return worst


def deployable_input(shape: Sequence[int], batch: int = 1,
                     seed: int = 0) -> torch.Tensor:
    """A fixed random image batch ``(batch, 3, H, W)`` for export checks
    and timing (seeded; values in ``[-2, 2)``, like normalised pixels)."""
    g = torch.Generator().manual_seed(seed)
    h, w = shape
    return torch.rand(batch, 3, int(h), int(w), generator=g) * 4 - 2
