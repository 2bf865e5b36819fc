"""Per-iteration path sampling for supernet training (DetNAS Sec. 3.2)."""
from typing import List, Optional

from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmdetnas.models.searchable import find_searchable_backbones
from mmdetnas.registry import HOOKS, TASK_UTILS
from mmdetnas.spaces.arch import resolve_arch
from mmdetnas.models.backbones import DetNASShuffleNetV2
from mmdetnas.search.bn_recalibration import recalibrate_path_bn
from mmdetnas.search.samplers import sample_synced


@HOOKS.register_module()
class PathSamplerHook(Hook):
    """Activate one sampled path of the supernet before every training
    iteration, the same on every rank (sampled on rank 0 and broadcast).

    Unselected choices are not run, so they get no gradient (``grad`` stays
    ``None`` with ``zero_grad(set_to_none=True)``, mmengine's default) and
    SGD applies neither weight decay nor momentum to them.

    Args:
        sampler (dict): Config of a sampler in ``mmdetnas`` TASK_UTILS, e.g.
            ``dict(type='mmdetnas.UniformPathSampler')``; ``search_space``
            defaults to the backbone's.
        eval_arch (list | str, optional): Path used for validation/test of
            the supernet, anything :func:`mmdetnas.search.resolve_arch`
            accepts (validated in :meth:`before_run`). ``None`` samples one
            path per evaluation (logged).
        calib_iters (int): Before a validation/test of the supernet,
            recalibrate the BN statistics of the evaluated path with this
            many training batches (DetNAS Sec. 3.4). The running statistics
            of a supernet mix every path, so without it (0) the metric of a
            path is not meaningful. Under DDP each rank recalibrates on its
            share of the batches and the statistics are combined.
        calib_batch_size (int, optional): Images per recalibration batch
            (default: the training batch size).
        calib_seed (int): Base seed of the recalibration, as the search
            loop's ``seed``: both call
            :func:`mmdetnas.search.bn_recalibration.recalibrate_path_bn`, so
            a path recalibrated here with ``calib_seed=s`` gets the
            statistics a search with ``seed=s`` gives it. The global random
            generators are left untouched.
        calib_scope (str): What the recalibration runs, as the search
            loop's ``calib_scope`` (``'auto'``, ``'features'``, ``'full'``).

    The sampler's :meth:`state_dict` (its RNG state, and the dead bins of a
    :class:`mmdetnas.search.FlopsBinPathSampler`) is saved in checkpoints
    and loaded on resume, so a resumed run samples the same paths as an
    uninterrupted one; drawing the path of an evaluation does not change it.

    Raises:
        RuntimeError: (from :meth:`before_run`) the model has no supernet
            backbone (a :class:`DetNASShuffleNetV2` with ``arch=None``).
        KeyError: (from :meth:`before_run`) ``sampler`` names no registered
            type.
        ValueError / FileNotFoundError: (from :meth:`before_run`) an
            invalid ``eval_arch`` (wrong length or search space, unknown
            choice, missing file).
    """
    priority = 'HIGH'

    def __init__(self,
                 sampler: dict = dict(type='mmdetnas.UniformPathSampler'),
                 eval_arch=None,
                 calib_iters: int = 0,
                 calib_batch_size: Optional[int] = None,
                 calib_seed: int = 0,
                 calib_scope: str = 'auto'):
        self.sampler_cfg = sampler
        self.calib_seed = calib_seed
        self.calib_scope = calib_scope
        self.eval_arch = eval_arch
        self.calib_iters = calib_iters
        self.calib_batch_size = calib_batch_size
        self.sampler = None
        self.backbones: List = []

    def before_run(self, runner) -> None:
        self.backbones = find_searchable_backbones(runner.model)
        if not self.backbones:
            raise RuntimeError(
                'PathSamplerHook needs a supernet backbone '
                '(mmdetnas.DetNASShuffleNetV2 with arch=None) in the model; '
                'remove the hook for a fixed subnet')
        space = self.backbones[0].search_space
        self.sampler = TASK_UTILS.build(
            self.sampler_cfg, default_args=dict(search_space=space))
        if self.eval_arch is not None:
            self.eval_arch = resolve_arch(self.eval_arch, space)[1]
        self._pending_state: Optional[dict] = getattr(self, '_pending_state',
                                                      None)
        if self._pending_state is not None:
            self.sampler.load_state_dict(self._pending_state)

    def _activate(self, arch) -> None:
        for m in self.backbones:
            m.set_arch(arch)

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._activate(sample_synced(self.sampler))

    def _before_eval(self, runner, what: str) -> None:
        arch = self.eval_arch
        if arch is None:
            # draw without consuming the training sequence, so a resumed
            # run samples the same training paths as an uninterrupted one
            state = self.sampler.state_dict()
            arch = sample_synced(self.sampler)
            self.sampler.load_state_dict(state)
        self._activate(arch)
        msg = f'supernet {what} with path {list(arch)}'
        if self.calib_iters > 0:
            model = runner.model.module if is_model_wrapper(
                runner.model) else runner.model
            # under DDP each rank runs its share of the batches and the
            # statistics are combined (the same as one process running all)
            world = get_world_size()
            secs = recalibrate_path_bn(
                model, runner.train_dataloader, arch, self.calib_iters,
                self.calib_batch_size, self.calib_seed, self.calib_scope,
                shard=(get_rank(), world) if world > 1 else None)
            msg += f' (BN recalibrated in {secs:.1f} s)'
        print_log(msg, logger='current')

    def before_val_epoch(self, runner) -> None:
        self._before_eval(runner, 'validation')

    def before_test_epoch(self, runner) -> None:
        self._before_eval(runner, 'test')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.sampler is not None:
            checkpoint['path_sampler'] = self.sampler.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('path_sampler')
        if state is None:
            return
        if self.sampler is not None:
            self.sampler.load_state_dict(state)
        else:  # resume happens after before_run in mmengine, but be safe
            self._pending_state = state
