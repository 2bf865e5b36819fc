"""Releasing what an mmengine ``Runner`` keeps alive after it is done.

A ``Runner`` registers global objects that outlive it: mmengine's
:class:`~mmengine.utils.ManagerMixin` classes keep every instance made by
``get_instance`` in a class-level ``_instance_dict`` until the process ends.
A program that builds one Runner per candidate (the SM-NAS searches train
hundreds) therefore accumulates, per Runner:

* an :class:`~mmengine.logging.MMLogger` (named after the experiment) whose
  ``FileHandler`` keeps the run's log file open: one file descriptor each;
* a :class:`~mmengine.logging.MessageHub` with the run's scalar histories;
* a :class:`~mmengine.visualization.Visualizer` (also registered under each
  of its ``ManagerMixin`` base classes, e.g. ``DetLocalVisualizer`` *and*
  ``Visualizer``) and its vis backends (a ``TensorboardVisBackend`` or
  ``WandbVisBackend`` holds an open writer). A visualizer config with a
  fixed ``name`` (mmdet's ``name='visualizer'``) is worse than a leak: the
  next Runner *reuses* the first one's instance, so its scalars and config
  go to the first run's ``vis_data`` directory;
* a :class:`~mmengine.registry.DefaultScope` (named after the experiment);

and, through the Runner object and the reference cycles between it, its
loops and hooks, the model, the optimizer (its state is twice the model's
size with Adam), the parameter schedulers, the data loaders (with worker
processes when ``num_workers > 0``) and the CUDA blocks PyTorch's caching
allocator keeps after they are freed.

:func:`release_runner` undoes all of that once the caller is done with the
Runner (trained, evaluated, measured).
"""
import gc
import logging

import torch

#: Runner attributes dropped so the objects behind them can be freed
_RUNNER_REFS = ('model', 'optim_wrapper', 'param_schedulers', '_train_loop',
                '_val_loop', '_test_loop', '_train_dataloader',
                '_val_dataloader', '_test_dataloader', '_val_evaluator',
                '_test_evaluator')


def _drop_instance(obj) -> bool:
    """Remove ``obj`` from the ``_instance_dict`` of every ``ManagerMixin``
    class of its MRO that maps its name to *this* object (an instance of
    the same name made by someone else is left alone). Returns whether it
    was registered anywhere.

    Deleting an entry keeps the order of the others, so the class's
    ``get_current_instance()`` (the last entry) becomes the instance that
    was current before ``obj`` was made, e.g. the caller's own logger."""
    name = getattr(obj, 'instance_name', None)
    dropped = False
    if name is None:
        return dropped
    for cls in type(obj).__mro__:
        instances = cls.__dict__.get('_instance_dict')
        if instances is not None and instances.get(name) is obj:
            del instances[name]
            dropped = True
    return dropped


def _close_logger(logger) -> None:
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        try:
            handler.flush()
            # a StreamHandler's close leaves its stream (stdout) open; a
            # FileHandler's closes the file
            handler.close()
        except (OSError, ValueError):  # an already closed stream
            pass


def release_runner(runner) -> None:
    """Free the global instances, files and memory a finished Runner holds.

    What it releases (see the module docstring for why each one leaks):

    * the Runner's ``MMLogger``: its handlers are flushed, closed (the log
      file's descriptor) and removed, and the instance is dropped from
      ``MMLogger._instance_dict``;
    * its ``MessageHub``: dropped from ``MessageHub._instance_dict``;
    * its ``Visualizer``: closed (each vis backend's ``close()``, which
      closes e.g. a TensorBoard writer) and dropped from the instance dict
      of every ``ManagerMixin`` class it is registered under;
    * the ``DefaultScope`` the Runner registered under its experiment name;
    * the Runner's references to the model, optimizer wrapper, parameter
      schedulers, loops, data loaders and evaluators, and its hooks, then a
      ``gc.collect()`` (Runner, loops and hooks reference one another) and,
      when CUDA is available, ``torch.cuda.empty_cache()`` so the cached
      blocks go back to the device.

    Only instances registered under their name *as these very objects* are
    dropped, and the other entries keep their order, so afterwards each
    class's ``get_current_instance()`` is again what it was before the
    Runner was built (e.g. the search's own ``MMLogger``, which keeps
    logging), or, where the Runner made the only instance, the fallback
    mmengine gives an empty registry (a fresh ``'mmengine'`` logger or
    message hub, no default scope).

    The Runner must not be used afterwards (its model, loops and logger
    are gone); the caller drops its own references to the model or
    anything else it took from the Runner *before* calling this, or they
    stay alive.

    Args:
        runner (mmengine.runner.Runner): a Runner that is no longer needed.
    """
    from mmengine.registry import DefaultScope

    visualizer = getattr(runner, 'visualizer', None)
    if visualizer is not None:
        try:
            visualizer.close()
        finally:
            _drop_instance(visualizer)
    message_hub = getattr(runner, 'message_hub', None)
    if message_hub is not None:
        _drop_instance(message_hub)
    logger = getattr(runner, 'logger', None)
    if isinstance(logger, logging.Logger):
        _close_logger(logger)
        _drop_instance(logger)
    scope = getattr(runner, 'default_scope', None)
    if isinstance(scope, DefaultScope) and \
            scope.instance_name == getattr(runner, 'experiment_name', None):
        # only the scope the Runner made itself (Runner.__init__ names it
        # after the experiment), never a scope it was merely given
        _drop_instance(scope)

    for attr in _RUNNER_REFS:
        if attr in runner.__dict__:
            setattr(runner, attr, None)
    if isinstance(runner.__dict__.get('_hooks'), list):
        runner._hooks = []
    for attr in ('visualizer', 'message_hub', 'logger'):
        if attr in runner.__dict__:
            setattr(runner, attr, None)
    del visualizer, message_hub, logger, scope
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
