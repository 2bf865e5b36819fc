"""What ``tools/deployment/export_onnx.py`` and
``tools/analysis_tools/latency_table.py`` call.

:func:`export_checkpoint` turns a trained (sub- or super-)net checkpoint
and an architecture into an ONNX file of the exportable part of the
model, checked against PyTorch; :func:`measure_arch` times that exported
network on a backend as a latency table's entries were timed.
"""
import copy
import os.path as osp
from typing import Optional, Sequence

from mmdetnas.deploy.backends import DEFAULT_TIMING, build_backend
from mmdetnas.deploy.latency_table import (LatencyTable, LatencyTableError,
                                           _detnas_backbone_cfg, build_model,
                                           parts_fingerprint)
from mmdetnas.deploy.onnx_export import (DeployableModel, deployable_input,
                                         export_onnx)
from mmdetnas.spaces.arch import resolve_arch
from mmdetnas.spaces.search_space import build_search_space


def default_shape(model_cfg) -> tuple:
    """``(800, 1333)`` for a detector (mmdet's 1x schedules), ``(224,
    224)`` for a classifier or a bare backbone."""
    return (800, 1333) if 'neck' in model_cfg or 'bbox_head' in model_cfg \
        or 'rpn_head' in model_cfg else (224, 224)


def _config_space(model_cfg):
    bb = _detnas_backbone_cfg(model_cfg)
    if bb.get('search_space') is not None:
        return build_search_space(bb['search_space'])
    if bb.get('arch') is not None:
        return resolve_arch(bb['arch'])[0]
    return build_search_space('300M')


def export_checkpoint(cfg, checkpoint: str, out: str, arch=None,
                      shape: Optional[Sequence[int]] = None,
                      backend: str = 'onnxruntime') -> dict:
    """Export ``cfg.model`` with the weights of ``checkpoint`` and path
    ``arch`` to ONNX (:class:`mmdetnas.deploy.DeployableModel`: backbone,
    neck, dense head of a one-stage detector) and check ``backend``'s
    outputs against PyTorch's.

    Args:
        cfg (Config): A config with a DetNAS ShuffleNetV2 backbone.
        checkpoint (str): A subnet checkpoint (its recorded architecture is
            used) or a supernet checkpoint (``arch`` required; the chosen
            blocks are sliced out, entangled kernels cropped).
        out (str): The ``.onnx`` file.
        arch: Anything :func:`mmdetnas.spaces.resolve_arch` takes; default
            the checkpoint's recorded architecture, else the config's.
        shape (Sequence[int], optional): ``(H, W)``; default
            :func:`default_shape`.
        backend (str): ``'onnxruntime'`` or ``'openvino'`` for the check.

    Returns:
        dict: ``out``, ``arch`` (choice names), ``parts``, ``shape``,
        ``max_abs_diff``, ``outputs`` (output shapes).

    Raises:
        FileNotFoundError: no such checkpoint.
        ValueError: no architecture can be told, one that is not the
            checkpoint's recorded one, an invalid one, weights that do not
            fit the model (naming the keys), or outputs that disagree
            (:class:`mmdetnas.deploy.ExportMismatchError`).
    """
    import torch

    from mmdetnas.models.backbones.detnas_shufflenetv2 import \
        slice_supernet_state_dict
    from mmdetnas.utils.arch_meta import checkpoint_arch
    from mmdetnas.utils.checkpoint import load_local_checkpoint
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint!r}')
    model_cfg = copy.deepcopy(cfg.model)
    bb = _detnas_backbone_cfg(model_cfg)
    ckpt = load_local_checkpoint(checkpoint, map_location='cpu')
    if not isinstance(ckpt, dict):
        raise ValueError(f'checkpoint {checkpoint!r} holds no state dict')
    recorded, rec_space, source = checkpoint_arch(ckpt)
    if isinstance(recorded, str):
        raise ValueError(f'checkpoint {checkpoint!r} holds an SM-NAS '
                         'backbone; export_onnx.py exports DetNAS networks')
    space = (build_search_space(rec_space) if rec_space is not None
             else _config_space(model_cfg))
    if arch is not None:
        space, arch = resolve_arch(arch, space)
        if recorded is not None and list(arch) != list(recorded):
            raise ValueError(
                f'--arch {",".join(arch)} is not the architecture of the '
                f'subnet checkpoint {checkpoint!r} ({",".join(recorded)}); '
                'drop --arch, or give the supernet checkpoint')
    elif recorded is not None:
        arch = tuple(recorded)
    elif bb.get('arch') is not None:
        space, arch = resolve_arch(bb['arch'], bb.get('search_space'))
    else:
        raise ValueError(
            f'no architecture to export: {checkpoint!r} records none (a '
            'supernet) and the config builds a supernet; pass --arch')
    bb['search_space'] = space.to_dict()
    state = ckpt.get('state_dict', ckpt)
    state = {(k[7:] if k.startswith('module.') else k): v
             for k, v in state.items()}
    state = slice_supernet_state_dict(state, tuple(arch))
    model = build_model(model_cfg, arch)
    deploy = DeployableModel(model)
    own = model.state_dict()
    wanted = [k for k in own if any(
        k.startswith(p + '.') for p in ('backbone', 'neck', 'bbox_head'))
        and k.split('.')[0] in ('backbone', 'neck', 'bbox_head')]
    missing = [k for k in wanted if k not in state]
    bad_shape = [k for k in wanted if k in state
                 and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or bad_shape:
        raise ValueError(
            f'checkpoint {checkpoint!r} does not fit the model of this '
            f'config with architecture {",".join(arch)}: '
            + (f'{len(missing)} missing weights (e.g. {missing[:3]})'
               if missing else '')
            + ('; ' if missing and bad_shape else '')
            + (f'{len(bad_shape)} of another shape (e.g. {bad_shape[:3]})'
               if bad_shape else ''))
    model.load_state_dict({k: v for k, v in state.items() if k in own},
                          strict=False)
    shape = tuple(int(s) for s in (shape or default_shape(model_cfg)))
    x = deployable_input(shape)
    diff = export_onnx(deploy.eval(), x, out, backend=backend)
    with torch.no_grad():
        outs = deploy(x)
    return dict(out=out, arch=list(arch), parts=deploy.parts, shape=shape,
                max_abs_diff=diff,
                outputs=[list(o.shape) for o in outs])


def measure_arch(cfg, table: LatencyTable, arch) -> dict:
    """Time the exported network of path ``arch`` on the table's backend,
    with the table's threads and timing settings, and compare with its
    prediction.

    Args:
        cfg (Config): The config the table was built from (its model).
        table (LatencyTable): The table.
        arch: Anything :func:`mmdetnas.spaces.resolve_arch` takes.

    Returns:
        dict: ``arch``, ``predicted_ms``, ``timing`` (a
        :class:`mmdetnas.deploy.Timing` as a dict), ``error_pct``,
        ``device_warning`` (a text when this machine is not the table's
        device, else ``None``).

    Raises:
        LatencyTableError: the config's space or fixed parts differ from
            the table's.
    """
    b = table.built_for
    table.check(space=_config_space(cfg.model),
                parts_sha=parts_fingerprint(cfg.model))
    arch = resolve_arch(arch, table.space)[1]
    backend = build_backend(
        b['backend'], device=b['device'].split(':')[0],
        threads=b.get('threads', 1),
        **{k: b.get(k, v) for k, v in DEFAULT_TIMING.items()})
    warning = None
    if backend.device_name != b['device']:
        warning = (f"this machine is {backend.device_name!r}, the table was "
                   f"built on {b['device']!r}: the measurement is not "
                   'comparable with the prediction')
    deploy = DeployableModel(build_model(cfg.model, arch))
    x = deployable_input(b['shape'], b.get('batch', 1))
    timing = backend.time(deploy, x)
    predicted = table.predict(arch)
    return dict(arch=list(arch), predicted_ms=predicted,
                timing=timing.to_dict(),
                error_pct=100.0 * (predicted - timing.median_ms)
                / timing.median_ms,
                device_warning=warning)


__all__ = ['export_checkpoint', 'measure_arch', 'default_shape',
           'LatencyTableError']
