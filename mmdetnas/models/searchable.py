"""What makes a backbone searchable, and finding such backbones in a model.

A *searchable backbone* is a supernet whose active path can be chosen: a
module with a ``search_space`` (what a path is), ``set_arch(arch)`` (make
``arch`` the path its forward runs) and ``is_supernet`` true. The DetNAS
:class:`~mmdetnas.models.backbones.DetNASShuffleNetV2` with ``arch=None`` is
one; any backbone with the same three members is found too, so the path
sampler of supernet training, BN recalibration and the DetNAS search loop
work with it.
"""
from typing import List

from mmengine.model import is_model_wrapper


def is_searchable(module) -> bool:
    """Whether ``module`` is a searchable backbone (see the module
    docstring)."""
    return (getattr(module, 'is_supernet', False) is True
            and callable(getattr(module, 'set_arch', None))
            and getattr(module, 'search_space', None) is not None)


def find_searchable_backbones(model) -> List:
    """Every searchable backbone (:func:`is_searchable`) of a model, also
    inside a model wrapper (DDP), in module order; ``[]`` when none."""
    if is_model_wrapper(model):
        model = model.module
    return [m for m in model.modules() if is_searchable(m)]
