"""Architectures: one value, validated once, read and written in one place.

An architecture (a "path" through the supernet) is a ``tuple`` of choice
names, one per searchable layer, e.g. ``('shuffle_7x7', 'shuffle_5x5', ...)``.
It is hashable (the search's visited set and FLOPs cache key on it) and it
round-trips through YAML/JSON as a plain list. Everything that accepts an
architecture from a user (config, CLI, file) calls :func:`parse_arch`; code
downstream of it trusts the tuple.

Architecture file format (YAML, human readable)::

    # mmdetnas architecture
    search_space: 300M          # preset name, or a dict (custom space)
    arch:                       # one choice name per layer
    - shuffle_7x7
    - shuffle_5x5
    ...
    meta: {flops: 3.0e8, score: 0.36}   # optional, ignored on load

The official DetNAS architectures (DetNAS Sec. 4 and its reference code) are
available by name, see :data:`OFFICIAL_ARCHS`.
"""
import os
import os.path as osp
from typing import Optional, Sequence, Tuple, Union

import yaml

from .search_space import PRESETS, SearchSpace, build_search_space

Arch = Tuple[str, ...]

_FPN_BIG = [
    0, 0, 3, 1, 2, 1, 0, 2, 0, 3, 1, 2, 3, 3, 2, 0, 2, 1, 1, 3, 2, 0, 2, 2, 2,
    1, 3, 1, 0, 3, 3, 3, 1, 3, 3, 3, 3, 3, 3, 3
]
#: Official searched architectures: name -> (search space, choice indices).
OFFICIAL_ARCHS = {
    'COCO-FPN-300M':
    ('300M', [2, 1, 2, 0, 2, 1, 1, 2, 3, 3, 1, 3, 0, 0, 3, 1, 3, 1, 3, 2]),
    'COCO-RetinaNet-300M':
    ('300M', [2, 3, 1, 1, 3, 2, 1, 3, 3, 1, 1, 1, 3, 3, 2, 0, 3, 3, 3, 3]),
    'COCO-FPN-1.3G': ('1.3G', _FPN_BIG),
    'COCO-FPN-3.8G': ('3.8G', _FPN_BIG),
}

ArchLike = Union[str, Sequence[Union[str, int]]]


def official_arch(name: str) -> Tuple[SearchSpace, Arch]:
    """Search space and architecture of an official DetNAS subnet.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    if name not in OFFICIAL_ARCHS:
        raise KeyError(f'unknown official architecture {name!r}; expected one'
                       f' of {list(OFFICIAL_ARCHS)}')
    space_name, idx = OFFICIAL_ARCHS[name]
    space = PRESETS[space_name]
    return space, tuple(space.choices[i] for i in idx)


def _validate(values: Sequence[Union[str, int]], space: SearchSpace,
              source: str) -> Arch:
    if isinstance(values, (str, bytes)) or not hasattr(values, '__len__'):
        raise TypeError(f'{source}: an architecture is a list of choice '
                        f'names or indices, got {values!r}')
    if len(values) != space.num_layers:
        raise ValueError(
            f'{source}: architecture has {len(values)} layers but search '
            f'space {space.name!r} has {space.num_layers} '
            f'(blocks per stage {list(space.stage_blocks)})')
    arch = []
    for i, v in enumerate(values):
        if isinstance(v, bool):
            v = str(v)  # never accept True/False as an index
        if isinstance(v, int):
            if not 0 <= v < space.num_choices:
                raise ValueError(
                    f'{source}: layer {i}: choice index {v} out of range; '
                    f'expected 0..{space.num_choices - 1} '
                    f'({list(space.choices)})')
            arch.append(space.choices[v])
        elif isinstance(v, str):
            if v not in space.choices:
                raise ValueError(
                    f'{source}: layer {i}: unknown choice {v!r}; expected one'
                    f' of {list(space.choices)}')
            arch.append(v)
        else:
            raise TypeError(f'{source}: layer {i}: choice must be a name or '
                            f'an index, got {type(v).__name__} {v!r}')
    return tuple(arch)


def load_arch_file(path: str) -> Tuple[SearchSpace, Arch]:
    """Read and validate an architecture file (YAML or JSON).

    Returns:
        (SearchSpace, Arch): the file's search space and architecture.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a mapping with ``search_space`` and ``arch``, or an
            invalid architecture (wrong length, unknown name, bad index).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'architecture file not found: {path!r}')
    with open(path, encoding='utf-8') as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ValueError(f'{path}: not valid YAML: {e}') from e
    if not isinstance(data, dict) or 'arch' not in data \
            or 'search_space' not in data:
        raise ValueError(f'{path}: expected a mapping with keys '
                         f"'search_space' and 'arch', got {data!r:.200}")
    space = build_search_space(data['search_space'])
    return space, _validate(data['arch'], space, path)


def save_arch_file(path: str,
                   arch: Arch,
                   search_space: Union[str, dict, SearchSpace],
                   meta: Optional[dict] = None) -> str:
    """Write an architecture file that :func:`load_arch_file` reads back.

    Args:
        path (str): Output path; parent folders are created.
        arch (tuple[str]): Choice names, one per layer.
        search_space: The search space (written by name for presets, as a
            dict otherwise).
        meta (dict, optional): Extra information (FLOPs, score...), ignored
            on load.

    Returns:
        str: ``path``.
    """
    space = build_search_space(search_space)
    arch = _validate(list(arch), space, 'save_arch_file')
    data = {
        'search_space':
        space.name if PRESETS.get(space.name) == space else space.to_dict(),
        'arch': list(arch),
    }
    if meta:
        data['meta'] = meta
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write('# mmdetnas architecture: one choice per searchable layer\n')
        f.write(f'# choice indices: {arch_to_indices(arch, space)}\n')
        yaml.safe_dump(data, f, sort_keys=False)
    return path


def resolve_arch(value: ArchLike,
                 search_space: Union[None, str, dict, SearchSpace] = None
                 ) -> Tuple[SearchSpace, Arch]:
    """Turn any user-given architecture into ``(SearchSpace, Arch)``.

    This is the single validation boundary for architectures.

    Args:
        value: a list of choice names and/or indices, a path to an
            architecture file, or an official name (see
            :data:`OFFICIAL_ARCHS`).
        search_space: the expected search space. ``None`` takes the one of
            the file or official name (``'300M'`` for a plain list).

    Returns:
        (SearchSpace, Arch)

    Raises:
        ValueError: wrong length, unknown choice name, index out of range,
            or a file/official architecture from another search space.
        FileNotFoundError: a string that is neither an official name nor an
            existing file.
    """
    expected = None if search_space is None else build_search_space(
        search_space)
    if isinstance(value, str):
        if value in OFFICIAL_ARCHS:
            space, arch = official_arch(value)
        elif value.endswith(('.yaml', '.yml', '.json')) or osp.exists(value):
            space, arch = load_arch_file(value)
        else:
            raise FileNotFoundError(
                f'architecture {value!r} is neither an official name '
                f'{list(OFFICIAL_ARCHS)} nor an existing architecture file')
        if expected is not None and expected != space:
            raise ValueError(
                f'architecture {value!r} belongs to search space '
                f'{space.describe()} but {expected.describe()} was expected')
        return space, arch
    space = expected or PRESETS['300M']
    return space, _validate(value, space, 'arch')


def arch_to_indices(arch: Arch, space: SearchSpace) -> list:
    """Choice indices of an architecture, e.g. ``[2, 1, 2, 0, ...]``."""
    return [space.choices.index(c) for c in arch]
