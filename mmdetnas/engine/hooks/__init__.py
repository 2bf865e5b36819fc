from .path_sampler_hook import PathSamplerHook
from .record_arch_hook import RecordArchHook, register_arch_hook
from .search_outputs_hook import SearchOutputsHook

__all__ = [
    'PathSamplerHook', 'RecordArchHook',
    'register_arch_hook', 'SearchOutputsHook'
]
