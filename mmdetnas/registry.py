"""Child registries of mmdet's, so configs can say ``type='mmdetnas.X'``.

Every registry here has mmdet's registry of the same kind as parent. A module
registered here is reachable from mmdet's scope as ``mmdetnas.<Name>`` and,
because the registries carry ``locations``, the ``mmdetnas`` modules are
imported lazily the first time such a name is looked up: a config only needs
``custom_imports=dict(imports=['mmdetnas'])`` when it uses no ``mmdetnas.``
prefix at all.
"""
from mmdet.registry import DATA_SAMPLERS as MMDET_DATA_SAMPLERS
from mmdet.registry import DATASETS as MMDET_DATASETS
from mmdet.registry import HOOKS as MMDET_HOOKS
from mmdet.registry import LOOPS as MMDET_LOOPS
from mmdet.registry import METRICS as MMDET_METRICS
from mmdet.registry import MODELS as MMDET_MODELS
from mmdet.registry import TASK_UTILS as MMDET_TASK_UTILS
from mmdet.registry import TRANSFORMS as MMDET_TRANSFORMS
from mmengine.registry import Registry

MODELS = Registry(
    'model', parent=MMDET_MODELS, locations=['mmdetnas.models'])
TASK_UTILS = Registry(
    'task util', parent=MMDET_TASK_UTILS, locations=['mmdetnas.search'])
LOOPS = Registry('loop', parent=MMDET_LOOPS, locations=['mmdetnas.engine'])
HOOKS = Registry('hook', parent=MMDET_HOOKS, locations=['mmdetnas.engine'])
DATASETS = Registry(
    'dataset', parent=MMDET_DATASETS, locations=['mmdetnas.datasets'])
TRANSFORMS = Registry(
    'transform', parent=MMDET_TRANSFORMS, locations=['mmdetnas.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler', parent=MMDET_DATA_SAMPLERS,
    locations=['mmdetnas.datasets'])
METRICS = Registry(
    'metric', parent=MMDET_METRICS, locations=['mmdetnas.evaluation'])
