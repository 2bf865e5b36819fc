"""BN recalibration re-estimates the statistics of exactly its batches."""
import copy
import importlib
import pickle
import random

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.structures import BaseDataElement

from mmdetnas.models.classifiers import ImageClassifier
from torch.nn.modules.batchnorm import _BatchNorm

from mmdetnas.search.bn_recalibration import (arch_seed, bn_forward_parts,
                                              calibration_bn_forward,
                                              dataloader_batch_size,
                                              recalibrate_bn,
                                              recalibrate_path_bn)


class ToyDataset(torch.utils.data.Dataset):

    def __init__(self, n=12):
        g = torch.Generator().manual_seed(0)
        self.imgs = (torch.rand(n, 3, 32, 32, generator=g) * 255).byte()

    def __len__(self):
        return len(self.imgs)

    def __getitem__(self, i):
        return dict(inputs=self.imgs[i],
                    data_samples=BaseDataElement(
                        gt_label=torch.tensor([i % 2])))


def test_running_stats_are_the_average_of_the_batch_stats():
    model = ImageClassifier(
        backbone=dict(type='mmdetnas.DetNASShuffleNetV2',
                      arch='COCO-FPN-300M', out_indices=(3, )),
        num_classes=2)
    bn = model.backbone.stem.bn
    bn.running_mean.fill_(123.0)  # stale statistics of other paths
    seen = []
    handle = model.backbone.stem.conv.register_forward_hook(
        lambda m, i, o: seen.append(o.detach()))
    secs = recalibrate_bn(model, ToyDataset(), pseudo_collate, num_batches=3,
                          batch_size=4, seed=arch_seed(('a', ), 1))
    handle.remove()
    assert secs >= 0 and len(seen) == 3 and not model.training
    expected = torch.stack([o.mean(dim=(0, 2, 3)) for o in seen]).mean(0)
    assert torch.allclose(bn.running_mean, expected, atol=1e-5)
    assert int(bn.num_batches_tracked) == 3
    assert bn.momentum == 0.1  # restored


def test_norm_eval_backbone_is_recalibrated_in_train_mode():
    """A backbone that keeps its BN layers in eval mode while training
    (``norm_eval``) still gets batch statistics, as with norm_eval off:
    a recalibration must not normalise with the statistics it resets."""
    stats = []
    for norm_eval in (False, True):
        torch.manual_seed(0)
        model = ImageClassifier(
            backbone=dict(type='mmdetnas.DetNASShuffleNetV2',
                          arch='COCO-FPN-300M', out_indices=(3, ),
                          norm_eval=norm_eval),
            num_classes=2)
        recalibrate_bn(model, ToyDataset(), pseudo_collate, 2, 4, seed=0)
        stats.append(bn_stats(model))
    assert stats[0].keys() == stats[1].keys()
    for k, (mean, var, n) in stats[0].items():
        assert n == 2 == stats[1][k][2], k
        assert torch.equal(mean, stats[1][k][0]), k
        assert torch.equal(var, stats[1][k][1]), k


def test_sync_bn_layers_are_recalibrated_locally_like_bn():
    torch.manual_seed(0)
    model = ImageClassifier(
        backbone=dict(type='mmdetnas.DetNASShuffleNetV2',
                      arch='COCO-FPN-300M', out_indices=(3, )),
        num_classes=2)
    sync = torch.nn.SyncBatchNorm.convert_sync_batchnorm(
        copy.deepcopy(model))
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in sync.modules())
    for m in (model, sync):
        recalibrate_bn(m, ToyDataset(), pseudo_collate, 2, 4, seed=0)
    want, got = bn_stats(model), bn_stats(sync)
    assert want.keys() == got.keys()
    for k in want:
        assert torch.equal(want[k][0], got[k][0]), k
        assert torch.equal(want[k][1], got[k][1]), k
    # forwards restored: the layers are SyncBN again outside the block
    assert all('forward' not in vars(m) for m in sync.modules())


def test_recalibration_is_seeded_by_the_architecture():
    model = ImageClassifier(
        backbone=dict(type='mmdetnas.DetNASShuffleNetV2',
                      arch='COCO-FPN-300M', out_indices=(3, )),
        num_classes=2)
    stats = []
    for seed in (arch_seed(('x', 'y')), arch_seed(('x', 'y')),
                 arch_seed(('y', 'x'))):
        recalibrate_bn(model, ToyDataset(), pseudo_collate, 2, 2, seed)
        stats.append(model.backbone.stem.bn.running_mean.clone())
    assert torch.equal(stats[0], stats[1])
    assert not torch.equal(stats[0], stats[2])


@pytest.mark.parametrize('bn_type,shape,affine', [
    (torch.nn.BatchNorm2d, (4, 24, 30, 30), True),
    (torch.nn.BatchNorm2d, (1, 8, 5, 7), False),
    (torch.nn.BatchNorm1d, (6, 10), True),
    (torch.nn.BatchNorm3d, (2, 3, 4, 5, 6), True),
])
def test_calibration_forward_equals_the_native_train_mode_bn(
        bn_type, shape, affine):
    g = torch.Generator().manual_seed(0)
    c = shape[1]
    ref = bn_type(c, affine=affine, momentum=None).train()
    if affine:
        with torch.no_grad():
            ref.weight.copy_(torch.rand(c, generator=g) + 0.5)
            ref.bias.copy_(torch.randn(c, generator=g))
    ours = copy.deepcopy(ref)
    with torch.no_grad():
        for step in range(3):
            # far from zero mean: a one-pass E[x^2] - E[x]^2 would lose it
            x = torch.randn(shape, generator=g) * (step + 1) + 50.0
            want = ref(x)
            got = calibration_bn_forward(ours, x)
            assert torch.allclose(got, want, atol=1e-4), step
    assert int(ours.num_batches_tracked) == 3
    assert torch.allclose(ours.running_mean, ref.running_mean, atol=1e-4)
    assert torch.allclose(ours.running_var, ref.running_var, rtol=1e-4)
    ref.momentum = ours.momentum = 0.3  # exponential average too
    x = torch.randn(shape, generator=g)
    with torch.no_grad():
        ref(x), calibration_bn_forward(ours, x)
    assert torch.allclose(ours.running_var, ref.running_var, rtol=1e-4)
    with pytest.raises(ValueError, match=r'\(1, 4\)'):
        calibration_bn_forward(torch.nn.BatchNorm1d(4), torch.ones(1, 4))
    # an empty batch (e.g. a head with no RoI): what torch's BN does
    ref, ours = bn_type(c, momentum=None), bn_type(c, momentum=None)
    empty = torch.zeros((0, ) + tuple(shape[1:]))
    with torch.no_grad():
        want, got = ref(empty), calibration_bn_forward(ours, empty)
    assert got.shape == want.shape
    for name, buf in ref.named_buffers():
        assert torch.equal(getattr(ours, name), buf), name


def test_batch_size_of_stock_mmdet_dataloaders():
    """mmdet's stock configs batch with ``AspectRatioBatchSampler``: the
    DataLoader's own ``batch_size`` is then ``None``."""
    from mmdet.datasets.samplers import AspectRatioBatchSampler
    from mmengine.dataset import DefaultSampler
    from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

    class Shaped(ToyDataset):
        def get_data_info(self, i):
            return dict(width=32, height=32 if i % 2 else 40)

    ds = Shaped()
    plain = DataLoader(ds, batch_size=3, collate_fn=pseudo_collate)
    stock = DataLoader(
        ds, collate_fn=pseudo_collate,
        batch_sampler=AspectRatioBatchSampler(
            DefaultSampler(ds, shuffle=False), batch_size=4))
    assert plain.batch_size == 3 and dataloader_batch_size(plain) == 3
    assert stock.batch_size is None and dataloader_batch_size(stock) == 4

    class NoSize(BatchSampler):
        def __init__(self):
            super().__init__(SequentialSampler(ds), 2, False)
            del self.batch_size

    odd = DataLoader(ds, batch_sampler=NoSize(), collate_fn=pseudo_collate)
    with pytest.raises(ValueError, match='calib_batch_size'):
        dataloader_batch_size(odd)
    # the hook's entry point recalibrates with the sampler's batch size
    model = ImageClassifier(
        backbone=dict(type='mmdetnas.DetNASShuffleNetV2',
                      arch='COCO-FPN-300M', out_indices=(3, )),
        num_classes=2)
    sizes = []
    h = model.backbone.register_forward_pre_hook(
        lambda m, a: sizes.append(a[0].shape[0]))
    recalibrate_path_bn(model, stock, ('a', ), num_batches=2)
    h.remove()
    assert sizes == [4, 4]


# --------------------------------------------------------------- detectors
class ToyDetDataset(torch.utils.data.Dataset):
    """64x64 noise images with two boxes each, packed as mmdet's
    ``PackDetInputs`` packs them."""

    def __init__(self, n=4):
        g = torch.Generator().manual_seed(1)
        self.imgs = (torch.rand(n, 3, 64, 64, generator=g) * 255).byte()
        self.boxes = torch.tensor([[4., 6., 30., 40.], [20., 18., 60., 50.]])

    def __len__(self):
        return len(self.imgs)

    def __getitem__(self, i):
        from mmdet.structures import DetDataSample
        from mmengine.structures import InstanceData
        sample = DetDataSample(metainfo=dict(
            img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1., 1.)))
        sample.gt_instances = InstanceData(
            bboxes=self.boxes + i, labels=torch.tensor([0, 0]))
        return dict(inputs=self.imgs[i], data_samples=sample)


def build_detector(neck_norm, head_norm=None):
    """The quickstart Faster R-CNN FPN subnet (SyncBN -> BN as on CPU),
    with or without norms in the FPN and in the 4conv-1fc box head."""
    from mmdet.registry import MODELS
    from mmengine.config import Config

    from mmdetnas.utils.setup_env import register_all_modules, sync_bn_to_bn
    from tests.e2e_utils import ROOT
    register_all_modules()
    cfg = Config.fromfile(
        f'{ROOT}/configs/quickstart/detnas_subnet_faster-rcnn_'
        'shufflenetv2-300m_fpn_quick_neon-trees.py')
    cfg.model.backbone.init_cfg = None
    cfg.model.neck.norm_cfg = neck_norm
    cfg.model.roi_head.bbox_head.norm_cfg = head_norm
    sync_bn_to_bn(cfg._cfg_dict)
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def bn_stats(model):
    return {n: (m.running_mean.clone(), m.running_var.clone(),
                int(m.num_batches_tracked))
            for n, m in model.named_modules() if isinstance(m, _BatchNorm)}


def full_forward_stats(model, batches, seed, dtype=torch.float32):
    """The statistics of the previous recalibration: every BN reset, then
    the whole detector's train-mode ``loss`` on each batch (cumulative
    average), with PyTorch's own BN kernels, in ``dtype`` (float64 gives
    the statistics up to float32 rounding), the torch generator seeded with
    ``seed`` (RoI sampling)."""
    mmcv_nms = importlib.import_module('mmcv.ops.nms')  # not ops.nms()
    ext = mmcv_nms.ext_module

    class Float32Nms:  # mmcv's compiled NMS takes float32 boxes only
        def nms(self, boxes, scores, **kw):
            return ext.nms(boxes.float(), scores.float(), **kw)

    model = copy.deepcopy(model).to(dtype)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    torch.manual_seed(seed)
    mmcv_nms.ext_module = Float32Nms()
    try:
        with torch.no_grad():
            for batch in batches:
                data = model.data_preprocessor(batch, True)
                model.loss(data['inputs'].to(dtype), data['data_samples'])
    finally:
        mmcv_nms.ext_module = ext
    return bn_stats(model)


def max_rel_err(stats, ref):
    """Largest error of running means and variances against ``ref``, per
    layer relative to its natural scale: the largest reference standard
    deviation for a mean (some means are exactly 0), the largest reference
    variance for a variance."""
    err = 0.0
    for k, (mean, var, _) in ref.items():
        err = max(err,
                  (stats[k][0].double() - mean).abs().max().item()
                  / (var.max().sqrt().item() + 1e-12),
                  (stats[k][1].double() - var).abs().max().item()
                  / (var.max().item() + 1e-12))
    return err


@pytest.mark.parametrize('neck_norm,head_norm,parts', [
    (None, None, ['backbone']),
    (dict(type='BN'), None, ['backbone', 'neck']),
    (dict(type='BN'), dict(type='BN'), None),  # box head BN: whole model
])
def test_detector_statistics_equal_a_full_forward(neck_norm, head_norm,
                                                  parts):
    model = build_detector(neck_norm, head_norm)
    names = {id(m): n for n, m in model.named_children()}
    got = bn_forward_parts(model)
    assert (None if got is None else [names[id(p)] for p in got]) == parts
    state = copy.deepcopy(model.state_dict())
    for m in model.modules():  # stale statistics of other paths
        if isinstance(m, _BatchNorm):
            m.running_mean.fill_(5.0)
            m.running_var.fill_(9.0)
    batches, heads = [], []
    pre = model.data_preprocessor.forward

    def recording_pre(data, training=False):
        batches.append(copy.deepcopy(data))
        return pre(data, training)

    model.data_preprocessor.forward = recording_pre
    seen = {}  # every BN layer's inputs during the recalibration
    hooks = [model.rpn_head.register_forward_hook(
        lambda *a: heads.append('rpn'))]
    for n, m in model.named_modules():
        if isinstance(m, _BatchNorm):
            hooks.append(m.register_forward_pre_hook(
                lambda m, args, n=n: seen.setdefault(n, []).append(
                    args[0].double())))
    recalibrate_bn(model, ToyDetDataset(), pseudo_collate, num_batches=2,
                   batch_size=2, seed=3)
    for h in hooks:
        h.remove()
    model.data_preprocessor.forward = pre
    new = bn_stats(model)
    assert len(batches) == 2
    # no head ran unless a head holds BN layers
    assert heads == ([] if parts else ['rpn', 'rpn'])
    assert len(new) > 20 and all(n == 2 for _, _, n in new.values())

    # each layer's statistics are the average over the two batches of the
    # batch mean and the unbiased batch variance of what it saw
    for k, xs in seen.items():
        dims = (0, 2, 3)
        mean = torch.stack([x.mean(dims) for x in xs]).mean(0)
        var = torch.stack([x.var(dims, unbiased=True) for x in xs]).mean(0)
        assert torch.allclose(new[k][0].double(), mean, atol=1e-5), k
        assert torch.allclose(new[k][1].double(), var, rtol=1e-5,
                              atol=1e-6), k
    assert seen.keys() == new.keys()

    # what the layers saw is what a full train-mode forward feeds them:
    # float32 rounding grows through ~60 BN layers, so the recalibration
    # must be as close to the float64 statistics as torch's own float32
    # kernels are (a biased variance alone would be off by n/(n-1) >= 1/7
    # on the 2x2 maps of the last stage of these 64x64 images). The box
    # head's RoIs are sampled among proposals whose order rounding changes
    # (untrained RPN: near-equal scores), so its layers are checked above.
    model.load_state_dict(state)
    ref = full_forward_stats(model, batches, 3, torch.float64)
    native = full_forward_stats(model, batches, 3)  # float32, torch's BN
    assert new.keys() == ref.keys()
    ref = {k: v for k, v in ref.items() if not k.startswith('roi_head')}
    native_err = max_rel_err(native, ref)
    assert native_err < 1e-3
    assert max_rel_err(new, ref) <= 2 * native_err + 1e-6


def test_features_scope_keeps_the_head_statistics():
    model = build_detector(dict(type='BN'), dict(type='BN'))
    head_bn = model.roi_head.bbox_head.shared_convs[0].bn
    head_bn.running_mean.fill_(5.0)
    neck_bn = model.neck.lateral_convs[0].bn
    neck_bn.running_mean.fill_(5.0)
    recalibrate_bn(model, ToyDetDataset(), pseudo_collate, 1, 2, seed=0,
                   scope='features')
    assert torch.all(head_bn.running_mean == 5.0)
    assert int(neck_bn.num_batches_tracked) == 1
    assert not torch.any(neck_bn.running_mean == 5.0)
    with pytest.raises(ValueError, match='scope'):
        recalibrate_bn(model, ToyDetDataset(), pseudo_collate, 1, 2, 0,
                       scope='heads')


# ------------------------------------------------------------ global RNGs
class AugmentedDataset(ToyDataset):
    """Augmentation drawn from the three global generators, as mmcv
    transforms (numpy, random) and some data preprocessors (torch) do."""

    def __getitem__(self, i):
        item = super().__getitem__(i)
        shift = (np.random.randint(0, 40) + random.randint(0, 40)
                 + int(torch.randint(0, 40, (1, ))))
        item['inputs'] = (item['inputs'].int() + shift).clamp(
            0, 255).byte()
        return item


def rng_states():
    return (random.getstate(), pickle.dumps(np.random.get_state()),
            torch.get_rng_state())


def test_global_generators_are_left_untouched_and_do_not_matter():
    model = ImageClassifier(
        backbone=dict(type='mmdetnas.DetNASShuffleNetV2',
                      arch='COCO-FPN-300M', out_indices=(3, )),
        num_classes=2)
    stats = []
    for global_seed in (11, 12):
        random.seed(global_seed)
        np.random.seed(global_seed)
        torch.manual_seed(global_seed)
        before = rng_states()
        recalibrate_bn(model, AugmentedDataset(), pseudo_collate, 2, 3,
                       seed=7)
        after = rng_states()
        assert after[0] == before[0] and after[1] == before[1]
        assert torch.equal(after[2], before[2])
        stats.append(model.backbone.stem.bn.running_mean.clone())
    # the augmentation is seeded by ``seed`` alone
    assert torch.equal(stats[0], stats[1])


def _classifier():
    torch.manual_seed(0)
    return ImageClassifier(
        backbone=dict(type='mmdetnas.DetNASShuffleNetV2',
                      arch='COCO-FPN-300M', out_indices=(3, )),
        num_classes=2)


def test_dataloader_workers_give_the_statistics_of_the_main_process():
    """The calibration images through DataLoader workers: the same images
    and the same augmentation draws as loading them in this process, so
    the same statistics bit for bit."""
    stats = []
    for workers in (0, 2):
        model = _classifier()
        inputs = []
        pre = model.data_preprocessor.forward
        model.data_preprocessor.forward = lambda d, t=False: (
            inputs.append(torch.stack(list(d['inputs'])).clone()),
            pre(d, t))[1]
        recalibrate_bn(model, AugmentedDataset(), pseudo_collate, 3, 2,
                       seed=5, num_workers=workers)
        stats.append((bn_stats(model), inputs))
    (s0, in0), (s2, in2) = stats
    assert len(in0) == len(in2) == 3
    assert all(torch.equal(a, b) for a, b in zip(in0, in2))
    for k in s0:
        assert torch.equal(s0[k][0], s2[k][0]), k
        assert torch.equal(s0[k][1], s2[k][1]), k
    # the batches are the augmented images the seeds define: each image's
    # draws come from the generators seeded for its position
    from mmdetnas.search.bn_recalibration import image_seed
    base = ToyDataset()
    idx = np.random.default_rng(5).choice(len(base), 6, replace=False)
    for j, i in enumerate(idx):
        random.seed(image_seed(5, j))
        np.random.seed(image_seed(5, j))
        torch.manual_seed(image_seed(5, j))
        shift = (np.random.randint(0, 40) + random.randint(0, 40)
                 + int(torch.randint(0, 40, (1, ))))
        want = (base[int(i)]['inputs'].int() + shift).clamp(0, 255).byte()
        assert torch.equal(in0[j // 2][j % 2], want), j


def test_draws_of_the_forward_do_not_depend_on_the_loading():
    """A forward that draws from the global generators (mmdet's RoI
    sampler in a whole-model recalibration): its draws are fixed by the
    seed and the batch, not by what loading the images left in the
    generators (in-process loading re-seeds them per image, workers do
    not) nor by the generators' state before the call."""
    from mmdetnas.search.bn_recalibration import forward_seed
    stats, noises = [], []
    for workers, before in ((0, 1), (2, 1), (2, 77)):
        torch.manual_seed(before)
        model = _classifier()
        noise = []
        pre = model.data_preprocessor.forward

        def noisy(d, t=False, pre=pre, noise=noise):
            out = pre(d, t)
            z = torch.rand(out['inputs'].shape)  # the forward's own draw
            noise.append(z)
            out['inputs'] = out['inputs'] + z
            return out

        model.data_preprocessor.forward = noisy
        recalibrate_bn(model, AugmentedDataset(), pseudo_collate, 3, 2,
                       seed=5, num_workers=workers)
        stats.append(bn_stats(model))
        noises.append(noise)
    # the draws, derived by hand: the generators seeded for batch b
    for b in range(3):
        torch.manual_seed(forward_seed(5, b))
        want = torch.rand(noises[0][b].shape)
        for noise in noises:
            assert torch.equal(noise[b], want), b
    for other in stats[1:]:
        for k in stats[0]:
            assert torch.equal(stats[0][k][0], other[k][0]), k
            assert torch.equal(stats[0][k][1], other[k][1]), k


@pytest.mark.parametrize('kernel', ['reduction', 'torch'])
def test_no_host_sync_per_layer(monkeypatch, kernel):
    """The BN forward of a recalibration reads no device value on the host
    (``float(num_batches_tracked)`` was one sync per layer per batch)."""
    model = _classifier()
    reads = []
    for name in ('__float__', 'item', '__int__', '__bool__'):
        orig = getattr(torch.Tensor, name)

        def spy(self, *a, _orig=orig, _name=name, **k):
            reads.append(_name)
            return _orig(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, spy)
    recalibrate_bn(model, ToyDataset(), pseudo_collate, 2, 2, seed=0,
                   kernel=kernel)
    monkeypatch.undo()
    # what reads remain (data preprocessing, the sampler) do not grow with
    # the BN layers: the old forward read one value per layer and batch
    n_bn = sum(isinstance(m, _BatchNorm) for m in model.modules())
    assert n_bn > 40
    assert len(reads) < n_bn // 4, reads
    assert '__float__' not in reads
    assert int(model.backbone.stem.bn.num_batches_tracked) == 2


def test_torch_kernel_gives_the_reduction_statistics():
    stats = []
    for kernel in ('reduction', 'torch'):
        model = _classifier()
        recalibrate_bn(model, ToyDataset(), pseudo_collate, 3, 4, seed=2,
                       kernel=kernel)
        stats.append(bn_stats(model))
    # both against the same recalibration in float64 (the statistics up
    # to float32 rounding): torch's kernel is as close as the reductions
    model = _classifier().double()
    pre = model.data_preprocessor.forward

    def pre64(data, training=False):
        out = pre(data, training)
        out['inputs'] = out['inputs'].double()
        return out

    model.data_preprocessor.forward = pre64
    recalibrate_bn(model, ToyDataset(), pseudo_collate, 3, 4, seed=2,
                   kernel='reduction')
    ref = bn_stats(model)
    errs = [max_rel_err(s, ref) for s in stats]
    # float32 rounding compounds through ~60 layers: measured 1.3e-3 for
    # the reductions and 4.9e-3 for torch's CPU kernel (its one-pass
    # variance); a wrong count or factor gives errors of order 1
    assert max(errs) < 1e-2, errs
    for k in stats[0]:
        assert stats[0][k][2] == stats[1][k][2] == 3
    with pytest.raises(ValueError, match='cuda_magic'):
        recalibrate_bn(_classifier(), ToyDataset(), pseudo_collate, 1, 2,
                       seed=0, kernel='cuda_magic')


def _classifier64(seen=None):
    """:func:`_classifier` in float64 (inputs too), so that what is
    compared is the arithmetic of the combination, not float32 rounding
    in another accumulation order; ``seen`` collects the batch sizes."""
    model = _classifier().double()
    pre = model.data_preprocessor.forward

    def pre64(data, training=False):
        if seen is not None:
            seen.append(len(data['inputs']))
        out = pre(data, training)
        out['inputs'] = out['inputs'].double()
        return out

    model.data_preprocessor.forward = pre64
    return model


def _shard_worker(rank, world, store, out):
    import torch.distributed as tdist
    # a file rendezvous: no port to collide with an earlier test's
    tdist.init_process_group('gloo', init_method=f'file://{store}',
                             rank=rank, world_size=world)
    try:
        seen = []
        model = _classifier64(seen)
        recalibrate_bn(model, AugmentedDataset(), pseudo_collate, 5, 2,
                       seed=9, shard=(rank, world))
        torch.save(dict(stats=bn_stats(model), batches=len(seen)),
                   f'{out}.{rank}')
    finally:
        tdist.barrier()  # both ranks tear down together
        tdist.destroy_process_group()


def test_data_parallel_shares_combine_to_the_single_process_statistics(
        tmp_path):
    """Two processes, each on its share of the 5 batches (3 and 2), end
    with the statistics one process computes from all 5."""
    import torch.multiprocessing as mp
    out = str(tmp_path / 'rank')
    mp.spawn(_shard_worker, args=(2, str(tmp_path / 'store'), out),
             nprocs=2)
    ranks = [torch.load(f'{out}.{r}', weights_only=False) for r in (0, 1)]
    assert [r['batches'] for r in ranks] == [3, 2]
    model = _classifier64()
    recalibrate_bn(model, AugmentedDataset(), pseudo_collate, 5, 2, seed=9)
    want = bn_stats(model)
    for r in ranks:
        for k, (mean, var, n) in want.items():
            got = r['stats'][k]
            assert got[2] == n == 5, k
            # float64 on both sides: only the order of the sums differs
            assert torch.allclose(got[0], mean, atol=1e-12, rtol=1e-9), k
            assert torch.allclose(got[1], var, atol=1e-12, rtol=1e-9), k
