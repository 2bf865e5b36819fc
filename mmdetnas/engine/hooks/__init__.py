from .path_sampler_hook import PathSamplerHook, find_searchable_backbones

__all__ = ['PathSamplerHook', 'find_searchable_backbones']
