"""The architecture a checkpoint was trained with, and the check that a
checkpoint fits the model a tool built.

A DetNAS subnet is an ordinary network: loaded into a backbone of another
architecture, mmengine loads what matches, logs one "do not match exactly"
line and the tool goes on with partly random weights (issue 22: ``tools/
test.py`` reported mAP@0.5 0.0001 where the right architecture gives
0.0434). So:

* :class:`mmdetnas.engine.RecordArchHook` writes the backbone's architecture and search
  space into the ``meta`` of every checkpoint a training saves
  (``meta['arch']``, ``meta['search_space']``; ``arch`` is ``None`` for a
  supernet), as ``export_subnet`` already does;
* :func:`checkpoint_arch` reads them back, or, for a checkpoint without
  them (older ones, converted reference subnets), infers a subnet's
  architecture from its keys (a fixed subnet holds one choice block per
  layer, ``backbone.layers.<i>.<choice>.*``);
* :func:`fit_arch_to_checkpoint` gives a config the checkpoint's
  architecture when the user did not set one, and refuses a conflicting one;
* :func:`check_weights_fit` refuses weights that do not fit the built
  model's searchable backbone (missing, unexpected or reshaped) or that
  leave a whole top-level module of the model without weights, naming the
  architecture that would fit.
"""
import re
from typing import Optional, Sequence, Tuple

from mmdetnas.utils.checkpoint import name_keys, weight_mismatches

__all__ = [
    'model_arch_meta', 'checkpoint_arch',
    'fit_arch_to_checkpoint', 'check_weights_fit', 'arch_option'
]

_LAYER_KEY = re.compile(r'^(?:module\.)?backbone\.layers\.(\d+)\.([^.]+)\.')


#: ``search_space`` recorded for an SM-NAS backbone: its architecture is a
#: backbone code string (:mod:`mmdetnas.spaces.resnet_code`), any code of
#: one of the SM-NAS block types
SMNAS_SPACE = dict(name='smnas_resnet_code')

_DETNAS_TYPES = ('DetNASShuffleNetV2', 'mmdetnas.DetNASShuffleNetV2')
_SMNAS_TYPES = ('SMNASResNet', 'mmdetnas.SMNASResNet')


def _searchable_backbone(model):
    """``model.backbone`` when it is a DetNAS (``DetNASShuffleNetV2``) or
    SM-NAS (``SMNASResNet``) backbone, else ``None``."""
    from mmengine.model import is_model_wrapper

    from mmdetnas.models.backbones.detnas_shufflenetv2 import \
        DetNASShuffleNetV2
    from mmdetnas.models.backbones.smnas_resnet import SMNASResNet
    if is_model_wrapper(model):
        model = model.module
    backbone = getattr(model, 'backbone', None)
    return backbone if isinstance(backbone,
                                  (DetNASShuffleNetV2, SMNASResNet)) else None


def _built_arch(backbone):
    """The built backbone's architecture: a list of choice names (DetNAS;
    ``None`` for a supernet) or a code string (SM-NAS)."""
    from mmdetnas.spaces.resnet_code import format_code
    code = getattr(backbone, 'code', None)
    if code is not None:
        return format_code(code)
    fixed = backbone.fixed_arch
    return list(fixed) if fixed is not None else None


def _arch_text(arch) -> str:
    return arch if isinstance(arch, str) else ','.join(arch)


def model_arch_meta(model) -> Optional[dict]:
    """``dict(arch, search_space)`` of the model's searchable backbone
    (``model.backbone``), ``None`` when it has none.

    * DetNAS (``DetNASShuffleNetV2``): ``arch`` the fixed architecture as
      choice names (``None`` for a supernet), ``search_space`` the space's
      ``to_dict()``;
    * SM-NAS (``SMNASResNet``): ``arch`` the canonical backbone code string
      (e.g. ``'r18_64_11-21-21-21'``), ``search_space`` :data:`SMNAS_SPACE`.
    """
    backbone = _searchable_backbone(model)
    if backbone is None:
        return None
    if getattr(backbone, 'code', None) is not None:
        return dict(arch=_built_arch(backbone),
                    search_space=dict(SMNAS_SPACE))
    return dict(arch=_built_arch(backbone),
                search_space=backbone.search_space.to_dict())


def _state_dict(ckpt) -> dict:
    if not isinstance(ckpt, dict):
        raise ValueError(f'the checkpoint holds no state dict (got a '
                         f'{type(ckpt).__name__})')
    sd = ckpt.get('state_dict', ckpt)
    if not isinstance(sd, dict):
        raise ValueError(f'the checkpoint holds no state dict (its '
                         f"'state_dict' is a {type(sd).__name__})")
    return {(k[7:] if k.startswith('module.') else k): v
            for k, v in sd.items()}


def checkpoint_arch(ckpt: dict) -> Tuple[Optional[list], Optional[dict],
                                         str]:
    """The architecture a checkpoint holds: ``(arch, search_space,
    source)``.

    ``source`` is ``'meta'`` (written by :class:`RecordArchHook` or
    ``export_subnet``), ``'keys'`` (inferred: every searchable layer of the
    checkpoint holds exactly one choice block, so the checkpoint is a
    subnet of those choices; ``search_space`` is then ``None``) or
    ``'none'`` (a supernet, or no DetNAS backbone: ``arch`` is ``None``).
    """
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    if isinstance(meta, dict) and 'search_space' in meta:
        arch = meta.get('arch')
        if isinstance(arch, str):  # an SM-NAS backbone code
            return arch, meta.get('search_space'), 'meta'
        return (list(arch) if arch is not None else None,
                meta.get('search_space'), 'meta' if arch else 'none')
    layers = {}
    for key in _state_dict(ckpt):
        m = _LAYER_KEY.match(key)
        if m:
            layers.setdefault(int(m.group(1)), set()).add(m.group(2))
    if layers and sorted(layers) == list(range(len(layers))) and all(
            len(c) == 1 for c in layers.values()):
        return [next(iter(layers[i])) for i in range(len(layers))], None, \
            'keys'
    return None, None, 'none'


def arch_option(arch, neck_channels: Optional[Sequence[int]] = None) -> str:
    """The ``--cfg-options`` item(s) that set ``arch`` (choice names, or an
    SM-NAS code string; with ``neck_channels`` also the neck's input
    channels the code's output stages need)."""
    opt = 'model.backbone.arch=' + _arch_text(arch)
    if neck_channels is not None:
        opt += (' model.neck.in_channels=[' +
                ','.join(str(c) for c in neck_channels) + ']')
    return opt


def _code_channels(code: str, backbone_cfg) -> Optional[list]:
    """The output channels of ``code`` at the backbone's ``out_indices``
    (what ``model.neck.in_channels`` must be), ``None`` when the code does
    not parse."""
    from mmdetnas.spaces.resnet_code import parse_code
    try:
        channels = parse_code(code).stage_channels
    except ValueError:
        return None
    return [channels[i] for i in backbone_cfg.get('out_indices', (0, 1, 2,
                                                                  3))]


def _fit_smnas_code(cfg, backbone, code: str, filename: str,
                    explicit: bool) -> Optional[str]:
    """:func:`fit_arch_to_checkpoint` for an ``SMNASResNet`` backbone: the
    recorded code replaces the config's (with ``model.neck.in_channels``)
    unless the user set the architecture."""
    from mmdetnas.spaces.resnet_code import format_code, parse_code
    current = backbone.get('arch')
    try:
        current = format_code(parse_code(current))
    except (ValueError, TypeError) as e:
        if explicit:
            raise ValueError(f'model.backbone.arch: {e}') from e
    if current == code:
        return None
    channels = _code_channels(code, backbone)
    if explicit:
        raise ValueError(
            f'checkpoint {filename!r} records the backbone code {code}, but '
            f'the model would be built with {current} (given): the weights '
            f'would not fit (the tool would run another network). Drop the '
            f'option, or use --cfg-options {arch_option(code, channels)}')
    backbone['arch'] = code
    neck = cfg.model.get('neck')
    for n in (neck if isinstance(neck, (list, tuple)) else [neck]):
        if n is not None and 'in_channels' in n and channels is not None:
            n['in_channels'] = channels
            break
    return (f'checkpoint {filename!r} records the backbone code {code}; '
            f'using it (the config built {current}; '
            f'model.neck.in_channels={channels})')


def _names(backbone_cfg_arch, space) -> Optional[list]:
    from mmdetnas.spaces.arch import resolve_arch
    if backbone_cfg_arch is None:
        return None
    _, arch = resolve_arch(backbone_cfg_arch, space)
    return list(arch)


def fit_arch_to_checkpoint(cfg, ckpt: dict, filename: str,
                           explicit: bool) -> Optional[str]:
    """Make ``cfg.model.backbone`` (a ``DetNASShuffleNetV2``) build the
    architecture of the checkpoint.

    * the checkpoint records no architecture (a supernet, a model without a
      DetNAS backbone): nothing changes;
    * the config's architecture is the checkpoint's: nothing changes;
    * it differs and the user did not set it (``explicit`` False: it is the
      config's default): when the checkpoint *records* its architecture
      (meta) that architecture and its search space replace the config's,
      and the returned message says so; when it is only read from the keys
      (an older checkpoint) it is refused with the option that fits (a
      kernel-entangled supernet of ``k x k`` choices has the keys of the
      all-largest-kernel subnet, so keys alone are not trusted to pick the
      network);
    * it differs and the user set it (``--cfg-options model.backbone.arch``):
      refused.

    Args:
        cfg (Config): the tool's config.
        ckpt (dict): the loaded checkpoint.
        filename (str): its path (for the messages).
        explicit (bool): whether the user set ``model.backbone.arch``.

    Returns:
        str | None: a log message when the architecture was replaced.

    Raises:
        ValueError: an explicit architecture that is not the checkpoint's,
            or a default one that is not the one read from its keys,
            naming both and the option that fits.
    """
    backbone = cfg.get('model', {}).get('backbone', {})
    if backbone.get('type') in _SMNAS_TYPES:
        arch, _, source = checkpoint_arch(ckpt)
        if isinstance(arch, str) and source == 'meta':
            return _fit_smnas_code(cfg, backbone, arch, filename, explicit)
        return None
    if backbone.get('type') not in _DETNAS_TYPES:
        return None
    arch, space, source = checkpoint_arch(ckpt)
    if arch is None or isinstance(arch, str):
        return None
    try:
        current = _names(backbone.get('arch'), backbone.get('search_space'))
    except (ValueError, KeyError, FileNotFoundError) as e:
        if explicit:  # the user's own architecture is invalid: say so
            raise ValueError(f'model.backbone.arch: {e}') from e
        current = None
    if current == arch:
        return None
    how = 'records' if source == 'meta' else 'holds the weights of'
    if explicit or source != 'meta':
        given = ','.join(current) if current else backbone.get('arch')
        raise ValueError(
            f'checkpoint {filename!r} {how} the architecture '
            f'{",".join(arch)}, but the model would be built with '
            f'{given if given is not None else "the supernet"}'
            f'{" (given)" if explicit else " (the config default)"}: the '
            f'weights would not fit (the tool would run another network). '
            + ('Drop the option, or use ' if source == 'meta' else 'Use ')
            + f'--cfg-options {arch_option(arch)}')
    backbone['arch'] = arch
    if space is not None:
        backbone['search_space'] = space
    return (f'checkpoint {filename!r} {how} the architecture '
            f'{",".join(arch)}; using it (the config built '
            f'{",".join(current) if current else "the supernet"})')


def check_weights_fit(model, ckpt: dict, filename: str,
                      what: str = 'checkpoint',
                      ignore_suffixes: Sequence[str] = ('shuffle_order', ),
                      max_names: int = 4) -> None:
    """Refuse a checkpoint that would load into ``model`` only partly.

    Checked: the keys of the model's searchable backbone (DetNAS
    ``DetNASShuffleNetV2`` or SM-NAS ``SMNASResNet``, ``backbone.*``) must
    be exactly the checkpoint's, with the same shapes (another architecture
    or search space fails here); and no top-level module of the model that
    has weights may be left without any (e.g. a classification checkpoint
    given to a detector: its neck and heads). Keys of other modules are
    left to mmengine's loading, which logs them (mmdet converts some older
    layouts while loading). Models without a searchable backbone are
    not checked.

    Raises:
        ValueError: naming the mismatching keys, the architecture the
            checkpoint holds (recorded or inferred) and the
            ``--cfg-options model.backbone.arch=...`` that would fit.
    """
    backbone = _searchable_backbone(model)
    if backbone is None:
        return
    from mmengine.model import is_model_wrapper
    if is_model_wrapper(model):
        model = model.module
    sd = {k: v for k, v in _state_dict(ckpt).items()
          if not any(k.endswith(s) for s in ignore_suffixes)}
    own = model.state_dict()
    theirs = [k for k in sd if k.startswith('backbone.')]
    missing, unexpected, shapes = weight_mismatches(own, sd, 'backbone.')
    empty = sorted({k.split('.')[0] for k in own} -
                   {k.split('.')[0] for k in sd})
    if not (missing or unexpected or shapes or empty):
        return

    def names(keys):
        return name_keys(keys, max_names)

    parts = []
    if missing:
        parts.append(f'{len(missing)} backbone weight(s) missing (e.g. '
                     f'{names(missing)})')
    if unexpected:
        parts.append(f'{len(unexpected)} backbone key(s) not in the model '
                     f'(e.g. {names(unexpected)})')
    if shapes:
        parts.append(f'{len(shapes)} backbone tensor(s) of another shape '
                     f'(checkpoint vs model: {names(shapes)})')
    if empty:
        parts.append(f'no weights at all for {empty}')
    arch, space, source = checkpoint_arch(ckpt)
    built = _built_arch(backbone)
    built = _arch_text(built) if built is not None else 'the supernet'
    if arch is not None:
        channels = None
        if isinstance(arch, str):
            channels = _code_channels(arch, dict(
                out_indices=getattr(backbone, 'out_indices', (0, 1, 2, 3))))
        space_name = (space.get('name', space) if isinstance(space, dict)
                      else space)
        hint = (f' The checkpoint '
                f'{"records" if source == "meta" else "holds the weights of"}'
                f' the architecture {_arch_text(arch)}'
                + (f' (search space {space_name})' if space else '')
                + f'; the model was built with {built}. To use it: '
                f'--cfg-options {arch_option(arch, channels)}')
    elif source == 'none' and any('.layers.' in k for k in theirs) and \
            not empty:
        hint = (f' The checkpoint holds a supernet (several choices per '
                f'layer); the model was built with {built}: export the '
                f'subnet first (tools/model_converters/export_subnet.py)')
    else:
        hint = ''
    raise ValueError(f'{what} {filename!r} does not fit the model of this '
                     f'config: ' + '; '.join(parts) + '.' + hint)
