"""Search-space definitions, the lowest layer of mmdetnas (no torch, no
models): the DetNAS ShuffleNetV2 space and its architectures
(:mod:`.search_space`, :mod:`.arch`) and the SM-NAS ResNet backbone codes
(:mod:`.resnet_code`). ``mmdetnas.models`` builds networks from them and
``mmdetnas.search`` searches over them; both import this package, neither
imports the other's internals back."""
from .arch import (OFFICIAL_ARCHS, Arch, arch_argument, arch_to_indices,
                   load_arch_file, official_arch, parse_arch, parse_arch_text,
                   resolve_arch, save_arch_file)
from .resnet_code import (ResNetCode, code_macs, format_code, parse_code,
                          plain_code)
from .search_space import (CHOICES, PRESETS, LayerSpec, SearchSpace,
                           build_search_space)

__all__ = [
    'OFFICIAL_ARCHS', 'Arch', 'arch_argument', 'arch_to_indices',
    'load_arch_file', 'official_arch', 'parse_arch', 'parse_arch_text',
    'resolve_arch', 'save_arch_file', 'ResNetCode', 'code_macs',
    'format_code', 'parse_code', 'plain_code', 'CHOICES', 'PRESETS',
    'LayerSpec', 'SearchSpace', 'build_search_space'
]
