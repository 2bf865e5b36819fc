# the space definitions live in mmdetnas.spaces (below mmdetnas.models);
# re-exported here so ``from mmdetnas.search import SearchSpace`` keeps
# working
from mmdetnas.spaces import (CHOICES, OFFICIAL_ARCHS, PRESETS, Arch,
                             LayerSpec, ResNetCode, SearchSpace,
                             arch_argument, arch_to_indices,
                             build_search_space, code_macs, format_code,
                             load_arch_file, official_arch, parse_arch,
                             parse_arch_text, parse_code, plain_code,
                             resolve_arch, save_arch_file)
from .export import export_subnet
from .flops import arch_cost, arch_flops, count_macs
from .modular import ModularSearchSpace
from .ranking import (archs_from_candidates, kendall_tau, kendall_tau_test,
                      rank_report, select_archs_in_flops_band, spearman_rho,
                      supernet_agreement, topk_overlap)
from .resnet_mutation import CodeLimits, random_code
from .samplers import FlopsBinPathSampler, UniformPathSampler, sample_synced
from .structural import StructuralSearchSpace

__all__ = [
    'OFFICIAL_ARCHS', 'Arch', 'arch_argument', 'arch_to_indices',
    'load_arch_file', 'official_arch', 'parse_arch', 'parse_arch_text',
    'resolve_arch', 'save_arch_file', 'arch_cost',
    'arch_flops', 'count_macs', 'FlopsBinPathSampler', 'UniformPathSampler',
    'sample_synced', 'CHOICES', 'PRESETS', 'LayerSpec', 'SearchSpace',
    'build_search_space', 'archs_from_candidates', 'kendall_tau',
    'kendall_tau_test', 'rank_report', 'select_archs_in_flops_band',
    'spearman_rho', 'supernet_agreement', 'topk_overlap', 'ResNetCode',
    'code_macs', 'format_code', 'parse_code', 'plain_code', 'CodeLimits',
    'random_code', 'ModularSearchSpace', 'StructuralSearchSpace',
    'export_subnet'
]
