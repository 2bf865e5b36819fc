"""Tests of PathSamplerHook with a minimal fake runner."""
import pytest
import torch.nn as nn

from mmdetnas.engine.hooks.path_sampler_hook import PathSamplerHook
from mmdetnas.models.searchable import find_searchable_backbones
from mmdetnas.models.backbones import DetNASShuffleNetV2
from mmdetnas.registry import HOOKS
from mmdetnas.search import UniformPathSampler
from mmdetnas.spaces import official_arch


class FakeDetector(nn.Module):

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.neck = nn.Conv2d(4, 4, 1)


class FakeRunner:
    """The only runner attribute the hook reads is ``model``."""

    def __init__(self, backbone):
        self.model = FakeDetector(backbone)


def _hook(seed=0, **kwargs):
    return PathSamplerHook(
        sampler=dict(type='mmdetnas.UniformPathSampler', seed=seed), **kwargs)


def test_before_train_iter_sets_path():
    runner = FakeRunner(DetNASShuffleNetV2(search_space='1.3G'))
    backbone = runner.model.backbone
    hook = _hook(seed=5)
    hook.before_run(runner)
    assert isinstance(hook.sampler, UniformPathSampler)
    # the sampler takes the backbone's search space
    assert hook.sampler.search_space is backbone.search_space
    reference = UniformPathSampler('1.3G', seed=5)
    seen = []
    for i in range(3):
        hook.before_train_iter(runner, i)
        assert backbone.arch == reference.sample()
        seen.append(backbone.arch)
    assert len(set(seen)) == 3


def test_built_from_registry():
    hook = HOOKS.build(dict(type='mmdetnas.PathSamplerHook'))
    assert isinstance(hook, PathSamplerHook)
    runner = FakeRunner(DetNASShuffleNetV2())
    hook.before_run(runner)
    hook.before_train_iter(runner, 0)
    assert runner.model.backbone.arch is not None


def test_checkpoint_round_trip():
    """Saving the sampler state and loading it into a fresh hook (another
    seed) reproduces the path the first hook would sample next."""
    runner = FakeRunner(DetNASShuffleNetV2())
    hook = _hook(seed=1)
    hook.before_run(runner)
    for i in range(3):
        hook.before_train_iter(runner, i)
    checkpoint = {}
    hook.before_save_checkpoint(runner, checkpoint)
    assert 'path_sampler' in checkpoint
    expected = []
    for i in range(3, 5):
        hook.before_train_iter(runner, i)
        expected.append(runner.model.backbone.arch)

    # resume after before_run (mmengine's order)
    runner2 = FakeRunner(DetNASShuffleNetV2())
    hook2 = _hook(seed=2)
    hook2.before_run(runner2)
    hook2.after_load_checkpoint(runner2, checkpoint)
    got = []
    for i in range(3, 5):
        hook2.before_train_iter(runner2, i)
        got.append(runner2.model.backbone.arch)
    assert got == expected

    # state loaded before before_run is applied when the sampler is built
    runner3 = FakeRunner(DetNASShuffleNetV2())
    hook3 = _hook(seed=3)
    hook3.after_load_checkpoint(runner3, checkpoint)
    hook3.before_run(runner3)
    hook3.before_train_iter(runner3, 3)
    assert runner3.model.backbone.arch == expected[0]

    # a checkpoint without sampler state changes nothing
    runner4 = FakeRunner(DetNASShuffleNetV2())
    hook4 = _hook(seed=1)
    hook4.before_run(runner4)
    hook4.after_load_checkpoint(runner4, {})
    hook4.before_train_iter(runner4, 0)
    assert runner4.model.backbone.arch == UniformPathSampler(
        '300M', seed=1).sample()


def test_eval_arch():
    runner = FakeRunner(DetNASShuffleNetV2())
    hook = _hook(eval_arch='COCO-FPN-300M')
    hook.before_run(runner)
    hook.before_train_iter(runner, 0)
    hook.before_val_epoch(runner)
    assert runner.model.backbone.arch == official_arch('COCO-FPN-300M')[1]
    hook.before_train_iter(runner, 1)
    hook.before_test_epoch(runner)
    assert runner.model.backbone.arch == official_arch('COCO-FPN-300M')[1]


def test_no_supernet():
    runner = FakeRunner(DetNASShuffleNetV2(arch='COCO-FPN-300M'))
    assert find_searchable_backbones(runner.model) == []
    with pytest.raises(RuntimeError, match='supernet'):
        _hook().before_run(runner)
    runner.model = nn.Sequential(nn.Conv2d(3, 3, 1))
    with pytest.raises(RuntimeError, match='supernet'):
        _hook().before_run(runner)


def test_flops_bin_sampler_resume_through_the_hook():
    """With FlopsBinPathSampler (dead bins are part of its state) a run
    resumed from a checkpoint trains the paths of an uninterrupted one,
    evaluations included."""
    sampler = dict(type='mmdetnas.FlopsBinPathSampler', seed=0,
                   flops_range=(280e6, 600e6), bin_width=40e6, max_tries=10)

    def run(hook, runner, iters, val_at=(4, 15)):
        paths = []
        for i in iters:
            hook.before_train_iter(runner, i)
            paths.append(runner.model.backbone.arch)
            if i in val_at:
                hook.before_val_epoch(runner)
        return paths

    runner = FakeRunner(DetNASShuffleNetV2())
    hook = PathSamplerHook(sampler=sampler)
    hook.before_run(runner)
    expected = run(hook, runner, range(24))

    runner1 = FakeRunner(DetNASShuffleNetV2())
    hook1 = PathSamplerHook(sampler=sampler)
    hook1.before_run(runner1)
    got = run(hook1, runner1, range(10))
    assert hook1.sampler._dead_bins  # else the test has no power
    checkpoint = {}
    hook1.before_save_checkpoint(runner1, checkpoint)

    runner2 = FakeRunner(DetNASShuffleNetV2())
    hook2 = PathSamplerHook(sampler=dict(sampler, seed=7))
    hook2.before_run(runner2)
    hook2.after_load_checkpoint(runner2, checkpoint)
    got += run(hook2, runner2, range(10, 24))
    assert got == expected


def test_hook_and_search_loop_recalibrate_alike():
    """The hook's recalibration before validation and the search loop's
    give the same statistics for the same path and seed."""
    import torch
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader

    from mmdetnas.engine.loops import EvolutionSearchLoop
    from mmdetnas.models.classifiers import ImageClassifier
    from tests.test_search.test_bn_recalibration import AugmentedDataset

    class Runner:

        def __init__(self):
            self.model = ImageClassifier(
                backbone=dict(type='mmdetnas.DetNASShuffleNetV2',
                              search_space='300M', out_indices=(3, )),
                num_classes=2)
            self.train_dataloader = DataLoader(
                AugmentedDataset(), batch_size=3, collate_fn=pseudo_collate)

    runner = Runner()
    arch = official_arch('COCO-FPN-300M')[1]
    bn = runner.model.backbone.stem.bn
    hook = _hook(eval_arch=list(arch), calib_iters=2, calib_seed=5)
    hook.before_run(runner)
    hook.before_val_epoch(runner)
    assert runner.model.backbone.arch == arch
    by_hook = bn.running_mean.clone()
    stats = []
    for seed in (5, 6):
        loop = EvolutionSearchLoop(runner, runner.train_dataloader,
                                   calib_iters=2, calib_batch_size=3,
                                   seed=seed)
        bn.running_mean.fill_(1.0)
        loop.recalibrate_bn(arch)
        stats.append(bn.running_mean.clone())
    assert torch.equal(stats[0], by_hook)
    assert not torch.equal(stats[1], by_hook)


def test_any_backbone_with_the_protocol_is_searchable():
    """Not only DetNASShuffleNetV2: a module with ``search_space``,
    ``set_arch`` and ``is_supernet`` is found (also inside a wrapper-free
    container), a fixed one and a plain module are not."""

    class Other(nn.Module):

        def __init__(self, supernet):
            super().__init__()
            self.search_space = 'some space'
            self.is_supernet = supernet
            self.arch = None

        def set_arch(self, arch):
            self.arch = arch

    model = nn.Sequential(nn.Conv2d(3, 3, 1), Other(True),
                          nn.Sequential(Other(False), Other(True)))
    found = find_searchable_backbones(model)
    assert found == [model[1], model[2][1]]
