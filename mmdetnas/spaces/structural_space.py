"""SM-NAS structural-level search space: combinations of mmdet modules.

SM-NAS (Yao et al., AAAI 2020), Sec. 3.1: the first stage searches which
backbone, feature-fusion neck, RPN, RoI head (or one-stage head) and input
size to combine, trading accuracy against inference time. On mmdet every
module is a registered class, so a *structure* is a choice of config
fragments merged into a base detector config.

A space is described in a config as an ordered mapping of components::

    structural_space = dict(
        backbone=dict(choices=dict(
            r18=dict(out_channels=[64, 128, 256, 512],
                     cfg=dict(model=dict(backbone=dict(
                         _delete_=True, type='ResNet', depth=18, ...)))),
            ...)),
        neck=dict(choices=dict(
            fpn128=dict(cfg=dict(model=dict(neck=dict(
                _delete_=True, type='FPN', out_channels=128, num_outs=5)))),
            ...)),
        head=dict(choices=dict(
            two_stage=dict(),                     # the base's RPN + RoI head
            retinanet=dict(drop=['model.rpn_head', 'model.roi_head'],
                           cfg=dict(model=dict(type='RetinaNet', ...))))),
        rpn=dict(when=dict(head=['two_stage']), choices=...),
        roi_head=dict(when=dict(head=['two_stage']), choices=...),
        input_size=dict(choices=dict(s512=dict(scale=(512, 512)), ...)))

Each choice may hold ``cfg`` (merged into the config with mmengine's rules,
``_delete_`` included), ``drop`` (dotted keys removed after merging),
``out_channels`` (a backbone's stage channels) and ``scale`` (an input size
``(w, h)``). The compatibility rules are applied here, once, for every
combination (:meth:`StructuralSearchSpace.build_config`):

1. a component with ``when=dict(other=[choices])`` applies only when
   ``other`` (an earlier component) takes one of those choices; otherwise
   its gene is ``None`` (one-stage heads have no RPN and no RoI head);
2. the neck's ``in_channels`` are the chosen backbone's ``out_channels``;
3. the neck's width (``out_channels``) is the ``in_channels`` of the RPN
   head, the RoI extractor's ``out_channels`` and the ``in_channels`` of
   every box head (each stage of a cascade) and of a one-stage head;
4. every head gets the dataset's ``num_classes``;
5. the chosen ``scale`` replaces the ``scale`` of every ``Resize`` /
   ``RandomResize`` in the train, val and test pipelines.

A genome is a dict ``{component: choice or None}`` (JSON-friendly); its key
is the tuple of the choices in component order.
"""
import copy
import random as pyrandom
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config, ConfigDict

from .base import BaseSearchSpace

Genome = Dict[str, Optional[str]]
_RESIZES = ('Resize', 'RandomResize', 'mmdet.Resize', 'mmdet.RandomResize',
            'mmcv.Resize', 'mmcv.RandomResize')


class StructuralSearchSpace(BaseSearchSpace):
    """Components of a detector and their choices (see the module doc).

    Args:
        components (dict): ordered ``name -> dict(choices=dict(name ->
            choice), when=None | dict(component=[choices]))``.
        num_classes (int, optional): Classes of the dataset, given to every
            head (rule 4); ``None`` keeps each head's own.

    Raises:
        ValueError: no component, a component without choices, a choice
            that is not a dict or has unknown fields, a ``when`` that names
            a later or unknown component or an unknown choice of it.
    """

    CHOICE_FIELDS = ('cfg', 'drop', 'out_channels', 'scale')
    COMPONENT_FIELDS = ('choices', 'when')
    SPACE_FIELDS = ('components', 'num_classes')

    def __init__(self, components: dict, num_classes: Optional[int] = None):
        if not components:
            raise ValueError('a structural search space needs at least one '
                             'component')
        self.components: Dict[str, dict] = {}
        self.when: Dict[str, Dict[str, List[str]]] = {}
        self.num_classes = num_classes
        for name, comp in components.items():
            if not isinstance(comp, dict):
                raise ValueError(
                    f'component {name!r}: expected dict(choices=dict(...), '
                    f'when=...), got {type(comp).__name__}')
            extra = set(comp) - set(self.COMPONENT_FIELDS)
            if extra:
                raise ValueError(
                    f'component {name!r}: unknown key(s) {sorted(extra)}; '
                    f'expected some of {self.COMPONENT_FIELDS}')
            choices = dict((comp or {}).get('choices') or {})
            if not choices:
                raise ValueError(f'component {name!r} has no choices')
            for cname, choice in choices.items():
                if not isinstance(choice, dict):
                    raise ValueError(
                        f'{name}.{cname}: a choice is a dict with fields '
                        f'{self.CHOICE_FIELDS}, got {type(choice).__name__}')
                extra = set(choice) - set(self.CHOICE_FIELDS)
                if extra:
                    raise ValueError(
                        f'{name}.{cname}: unknown field(s) {sorted(extra)}; '
                        f'expected some of {self.CHOICE_FIELDS}')
            when = dict((comp or {}).get('when') or {})
            for other, allowed in when.items():
                if other not in self.components:
                    raise ValueError(
                        f"{name}: when={{'{other}': ...}} must name an "
                        f'earlier component, one of {list(self.components)}')
                bad = [c for c in allowed
                       if c not in self.components[other]]
                if bad:
                    raise ValueError(
                        f'{name}: when names unknown choice(s) {bad} of '
                        f'{other!r}; expected some of '
                        f'{list(self.components[other])}')
            self.components[name] = choices
            self.when[name] = {k: list(v) for k, v in when.items()}

    @classmethod
    def from_cfg(cls, cfg) -> 'StructuralSearchSpace':
        """Build from a config dict ``dict(components=..., num_classes=...)``
        (or a bare components mapping)."""
        cfg = dict(cfg)
        if 'components' in cfg:
            extra = set(cfg) - set(cls.SPACE_FIELDS)
            if extra:
                raise ValueError(
                    f"unknown key(s) {sorted(extra)} beside 'components' in "
                    f'the search space; expected some of {cls.SPACE_FIELDS} '
                    f'(a component such as {sorted(extra)[0]!r} goes inside '
                    'components=dict(...))')
            return cls(cfg['components'], cfg.get('num_classes'))
        return cls(cfg)

    # ---------------------------------------------------------------- size
    def structures(self) -> Iterator[Genome]:
        """Every valid genome of the space, in component and choice
        order."""
        names = self.names

        def walk(i, partial):
            if i == len(names):
                yield dict(partial)
                return
            name = names[i]
            options = (list(self.components[name])
                       if self.applies(name, partial) else [None])
            for value in options:
                partial[name] = value
                yield from walk(i + 1, partial)
            partial.pop(name, None)

        yield from walk(0, {})

    def size(self, cap: int = 10**6) -> int:
        """Number of distinct structures (counted up to ``cap``)."""
        n = 0
        for _ in self.structures():
            n += 1
            if n >= cap:
                break
        return n

    def check_buildable(self, base: Config) -> int:
        """Check every choice before any training: for each choice of each
        component, the first structure holding it is built into a config
        (merges, drops and the compatibility rules) and every ``type`` in
        its model is looked up in the registries (mmdet / mmdetnas
        ``MODELS`` and ``TASK_UTILS``, mmengine's weight initialisers,
        ``mmcv.ops`` for RoI layers).

        Returns:
            int: the number of structures of the space.

        Raises:
            ValueError: a choice whose fragment does not build or names an
                unregistered type; the message names the component, the
                choice, the key path and close registered names.
        """
        first = {}
        count = 0
        for genome in self.structures():
            count += 1
            for name, value in genome.items():
                if value is not None and (name, value) not in first:
                    first[(name, value)] = genome
        for name, choices in self.components.items():
            for value in choices:
                genome = first.get((name, value))
                if genome is None:
                    raise ValueError(
                        f'structural choice {name}.{value} is in no '
                        f'structure of the space (its component never '
                        f'applies: when={self.when[name]})')
                try:
                    cfg = self.build_config(base, genome)
                except Exception as e:
                    raise ValueError(
                        f'structural choice {name}.{value} does not build '
                        f'(with {self.label(genome)}): {e}') from e
                for path, type_name in _types(cfg.model, 'model'):
                    if not _registered(type_name):
                        raise ValueError(
                            f'structural choice {name}.{value}: {path}.type'
                            f'={type_name!r} is not a registered type'
                            + _close(type_name)
                            + f' (checked with {self.label(genome)}, before '
                            'any training)')
        return count

    # ---------------------------------------------------------------- genes
    @property
    def names(self) -> List[str]:
        return list(self.components)

    def applies(self, component: str, genome: Genome) -> bool:
        """Whether ``component`` is part of the detector ``genome`` builds
        (rule 1)."""
        return all(genome.get(other) in allowed
                   for other, allowed in self.when[component].items())

    def key(self, genome: Genome) -> Tuple:
        """Hashable identity: the choices in component order."""
        return tuple(genome.get(c) for c in self.components)

    def validate(self, genome: Genome) -> Genome:
        """Check a genome; returns it in component order.

        Raises:
            ValueError: a missing or unknown component, an unknown choice,
                a choice for a component that does not apply, or ``None``
                for one that does (the message names them).
        """
        if not isinstance(genome, dict):
            raise ValueError(f'a structure is a dict component -> choice, '
                             f'got {genome!r}')
        unknown = set(genome) - set(self.components)
        if unknown:
            raise ValueError(f'unknown component(s) {sorted(unknown)}; '
                             f'expected {self.names}')
        out = {}
        for name, choices in self.components.items():
            value = genome.get(name)
            if self.applies(name, out):
                if value not in choices:
                    raise ValueError(
                        f'{name}={value!r}: expected one of {list(choices)}')
            elif value is not None:
                raise ValueError(
                    f'{name}={value!r} but {name} does not apply with '
                    + ', '.join(f'{o}={out.get(o)!r}'
                                for o in self.when[name])
                    + f' (it needs {self.when[name]}); use None')
            out[name] = value
        return out

    def repair(self, genome: Genome, rng: pyrandom.Random) -> Genome:
        """Make a genome valid after mutation or crossover: a component
        that no longer applies becomes ``None``, one that now applies but
        has no choice gets a random one."""
        out = {}
        for name, choices in self.components.items():
            if not self.applies(name, out):
                out[name] = None
            elif genome.get(name) in choices:
                out[name] = genome[name]
            else:
                out[name] = rng.choice(list(choices))
        return out

    def random(self, rng: pyrandom.Random) -> Genome:
        """A uniformly random choice for every applicable component."""
        return self.repair({}, rng)

    def mutate(self, genome: Genome, rng: pyrandom.Random) -> Genome:
        """Re-draw one applicable component with more than one choice to
        another choice (then :meth:`repair`); a space with no such
        component returns the genome unchanged."""
        names = [n for n in self.components
                 if self.applies(n, genome) and len(self.components[n]) > 1]
        if not names:
            return dict(genome)
        name = rng.choice(names)
        out = dict(genome)
        out[name] = rng.choice(
            [c for c in self.components[name] if c != genome.get(name)])
        return self.repair(out, rng)

    def crossover(self, a: Genome, b: Genome,
                  rng: pyrandom.Random) -> Genome:
        """Each component from ``a`` or ``b`` with probability 1/2, then
        :meth:`repair`."""
        return self.repair(
            {n: (a if rng.random() < 0.5 else b).get(n)
             for n in self.components}, rng)

    def label(self, genome: Genome) -> str:
        """Short name, e.g. ``r18+fpn128+two_stage+rpn+2fc+s512``."""
        return '+'.join(str(genome[n]) for n in self.components
                        if genome.get(n) is not None)

    def scale(self, genome: Genome) -> Optional[Tuple[int, int]]:
        """The ``(w, h)`` input size the genome chooses, if any."""
        for name in self.components:
            choice = self.components[name].get(genome.get(name)) or {}
            if choice.get('scale') is not None:
                return tuple(choice['scale'])
        return None

    # --------------------------------------------------------------- config
    def to_json(self, genome: Genome) -> dict:
        """The genome as a plain dict (records, ``candidates.jsonl``)."""
        return dict(genome)

    def from_json(self, value) -> Genome:
        return dict(value)

    def identity(self) -> str:
        """``repr`` of the components (what the search state records)."""
        return repr(self.components)

    def build_config(self, base: Config, genome: Genome) -> Config:
        """The ordinary mmdet config of ``genome``: ``base`` with every
        chosen fragment merged, then the compatibility rules applied.

        Raises:
            ValueError: an invalid genome (see :meth:`validate`); a choice
                drops a key that does not exist.
        """
        genome = self.validate(genome)
        cfg = Config(copy.deepcopy(base._cfg_dict.to_dict()),
                     filename=base.filename)
        out_channels = None
        for name, value in genome.items():
            if value is None:
                continue
            choice = self.components[name][value]
            if choice.get('cfg'):
                cfg.merge_from_dict(copy.deepcopy(dict(choice['cfg'])))
            for dotted in choice.get('drop') or ():
                _drop(cfg, dotted, f'{name}.{value}')
            if choice.get('out_channels') is not None:
                out_channels = list(choice['out_channels'])
        model = cfg.model
        neck = model.get('neck')
        if neck is not None and out_channels is not None:  # rule 2
            neck.in_channels = out_channels
        width = neck.get('out_channels') if neck is not None else None
        if width is not None:  # rule 3
            if model.get('rpn_head') is not None:
                model.rpn_head.in_channels = width
            roi = model.get('roi_head')
            if roi is not None:
                if roi.get('bbox_roi_extractor') is not None:
                    extractors = roi.bbox_roi_extractor
                    for e in (extractors if isinstance(extractors, list)
                              else [extractors]):
                        e.out_channels = width
                for h in _as_list(roi.get('bbox_head')):
                    h.in_channels = width
            if model.get('bbox_head') is not None:
                model.bbox_head.in_channels = width
        if self.num_classes is not None:  # rule 4
            heads = _as_list(model.get('bbox_head'))
            roi = model.get('roi_head')
            if roi is not None:
                heads += _as_list(roi.get('bbox_head'))
            for h in heads:
                if 'num_classes' in h or h.get('type') is not None:
                    h.num_classes = self.num_classes
        scale = self.scale(genome)
        if scale is not None:  # rule 5
            for loader in ('train_dataloader', 'val_dataloader',
                           'test_dataloader'):
                if cfg.get(loader) is not None:
                    _set_resize(cfg[loader], scale)
        return cfg


def _types(node, path: str) -> Iterator[Tuple[str, str]]:
    """``(key path, type name)`` of every string ``type`` under
    ``node``."""
    if isinstance(node, (dict, ConfigDict)):
        t = node.get('type')
        if isinstance(t, str):
            yield path, t
        for k, v in node.items():
            if k != 'type':
                yield from _types(v, f'{path}.{k}')
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _types(v, f'{path}[{i}]')


def _registries() -> list:
    from mmdet.registry import MODELS as DET_MODELS
    from mmdet.registry import TASK_UTILS as DET_TASK_UTILS
    from mmengine.registry import WEIGHT_INITIALIZERS

    from mmdetnas.registry import MODELS, TASK_UTILS
    return [MODELS, TASK_UTILS, DET_MODELS, DET_TASK_UTILS,
            WEIGHT_INITIALIZERS]


def _registered(type_name: str) -> bool:
    for registry in _registries():
        try:
            if registry.get(type_name) is not None:
                return True
        except Exception:  # noqa: BLE001 (an unknown scope prefix)
            continue
    try:
        import mmcv.ops
        return hasattr(mmcv.ops, type_name.split('.')[-1])
    except ImportError:
        return False


def _close(type_name: str) -> str:
    import difflib
    names = set()
    for registry in _registries():
        names.update(registry.module_dict)
    near = difflib.get_close_matches(type_name.split('.')[-1], sorted(names),
                                     n=3)
    return f' (close registered names: {near})' if near else ''


def _as_list(x) -> list:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _drop(cfg: Config, dotted: str, who: str) -> None:
    node = cfg._cfg_dict
    *path, last = dotted.split('.')
    for p in path:
        node = node.get(p) if isinstance(node, (dict, ConfigDict)) else None
        if node is None:
            break
    if not isinstance(node, (dict, ConfigDict)) or last not in node:
        raise ValueError(f'{who}: cannot drop {dotted!r}: no such key in the '
                         'config')
    del node[last]


def _set_resize(node, scale: Sequence[int]) -> int:
    """Set ``scale`` of every resize transform under ``node`` (pipelines of
    a dataloader, wrapped datasets included); returns how many."""
    n = 0
    if isinstance(node, (dict, ConfigDict)):
        if node.get('type') in _RESIZES and 'scale' in node:
            node['scale'] = tuple(scale)
            n += 1
        for v in node.values():
            n += _set_resize(v, scale)
    elif isinstance(node, (list, tuple)):
        for v in node:
            n += _set_resize(v, scale)
    return n
