"""Record the backbone's architecture in every saved checkpoint."""
from mmengine.hooks import Hook

from mmdetnas.registry import HOOKS
from mmdetnas.utils.arch_meta import model_arch_meta


@HOOKS.register_module()
class RecordArchHook(Hook):
    """Write :func:`model_arch_meta` into ``checkpoint['meta']`` of every
    checkpoint the Runner saves (``arch``, ``search_space``), so that
    ``tools/test.py`` can test a re-trained subnet without repeating its
    architecture and refuse a conflicting one. The tools and the SM-NAS
    candidate trainings register it (:func:`register_arch_hook`) whenever
    the model has a searchable backbone (DetNAS ``DetNASShuffleNetV2`` or
    SM-NAS ``SMNASResNet``)."""

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = model_arch_meta(runner.model)
        if meta is not None:
            checkpoint.setdefault('meta', {}).update(meta)


def register_arch_hook(runner):
    """Register a :class:`RecordArchHook` on ``runner`` when its model has a
    searchable backbone and no such hook is registered; returns the
    runner."""
    if model_arch_meta(runner.model) is not None and not any(
            isinstance(h, RecordArchHook) for h in runner.hooks):
        runner.register_hook(RecordArchHook())
    return runner
