from .arch import (OFFICIAL_ARCHS, Arch, arch_argument, arch_to_indices,
                   load_arch_file, official_arch, parse_arch, parse_arch_text,
                   resolve_arch, save_arch_file)
from .flops import arch_cost, arch_flops, count_macs
from .modular import ModularSearchSpace
from .ranking import (archs_from_candidates, kendall_tau, rank_report,
                      select_archs_in_flops_band, spearman_rho, topk_overlap)
from .resnet_code import (ResNetCode, code_macs, format_code, parse_code,
                          plain_code)
from .resnet_mutation import CodeLimits, random_code
from .samplers import FlopsBinPathSampler, UniformPathSampler, sample_synced
from .search_space import (CHOICES, PRESETS, LayerSpec, SearchSpace,
                           build_search_space)
from .structural import StructuralSearchSpace

__all__ = [
    'OFFICIAL_ARCHS', 'Arch', 'arch_argument', 'arch_to_indices',
    'load_arch_file', 'official_arch', 'parse_arch', 'parse_arch_text',
    'resolve_arch', 'save_arch_file', 'arch_cost',
    'arch_flops', 'count_macs', 'FlopsBinPathSampler', 'UniformPathSampler',
    'sample_synced', 'CHOICES', 'PRESETS', 'LayerSpec', 'SearchSpace',
    'build_search_space', 'archs_from_candidates', 'kendall_tau',
    'rank_report', 'select_archs_in_flops_band', 'spearman_rho',
    'topk_overlap', 'ResNetCode', 'code_macs', 'format_code', 'parse_code',
    'plain_code', 'CodeLimits', 'random_code', 'ModularSearchSpace',
    'StructuralSearchSpace'
]
