"""The outer Runner of a search.

Every search runs as the train loop of an mmengine ``Runner``
(:class:`~mmdetnas.engine.loops.BaseSearchLoop`), so that the Runner sets up
the distributed environment, the work dir, the logger, the message hub and
the visual backends before the search starts, as for any training:

* a DetNAS search (:class:`~mmdetnas.engine.loops.EvolutionSearchLoop`)
  scores paths of the config's supernet: the Runner is built from the config
  as it is (the supernet is its model, the training images its
  ``train_dataloader`` for BN recalibration, the search split its
  ``val_dataloader``);
* an SM-NAS search (:class:`~mmdetnas.engine.loops.StructuralSearchLoop`,
  :class:`~mmdetnas.engine.loops.ModularSearchLoop`) trains every candidate
  detector in a Runner of its own: the outer Runner gets the config's
  run-time settings (work dir, launcher, ``env_cfg``, logging, visualizer,
  scope, randomness) and a :class:`SearchDriverModel` in place of a detector,
  and no dataloaders, schedulers, evaluators or checkpoints of its own;
  ``runner.cfg`` is still the whole search config, from which the loop
  builds each candidate.
"""
import copy
import time

import torch
from mmengine.model import BaseModel

from mmdetnas.engine.loops.base_search_loop import BaseSearchLoop


class SearchDriverModel(BaseModel):
    """The model of the outer Runner of a search that trains each candidate
    in a Runner of its own (SM-NAS). It holds one unused parameter (mmengine
    builds an optimizer and, under a launcher, a DDP wrapper for the
    Runner's model) and refuses to be run.

    Raises:
        RuntimeError: when called (``forward``): nothing should run it.
    """

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, inputs=None, data_samples=None, mode: str = 'tensor'):
        raise RuntimeError(
            'SearchDriverModel stands in for the model of a search whose '
            'candidates train in Runners of their own; it is not run')


def search_loop_class(cfg) -> type:
    """The search loop class ``cfg.train_cfg.type`` names.

    Raises:
        ValueError: ``train_cfg.type`` is missing, unknown or not a search
            loop (a subclass of :class:`BaseSearchLoop`); the message names
            the search loops.
    """
    from mmengine.registry import DefaultScope

    from mmdetnas.registry import LOOPS
    loops = ('mmdetnas.EvolutionSearchLoop (DetNAS)',
             'mmdetnas.StructuralSearchLoop (SM-NAS structural)',
             'mmdetnas.ModularSearchLoop (SM-NAS modular)')
    train_cfg = cfg.get('train_cfg') or {}
    name = train_cfg.get('type') if hasattr(train_cfg, 'get') else None
    cls = name
    if isinstance(name, str):
        scope = cfg.get('default_scope', 'mmdet')
        with DefaultScope.overwrite_default_scope(scope):
            cls = LOOPS.get(name)
        if cls is None and '.' not in name:
            cls = LOOPS.get('mmdetnas.' + name)
    if not (isinstance(cls, type) and issubclass(cls, BaseSearchLoop)):
        hint = ''
        if any(cfg.get(k) is not None for k in ('structural_search',
                                                'modular_search')):
            hint = (' (the search options of structural_search / '
                    'modular_search are now arguments of the loop in '
                    'train_cfg; see configs/smnas/)')
        raise ValueError(
            f'train_cfg.type must be a search loop, one of '
            f'{", ".join(loops)}; got {name!r}{hint}')
    return cls


def build_search_runner(cfg):
    """The outer Runner of the search ``cfg`` describes (see the module
    docstring); ``runner.train()`` runs the search.

    A model with a searchable backbone gets
    :class:`~mmdetnas.engine.hooks.RecordArchHook`, as in training.

    Raises:
        ValueError: ``train_cfg.type`` is not a search loop
            (:func:`search_loop_class`).
    """
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from mmdetnas.engine.hooks import register_arch_hook
    loop_cls = search_loop_class(cfg)
    if loop_cls.builds_dataloader:
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else \
            RUNNERS.build(cfg)
        return register_arch_hook(runner)
    cfg = copy.deepcopy(cfg)
    hooks = dict(cfg.get('default_hooks') or {})
    # the search saves its own state; the candidates' checkpoint and
    # visualisation hooks are theirs
    hooks['checkpoint'] = None
    hooks.pop('visualization', None)
    visualizer = cfg.get('visualizer')
    if isinstance(visualizer, dict):
        # a name of its own: the candidates' Runners build mmdet's
        # name='visualizer' and must not reuse (and release) this one
        visualizer = copy.deepcopy(visualizer)
        visualizer['name'] = f'search_{time.time_ns()}'
    return Runner(
        model=SearchDriverModel(),
        work_dir=cfg['work_dir'],
        train_dataloader=cfg.get('train_dataloader') or {},
        train_cfg=cfg['train_cfg'],
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0)),
        default_hooks=hooks,
        launcher=cfg.get('launcher', 'none'),
        env_cfg=cfg.get('env_cfg', dict(dist_cfg=dict(backend='nccl'))),
        log_processor=cfg.get('log_processor'),
        log_level=cfg.get('log_level', 'INFO'),
        visualizer=visualizer,
        default_scope=cfg.get('default_scope', 'mmdet'),
        randomness=cfg.get('randomness', dict(seed=None)),
        experiment_name=cfg.get('experiment_name'),
        cfg=cfg)
