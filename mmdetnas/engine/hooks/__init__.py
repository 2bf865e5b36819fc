from .path_sampler_hook import PathSamplerHook, find_searchable_backbones
from .record_arch_hook import RecordArchHook, register_arch_hook
from .search_outputs_hook import SearchOutputsHook

__all__ = [
    'PathSamplerHook', 'find_searchable_backbones', 'RecordArchHook',
    'register_arch_hook', 'SearchOutputsHook'
]
