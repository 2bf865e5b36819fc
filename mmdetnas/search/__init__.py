"""Searching over the spaces of :mod:`mmdetnas.spaces`: the evolutionary
engine (:mod:`.engine`) and its selection (:mod:`.evolution`), constraints
and model costs (:mod:`.constraints`, :mod:`.flops`, :mod:`.model_cost`),
BN recalibration (:mod:`.bn_recalibration`), path samplers of supernet
training (:mod:`.samplers`), subnet export (:mod:`.export`) and ranking
correlation (:mod:`.ranking`; the experiment with a supernet and
stand-alone trainings is :mod:`.ranking_study`, imported from there). Space
names are imported from ``mmdetnas.spaces`` only."""
from .export import export_subnet
from .flops import arch_cost, arch_flops, count_macs, space_cost_span
from .ranking import (archs_from_candidates, kendall_tau, kendall_tau_test,
                      rank_report, select_archs_in_flops_band, spearman_rho,
                      supernet_agreement, topk_overlap)
from .samplers import FlopsBinPathSampler, UniformPathSampler, sample_synced

__all__ = [
    'export_subnet', 'arch_cost', 'arch_flops', 'count_macs',
    'space_cost_span', 'archs_from_candidates', 'kendall_tau',
    'kendall_tau_test', 'rank_report', 'select_archs_in_flops_band',
    'spearman_rho', 'supernet_agreement', 'topk_overlap',
    'FlopsBinPathSampler', 'UniformPathSampler', 'sample_synced'
]
