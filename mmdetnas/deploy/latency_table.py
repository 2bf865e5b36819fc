"""Latency lookup tables: a DetNAS path's deployed latency without timing it.

A table is built once on the target machine (device, inference backend,
input shape) and copied to wherever the search runs. It holds the measured
median latency (ms) of every distinct block of a DetNAS ShuffleNetV2 search
space at the input it gets at the table's shape (layer x choice; layers of
a stage after its first block share one entry, they see the same input),
plus the parts every path has: the stem, the last conv when the backbone
has one, and the neck and dense head of the config's model
(:class:`mmdetnas.deploy.DeployableModel`).

Prediction. Each entry was timed as a separate call with its weights and
input hot in the caches; the whole network is one call that streams every
block's weights and activations through them, and on this project's CPU
it runs 15-25% slower than the sum of its blocks. A table therefore also
times a few whole paths end to end (``path <arch>`` entries: the
all-``c`` path of every choice ``c``, plus two seeded random paths) and
predicts::

    sum(path)     = sum(entry[b] for b in blocks(path) + fixed parts)
                    - (n - 1) * call_overhead_ms
    latency(path) = scale * sum(path)
    scale         = median over the timed paths p of measured(p) / sum(p)

with ``n`` the number of summed entries and ``call_overhead_ms`` the
median of running a one-element graph on the backend (each entry paid
one call, the network pays one). The additive part is the latency table
of Once-for-All (Cai et al., ICLR 2020) and FBNet (Wu et al., CVPR 2019);
the one-number scale keeps the ranking of the sum and removes its bias.
``benchmarks/bench_latency_table.py`` measures how well this predicts
exported networks timed end to end.

The file records what it was built for (search space, input shape, batch,
backend and its version, device, threads, timing settings, the fixed parts
and their config); a search refuses a table built for another space,
shape, backend or device, naming the mismatch. A build writes the file
after every entry (atomically) and resumes from it after a kill.
"""
import copy
import hashlib
import json
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from mmdetnas.spaces.arch import Arch, resolve_arch
from mmdetnas.spaces.search_space import SearchSpace, build_search_space
from mmdetnas.utils.atomic import atomic_write

#: ``format`` field of a table file.
TABLE_FORMAT = 'mmdetnas-latency-table'
#: ``version`` of the file layout.
TABLE_VERSION = 1
#: entry names of the parts every path has
STEM, LAST_CONV, NECK, HEAD, OVERHEAD = ('stem', 'last_conv', 'neck', 'head',
                                         'call_overhead')
#: prefix of the entries of whole paths timed end to end (calibration)
PATH_PREFIX = 'path '
#: seeded random paths timed end to end besides the all-``c`` paths
NUM_RANDOM_CALIBRATION = 2


class LatencyTableError(ValueError):
    """A table that cannot be used: unreadable, cut, or built for another
    space, shape, backend or device, or lacking a block."""


def block_key(choice: str, in_ch: int, out_ch: int, stride: int,
              hw: Sequence[int]) -> str:
    """Entry name of a block: ``'shuffle_3x3 16>64 s2 @112x112'``."""
    return f'{choice} {in_ch}>{out_ch} s{stride} @{hw[0]}x{hw[1]}'


def _space_dict(space: SearchSpace) -> dict:
    return space.to_dict()


def _sha(obj) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class LatencyTable:
    """A latency lookup table (see the module docstring).

    Args:
        built_for (dict): What it was built for: ``search_space`` (dict),
            ``shape`` ``[H, W]``, ``batch``, ``backend``,
            ``backend_version``, ``device``, ``threads``, ``warmup``,
            ``repeats``, ``parts`` (fixed parts, e.g. ``['stem', 'neck']``),
            ``parts_sha`` (hash of the backbone settings and the neck /
            head configs), ``layer_keys`` (one ``{choice: key}`` per
            layer).
        entries (dict): ``key -> {'ms', 'iqr_ms', 'repeats'}``.
        complete (bool): Every entry measured.
    """

    def __init__(self, built_for: dict, entries: Optional[dict] = None,
                 complete: bool = False):
        self.built_for = built_for
        self.entries: Dict[str, dict] = dict(entries or {})
        self.complete = complete

    # ------------------------------------------------------------- file
    def to_dict(self) -> dict:
        return dict(format=TABLE_FORMAT, version=TABLE_VERSION,
                    built_for=self.built_for, complete=self.complete,
                    entries=self.entries)

    def save(self, path: str) -> None:
        """Write the table atomically (a kill leaves the old or the new
        file)."""
        with atomic_write(path) as f:
            json.dump(self.to_dict(), f, indent=1, sort_keys=True)

    @classmethod
    def load(cls, path: str) -> 'LatencyTable':
        """Read a table file.

        Raises:
            FileNotFoundError: no such file.
            LatencyTableError: not JSON (a cut or corrupt file), not a
                latency table, another layout version, or missing fields;
                the message names the file and what was expected.
        """
        if not osp.isfile(path):
            raise FileNotFoundError(f'latency table not found: {path!r}')
        try:
            with open(path, encoding='utf-8') as f:
                data = json.load(f)
        except (ValueError, UnicodeDecodeError) as e:
            raise LatencyTableError(
                f'latency table {path!r} is not readable JSON ({e}): a cut '
                'or corrupt file; build it again with '
                'tools/analysis_tools/latency_table.py') from e
        if not isinstance(data, dict) or data.get('format') != TABLE_FORMAT:
            raise LatencyTableError(
                f'{path!r} is not a latency table (expected a JSON object '
                f'with format={TABLE_FORMAT!r})')
        if data.get('version') != TABLE_VERSION:
            raise LatencyTableError(
                f'latency table {path!r} has layout version '
                f'{data.get("version")!r}; this mmdetnas reads version '
                f'{TABLE_VERSION}')
        need = ('search_space', 'shape', 'backend', 'device', 'parts',
                'layer_keys')
        built_for = data.get('built_for')
        missing = [k for k in need if not isinstance(built_for, dict)
                   or k not in built_for]
        if missing or not isinstance(data.get('entries'), dict):
            raise LatencyTableError(
                f'latency table {path!r} lacks '
                f'{missing or ["entries"]}: a damaged file')
        table = cls(built_for, data['entries'], bool(data.get('complete')))
        table.path = path
        return table

    # ------------------------------------------------------------ checks
    @property
    def space(self) -> SearchSpace:
        return build_search_space(dict(self.built_for['search_space']))

    @property
    def shape(self) -> Tuple[int, int]:
        return tuple(int(s) for s in self.built_for['shape'])

    def describe(self) -> str:
        b = self.built_for
        return (f"{b['backend']} {b.get('backend_version', '?')} on "
                f"{b['device']}, {b.get('threads', '?')} thread(s), input "
                f"{b.get('batch', 1)}x3x{b['shape'][0]}x{b['shape'][1]}, "
                f"space {b['search_space'].get('name')}, parts "
                f"{['blocks'] + list(b['parts'])}")

    def mismatches(self, space: Optional[SearchSpace] = None,
                   shape: Optional[Sequence[int]] = None,
                   backend: Optional[str] = None,
                   device: Optional[str] = None,
                   parts_sha: Optional[str] = None) -> List[str]:
        """What differs between the table and what a user needs; ``None``
        means "any"."""
        b, out = self.built_for, []
        if space is not None and _space_dict(space) != b['search_space']:
            theirs = b['search_space']
            diff = [k for k in _space_dict(space)
                    if _space_dict(space)[k] != theirs.get(k)]
            out.append(f"search space: the table is for "
                       f"{theirs.get('name')!r}, the model's is "
                       f'{space.name!r} (differing: {diff})')
        if shape is not None and list(map(int, shape)) != list(b['shape']):
            out.append(f"input shape: the table is for {list(b['shape'])} "
                       f'(H, W), the search times {list(shape)}')
        if backend is not None and backend != b['backend']:
            out.append(f"backend: the table is for {b['backend']!r}, "
                       f'{backend!r} was asked for')
        if device is not None and device != b['device']:
            out.append(f"device: the table is for {b['device']!r}, "
                       f'{device!r} was asked for')
        if (parts_sha is not None and b.get('parts_sha') is not None
                and parts_sha != b['parts_sha']):
            out.append('model: the table timed another backbone setting, '
                       'neck or dense head than this config has')
        return out

    def check(self, **expected) -> None:
        """Refuse a table built for something else.

        Args:
            **expected: ``space``, ``shape``, ``backend``, ``device``,
                ``parts_sha`` (see :meth:`mismatches`).

        Raises:
            LatencyTableError: the table is incomplete or differs; the
                message names every mismatch.
        """
        where = getattr(self, 'path', 'the latency table')
        if not self.complete:
            raise LatencyTableError(
                f'{where} is incomplete ({len(self.entries)} entries '
                'measured): finish it by running the same '
                'latency_table.py command again (it resumes)')
        bad = self.mismatches(**expected)
        if bad:
            raise LatencyTableError(
                f'{where} was built for another setting: ' + '; '.join(bad)
                + f'. The table: {self.describe()}')

    # --------------------------------------------------------- prediction
    def keys(self, arch: Arch) -> List[str]:
        """The entries a path's latency sums: the stem, one block per
        layer, then the other fixed parts.

        Raises:
            LatencyTableError: the architecture has the wrong length or a
                choice the table has no block for (naming layer and
                choice).
        """
        layer_keys = self.built_for['layer_keys']
        if len(arch) != len(layer_keys):
            raise LatencyTableError(
                f'architecture of {len(arch)} layers, the table has '
                f'{len(layer_keys)}')
        out = [STEM]
        for i, (choice, keys) in enumerate(zip(arch, layer_keys)):
            if choice not in keys:
                raise LatencyTableError(
                    f'the latency table has no block for layer {i} choice '
                    f'{choice!r}; it has {sorted(keys)}')
            out.append(keys[choice])
        out += [p for p in self.built_for['parts'] if p != STEM]
        return out

    @property
    def call_overhead_ms(self) -> float:
        e = self.entries.get(OVERHEAD)
        return float(e['ms']) if e else 0.0

    def breakdown(self, arch: Arch) -> Dict[str, float]:
        """``entry -> ms`` for every entry of ``arch``'s sum, in order."""
        out = {}
        for k in self.keys(arch):
            if k not in self.entries:
                raise LatencyTableError(
                    f'the latency table lacks the entry {k!r} (an '
                    'incomplete build: run it again to finish it)')
            out[k] = out.get(k, 0.0) + float(self.entries[k]['ms'])
        return out

    def _arch(self, arch) -> Arch:
        if isinstance(arch, tuple) and all(isinstance(c, str) for c in arch):
            return arch
        return resolve_arch(arch, self.space)[1]

    def summed(self, arch) -> float:
        """The additive part (ms): ``sum(entries of arch) - (n - 1) *
        call_overhead_ms``, ``n`` the number of summed entries (a layer's
        block counts once per layer).

        Raises:
            LatencyTableError: see :meth:`keys`, or a missing entry.
            ValueError: an invalid architecture.
        """
        keys = self.keys(self._arch(arch))
        missing = [k for k in keys if k not in self.entries]
        if missing:
            raise LatencyTableError(
                f'the latency table lacks the entries {missing[:3]} (an '
                'incomplete build: run it again to finish it)')
        total = sum(float(self.entries[k]['ms']) for k in keys)
        return total - (len(keys) - 1) * self.call_overhead_ms

    def calibration(self) -> Dict[str, Tuple[float, float]]:
        """``path label -> (measured ms, summed ms)`` of the whole paths
        the table timed end to end."""
        out = {}
        for k, e in self.entries.items():
            if k.startswith(PATH_PREFIX):
                label = k[len(PATH_PREFIX):]
                out[label] = (float(e['ms']),
                              self.summed(tuple(label.split(','))))
        return out

    @property
    def scale(self) -> float:
        """Median of ``measured / summed`` over the calibration paths (1.0
        without any)."""
        ratios = sorted(m / s for m, s in self.calibration().values())
        if not ratios:
            return 1.0
        mid = len(ratios) // 2
        return (ratios[mid] if len(ratios) % 2 else
                0.5 * (ratios[mid - 1] + ratios[mid]))

    def predict(self, arch) -> float:
        """Predicted latency (ms) of the exported network with path
        ``arch`` (anything :func:`mmdetnas.spaces.resolve_arch` takes):
        ``scale * summed(arch)``.

        Raises:
            LatencyTableError: see :meth:`keys`.
            ValueError: an invalid architecture.
        """
        return self.scale * self.summed(arch)


# ---------------------------------------------------------------- building
class _TupleIn(nn.Module):
    """``module((x0, x1, ...))`` called as ``forward(x0, x1, ...)``, with
    flat tensor outputs (necks and heads take a tuple of maps)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, *xs):
        from .onnx_export import _flatten
        return tuple(_flatten(self.module(tuple(xs))))


class _CallOverhead(nn.Module):
    """A one-element graph: what one call of the backend costs."""

    def forward(self, x):
        return torch.relu(x)


def _detnas_backbone_cfg(model_cfg):
    from mmdetnas.utils.arch_meta import _DETNAS_TYPES
    bb = model_cfg.get('backbone', model_cfg)
    if bb.get('type') not in _DETNAS_TYPES:
        raise LatencyTableError(
            f"latency tables cover DetNAS ShuffleNetV2 search spaces; the "
            f"config's backbone is {bb.get('type')!r} (SM-NAS searches time "
            'each candidate on a backend instead: train_cfg.latency_backend)')
    return bb


def build_model(model_cfg, arch=None) -> nn.Module:
    """``model_cfg`` built for timing: no pretrained weights loaded, the
    DetNAS backbone a supernet with a block per choice (``arch=None``) or
    the subnet ``arch``; eval mode.

    Raises:
        LatencyTableError: the model has no DetNAS ShuffleNetV2 backbone.
    """
    from mmdet.registry import MODELS
    cfg = copy.deepcopy(model_cfg)
    bb = _detnas_backbone_cfg(cfg)
    bb.pop('init_cfg', None)
    if bb.get('arch') is not None and bb.get('search_space') is None:
        bb['search_space'] = resolve_arch(bb['arch'])[0].to_dict()
    bb['arch'] = None if arch is None else list(arch)
    bb['weight_sharing'] = 'none'
    bb['frozen_stages'] = -1
    cfg.pop('init_cfg', None)
    _plain_bn(cfg)
    return MODELS.build(cfg).eval()


def _plain_bn(cfg) -> None:
    """SyncBN -> BN in place: the same network at inference, and one that
    builds and exports without a process group."""
    if isinstance(cfg, dict):
        if cfg.get('type') in ('SyncBN', 'MMSyncBN'):
            cfg['type'] = 'BN'
        for v in cfg.values():
            _plain_bn(v)
    elif isinstance(cfg, (list, tuple)):
        for v in cfg:
            _plain_bn(v)


def parts_fingerprint(model_cfg) -> str:
    """A hash of what a table's fixed parts depend on besides the space:
    the backbone's settings other than its path and weights, the neck and
    the dense head configs."""
    cfg = copy.deepcopy(model_cfg)
    _plain_bn(cfg)
    bb = dict(_detnas_backbone_cfg(cfg))
    for k in ('arch', 'init_cfg', 'weight_sharing', 'frozen_stages',
              'norm_eval'):
        bb.pop(k, None)
    parts = dict(backbone=bb, neck=cfg.get('neck'),
                 head=cfg.get('bbox_head') if 'roi_head' not in cfg else None)
    return _sha(json.loads(json.dumps(parts, default=str)))


def _plan(model: nn.Module, shape: Sequence[int], batch: int):
    """What to time: ``[(key, module, inputs)]`` and the per-layer keys,
    from one forward pass of the supernet at ``shape``."""
    from .onnx_export import DeployableModel, deployable_input
    deploy = DeployableModel(model)
    backbone = deploy.backbone
    space = backbone.search_space
    first = tuple(space.choices[0] for _ in range(space.num_layers))
    backbone.set_arch(first)
    seen: Dict[str, Tuple] = {}
    hooks = []

    def grab(name):
        def hook(mod, args):
            seen[name] = tuple(a.shape for a in args)
        return hook

    for i, layer in enumerate(backbone.layers):
        hooks.append(layer[first[i]].register_forward_pre_hook(grab(i)))
    if backbone.last_conv is not None:
        hooks.append(backbone.last_conv.register_forward_pre_hook(
            grab(LAST_CONV)))
    if deploy.neck is not None:
        hooks.append(deploy.neck.register_forward_pre_hook(
            lambda m, a: seen.__setitem__(NECK, tuple(
                t.shape for t in a[0]))))
    if deploy.head is not None:
        hooks.append(deploy.head.register_forward_pre_hook(
            lambda m, a: seen.__setitem__(HEAD, tuple(
                t.shape for t in a[0]))))
    x = deployable_input(shape, batch)
    with torch.no_grad():
        deploy(x)
    for h in hooks:
        h.remove()

    def zeros(shapes):
        return tuple(torch.rand(s) for s in shapes)

    plan = [(OVERHEAD, _CallOverhead(), (torch.ones(1, 1, 1, 1), )),
            (STEM, backbone.stem, (x, ))]
    layer_keys, done = [], set()
    for spec in space.layers():
        shp = seen[spec.index][0]
        keys = {}
        for c in space.choices:
            key = block_key(c, spec.in_channels, spec.out_channels,
                            spec.stride, shp[2:])
            keys[c] = key
            if key not in done:
                done.add(key)
                plan.append((key, backbone.layers[spec.index][c],
                             zeros(seen[spec.index])))
        layer_keys.append(keys)
    parts = [STEM]
    if backbone.last_conv is not None:
        plan.append((LAST_CONV, backbone.last_conv, zeros(seen[LAST_CONV])))
        parts.append(LAST_CONV)
    if deploy.neck is not None:
        plan.append((NECK, _TupleIn(deploy.neck), zeros(seen[NECK])))
        parts.append(NECK)
    if deploy.head is not None:
        plan.append((HEAD, _TupleIn(deploy.head), zeros(seen[HEAD])))
        parts.append(HEAD)
    return plan, layer_keys, parts, space


def calibration_paths(space: SearchSpace) -> List[Arch]:
    """The whole paths a table times end to end: the all-``c`` path of
    every choice, then :data:`NUM_RANDOM_CALIBRATION` random paths (seed
    0)."""
    import random
    rng = random.Random(0)
    paths = [tuple(c for _ in range(space.num_layers))
             for c in space.choices]
    for _ in range(NUM_RANDOM_CALIBRATION):
        paths.append(tuple(rng.choice(space.choices)
                           for _ in range(space.num_layers)))
    return paths



def build_latency_table(model_cfg, backend, shape: Sequence[int], out: str,
                        batch: int = 1, progress: bool = True,
                        logger=print) -> LatencyTable:
    """Build (or finish) the latency table of ``model_cfg``'s DetNAS search
    space on ``backend`` at input ``shape``, writing ``out`` after every
    round.

    Every entry (one-element graph, stem, each distinct block, the fixed
    parts, then the calibration paths of :func:`calibration_paths`) is
    loaded on the backend once (exported to ONNX for the ONNX backends)
    and warmed up (``backend.warmup`` untimed calls); then
    ``backend.rounds`` rounds time every entry in turn
    (``backend.repeats`` timed calls each, one by default), so a drift of
    the machine's speed touches every entry alike. An
    entry's latency is the median of its timed calls over all rounds. The
    file is rewritten atomically after every round with the calls timed so
    far; a killed build run again with the same settings keeps the
    finished rounds and times the rest.

    Args:
        model_cfg (dict | ConfigDict): A model config with a
            ``DetNASShuffleNetV2`` backbone (detector or classifier;
            supernet or subnet config: the space is what counts).
        backend (LatencyBackend): Where to time
            (:func:`mmdetnas.deploy.build_backend`).
        shape (Sequence[int]): ``(H, W)`` of the network input.
        out (str): The table file; an existing one built for the same
            setting is resumed (its entries kept), one built for another
            is refused.
        batch (int): Batch size.
        progress (bool): Show a progress bar with an ETA.
        logger (callable): Where to print what happens.

    Returns:
        LatencyTable: the complete table (also in ``out``).

    Raises:
        LatencyTableError: ``out`` is a damaged table or was built for
            another setting (nothing in it is changed), or the model has
            no DetNAS backbone.
        ValueError: a bad ``shape``.
    """
    shape = [int(s) for s in shape]
    if len(shape) != 2 or min(shape) < 32:
        raise ValueError(f'shape must be (H, W) with H, W >= 32, got {shape}')
    model = build_model(model_cfg)
    plan, layer_keys, parts, space = _plan(model, shape, batch)
    for arch in calibration_paths(space):
        plan.append((PATH_PREFIX + ','.join(arch), arch, None))
    built_for = dict(
        search_space=_space_dict(space), shape=shape, batch=int(batch),
        parts=parts, parts_sha=parts_fingerprint(model_cfg),
        layer_keys=layer_keys, **backend.settings())
    samples: Dict[str, List[float]] = {}
    rounds_done = 0
    if osp.exists(out):
        table = LatencyTable.load(out)
        bad = table.mismatches(space=space, shape=shape,
                               backend=backend.name,
                               device=backend.device_name,
                               parts_sha=built_for['parts_sha'])
        for k in ('threads', 'batch', 'warmup', 'repeats', 'rounds',
                  'backend_version'):
            if table.built_for.get(k) != built_for[k]:
                bad.append(f'{k}: the table has '
                           f'{table.built_for.get(k)!r}, this build '
                           f'{built_for[k]!r}')
        if bad:
            raise LatencyTableError(
                f'{out!r} holds a table built for another setting ('
                + '; '.join(bad) + '); nothing was changed: choose another '
                '--out, or remove the file to rebuild')
        if table.complete:
            logger(f'{out}: already complete ({len(table.entries)} entries)')
            table.path = out
            return table
        rounds_done = int(table.built_for.get('rounds_done', 0))
        samples = {k: list(e.get('samples', []))
                   for k, e in table.entries.items()}
        if any(len(samples.get(k, ())) != rounds_done * backend.repeats
               for k, _, _ in plan):
            rounds_done, samples = 0, {}
        logger(f'{out}: resuming after {rounds_done} of {backend.rounds} '
               'rounds')
        built_for['build_seconds'] = table.built_for.get('build_seconds', 0)
    table = LatencyTable(built_for)
    from .onnx_export import DeployableModel, deployable_input
    bar = None
    if progress:
        from mmengine.utils import ProgressBar
        logger(f'loading {len(plan)} entries on {backend.name}, then '
               f'{backend.rounds - rounds_done} timing round(s)')
        bar = ProgressBar(len(plan) * (1 + backend.rounds - rounds_done))
    t0 = time.time()
    runs = []
    for key, module, inputs in plan:
        if inputs is None:  # a calibration path, built when its turn comes
            module = DeployableModel(build_model(model_cfg, module))
            inputs = (deployable_input(shape, batch), )
        run = backend.load(module.eval(), inputs)
        backend.warm(run)
        runs.append((key, run, inputs[0].shape))
        if bar is not None:
            bar.update()
    for r in range(rounds_done, backend.rounds):
        for key, run, shp in runs:
            samples.setdefault(key, []).extend(backend.sample(run))
            if bar is not None:
                bar.update()
        for key, _, shp in runs:
            t = backend.summarize(samples[key], shp)
            table.entries[key] = dict(
                ms=t.median_ms, iqr_ms=t.iqr_ms, repeats=t.repeats,
                samples=[round(v, 5) for v in samples[key]])
        table.built_for['rounds_done'] = r + 1
        table.built_for['build_seconds'] = round(
            built_for.get('build_seconds', 0) + time.time() - t0, 2)
        t0 = time.time()
        table.save(out)
    table.complete = True
    table.save(out)
    table.path = out
    if progress:
        logger('')
    return table
