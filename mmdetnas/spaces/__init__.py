"""Every search space of mmdetnas, behind one interface
(:class:`BaseSearchSpace`: validate, key, random, mutate, crossover, label,
to and from JSON, identity), and the values the spaces are made of:

* DetNAS (ShuffleNetV2 supernet paths): the space description
  :class:`SearchSpace` and its presets (:mod:`.search_space`), architectures
  and architecture files (:mod:`.arch`), and :class:`PathSpace`, the paths
  as a searchable space (:mod:`.path_space`);
* SM-NAS structural level: :class:`StructuralSearchSpace`, combinations of
  mmdet modules (:mod:`.structural_space`);
* SM-NAS modular level: backbone codes (:mod:`.resnet_code`), their
  mutation and crossover (:mod:`.code_mutation`) and
  :class:`ModularSearchSpace` (:mod:`.code_space`).

The lowest layer of mmdetnas: no torch and no models here (the SM-NAS
spaces use mmengine's ``Config``, and look up registries only when checking
a space). ``mmdetnas.models`` builds networks from these values and
``mmdetnas.search`` / ``mmdetnas.engine`` search over them.
"""
from .arch import (OFFICIAL_ARCHS, Arch, arch_argument, arch_to_indices,
                   load_arch_file, official_arch, parse_arch, parse_arch_text,
                   resolve_arch, save_arch_file)
from .base import BaseSearchSpace
from .code_mutation import CodeLimits, random_code
from .code_space import ModularSearchSpace
from .path_space import PathSpace, crossover_arch, mutate_arch, random_arch
from .resnet_code import (ResNetCode, code_macs, format_code, parse_code,
                          plain_code)
from .search_space import (CHOICES, PRESETS, LayerSpec, SearchSpace,
                           build_search_space)
from .structural_space import StructuralSearchSpace

__all__ = [
    'OFFICIAL_ARCHS', 'Arch', 'arch_argument', 'arch_to_indices',
    'load_arch_file', 'official_arch', 'parse_arch', 'parse_arch_text',
    'resolve_arch', 'save_arch_file', 'BaseSearchSpace', 'CodeLimits',
    'random_code', 'ModularSearchSpace', 'PathSpace', 'crossover_arch',
    'mutate_arch', 'random_arch', 'ResNetCode', 'code_macs', 'format_code',
    'parse_code', 'plain_code', 'CHOICES', 'PRESETS', 'LayerSpec',
    'SearchSpace', 'build_search_space', 'StructuralSearchSpace'
]
