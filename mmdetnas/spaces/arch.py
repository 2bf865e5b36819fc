"""Architectures: one value, validated once, read and written in one place.

An architecture (a "path" through the supernet) is a ``tuple`` of choice
names, one per searchable layer, e.g. ``('shuffle_7x7', 'shuffle_5x5', ...)``.
It is hashable (the search's visited set and FLOPs cache key on it) and it
round-trips through YAML/JSON as a plain list. Everything that accepts an
architecture from a user (config, CLI, file) calls :func:`resolve_arch`
(strings: :func:`parse_arch`, the one parser of architecture arguments);
code downstream of it trusts the tuple.

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
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

import yaml

from mmdetnas.utils.atomic import atomic_write
from .search_space import (CHOICE_KERNELS, PRESETS, SearchSpace,
                           build_search_space)

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
                    f'{source}: layer {i}: choice index {v} out of range: '
                    f'search space {space.name!r} has {space.num_choices} '
                    f'choices, expected 0..{space.num_choices - 1} '
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
        arch (Sequence[str | int]): Choice names and/or indices, one per
            layer (validated against ``search_space``; names are written).
        search_space (str | dict | SearchSpace): The search space (written
            by name for presets, as a dict otherwise).
        meta (dict, optional): Extra information (FLOPs, score...), ignored
            on load; must be YAML-serialisable.

    Returns:
        str: ``path``.

    Raises:
        ValueError: ``arch`` has the wrong length, an unknown choice name
            or an index out of range; or an invalid ``search_space`` dict.
        TypeError: ``arch`` is not iterable or holds an item that is
            neither a name nor an index (e.g. a float); or ``search_space``
            is of another type.
        KeyError: ``search_space`` is an unknown preset name.
        OSError: the file cannot be written.
        yaml.representer.RepresenterError: ``meta`` holds a value YAML
            cannot write (e.g. a tensor).
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
    # atomic: a kill leaves the old file or the new one, never a cut one
    with atomic_write(path) as f:
        f.write('# mmdetnas architecture: one choice per searchable layer\n')
        f.write(f'# choice indices: {arch_to_indices(arch, space)}\n')
        yaml.safe_dump(data, f, sort_keys=False)
    return path


#: What an architecture given as text may be, for error messages.
ARCH_TEXT_FORMS = ('comma-separated choice names and/or indices, one per '
                   'layer (e.g. "2,1,2,0,..." or "shuffle_7x7,shuffle_5x5,'
                   '..."), an official name ' + str(list(OFFICIAL_ARCHS)) +
                   ', or an architecture file (.yaml/.yml/.json)')


def _parse_item(item: str) -> Union[str, int]:
    item = item.strip().strip('\'"').strip()
    try:
        return int(item)
    except ValueError:
        return item


def parse_arch_text(text: str) -> Union[str, List[Union[str, int]]]:
    """Read the form of an architecture given as text (command line).

    The syntax half of :func:`parse_arch`; the values are checked against
    a search space by :func:`resolve_arch`.

    Args:
        text (str): An official name (:data:`OFFICIAL_ARCHS`), the path of
            an architecture file, or comma-separated choice names and/or
            indices, one per layer (``'2,1,2,0,...'``,
            ``'shuffle_7x7, shuffle_5x5, ...'``, optionally in brackets as
            in ``'[2, 1, 2, 0, ...]'``). A single choice name or index is
            a one-layer list.

    Returns:
        str | list: the official name or file path, or the list of choice
        names (str) and indices (int).

    Raises:
        TypeError: ``text`` is not a string.
        ValueError: an empty text, or an empty item in a comma-separated
            list; the message names the value and the accepted forms.
        FileNotFoundError: a single word that is neither an official name,
            an existing file nor a choice name/index, or a missing file
            named ``*.yaml``/``*.yml``/``*.json``.
    """
    if not isinstance(text, str):
        raise TypeError(f'an architecture text must be a str, got '
                        f'{type(text).__name__} {text!r}')
    s = text.strip()
    if s.startswith('[') and s.endswith(']'):
        s = s[1:-1].strip()
    if not s:
        raise ValueError(f'empty architecture {text!r}; expected '
                         f'{ARCH_TEXT_FORMS}')
    if s in OFFICIAL_ARCHS or osp.exists(s):
        return s
    if ',' in s:
        items = s.split(',')
        empty = [i for i, v in enumerate(items) if not v.strip(' \'"')]
        if empty:
            raise ValueError(
                f'architecture {text!r}: empty item at position {empty[0]} '
                f'of the comma-separated list; expected {ARCH_TEXT_FORMS}')
        return [_parse_item(v) for v in items]
    if s.endswith(('.yaml', '.yml', '.json')):
        raise FileNotFoundError(f'architecture file not found: {text!r}')
    item = _parse_item(s)
    if isinstance(item, int) or item in CHOICE_KERNELS:
        return [item]
    raise FileNotFoundError(
        f'architecture {text!r} is neither an official name nor an existing '
        f'architecture file nor a list of choices; expected {ARCH_TEXT_FORMS}')


def parse_arch(text: str,
               search_space: Union[None, str, dict, SearchSpace] = None
               ) -> Tuple[SearchSpace, Arch]:
    """Parse and validate an architecture given as text.

    The one parser of architecture arguments: every tool that takes an
    architecture on its command line calls it (through
    :func:`resolve_arch`, which accepts the same strings).

    Args:
        text (str): See :func:`parse_arch_text`.
        search_space (str | dict | SearchSpace, optional): The expected
            search space. ``None`` takes the one of the file or official
            name, and ``'300M'`` for a list of choices.

    Returns:
        (SearchSpace, Arch): the search space and the architecture.

    Raises:
        TypeError: ``text`` is not a string.
        ValueError: a malformed text, a list of the wrong length, an
            unknown choice name, an index out of range, an invalid file, or
            a file/official architecture of another search space than
            ``search_space``. The message names the bad value and what was
            expected.
        FileNotFoundError: a text that is neither an official name, an
            existing file nor a list of choices, or a missing file.
        KeyError: ``search_space`` is an unknown preset name.
    """
    expected = None if search_space is None else build_search_space(
        search_space)
    form = parse_arch_text(text)
    if isinstance(form, list):
        space = expected or PRESETS['300M']
        return space, _validate(form, space, f'architecture {text!r}')
    if form in OFFICIAL_ARCHS:
        space, arch = official_arch(form)
    else:
        space, arch = load_arch_file(form)
    if expected is not None and expected != space:
        raise ValueError(
            f'architecture {text!r} belongs to search space '
            f'{space.describe()} but {expected.describe()} was expected')
    return space, arch


def arch_argument(text: str) -> str:
    """``type=`` of an ``argparse`` architecture argument.

    Checks the form of ``text`` with :func:`parse_arch_text` while the
    command line is parsed (so a bad value is an argparse error naming it)
    and returns it unchanged; the tool resolves it against its search space
    with :func:`resolve_arch` or :func:`parse_arch`.

    Args:
        text (str): The command-line value.

    Returns:
        str: ``text``.

    Raises:
        argparse.ArgumentTypeError: ``text`` has none of the accepted
            forms (see :func:`parse_arch_text`).
    """
    import argparse
    try:
        parse_arch_text(text)
    except (ValueError, FileNotFoundError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def resolve_arch(value: ArchLike,
                 search_space: Union[None, str, dict, SearchSpace] = None
                 ) -> Tuple[SearchSpace, Arch]:
    """Turn any user-given architecture into ``(SearchSpace, Arch)``.

    This is the single validation boundary for architectures; strings go
    through :func:`parse_arch`.

    Args:
        value (str | Sequence[str | int]): a list of choice names and/or
            indices, or a string :func:`parse_arch` accepts (an official
            name, see :data:`OFFICIAL_ARCHS`, a path to an architecture
            file, or comma-separated choice names/indices).
        search_space (str | dict | SearchSpace, optional): the expected
            search space. ``None`` takes the one of the file or official
            name (``'300M'`` for a list).

    Returns:
        (SearchSpace, Arch): the search space and the architecture.

    Raises:
        TypeError: ``value`` is neither a string nor a sequence (e.g. an
            int, or bytes), or an item of the list is neither a name nor
            an index (e.g. a float).
        ValueError: wrong length, unknown choice name, index out of range,
            a malformed string or file, or a file/official architecture
            from another search space.
        FileNotFoundError: a string that is neither an official name, an
            existing file nor a list of choices, or a missing file.
        KeyError: ``search_space`` is an unknown preset name.
    """
    if isinstance(value, str):
        return parse_arch(value, search_space)
    expected = None if search_space is None else build_search_space(
        search_space)
    space = expected or PRESETS['300M']
    return space, _validate(value, space, 'arch')


def arch_to_indices(arch: Arch, space: SearchSpace) -> list:
    """Choice indices of an architecture, e.g. ``[2, 1, 2, 0, ...]``."""
    return [space.choices.index(c) for c in arch]
