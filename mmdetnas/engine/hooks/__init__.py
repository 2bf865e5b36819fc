from .path_sampler_hook import PathSamplerHook, find_searchable_backbones
from .search_outputs_hook import SearchOutputsHook

__all__ = ['PathSamplerHook', 'find_searchable_backbones', 'SearchOutputsHook']
