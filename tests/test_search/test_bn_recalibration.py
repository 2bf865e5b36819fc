"""BN recalibration re-estimates the statistics of exactly its batches."""
import copy
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
                                              recalibrate_bn)


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


def full_forward_stats(model, batches, seed):
    """The statistics of the previous recalibration: every BN reset, then
    the whole detector's train-mode ``loss`` on each batch (cumulative
    average), the torch generator seeded with ``seed`` (RoI sampling)."""
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    torch.manual_seed(seed)
    with torch.no_grad():
        for batch in batches:
            data = model.data_preprocessor(batch, True)
            model.loss(data['inputs'], data['data_samples'])
    model.eval()
    return bn_stats(model)


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
    hooks = [model.rpn_head.register_forward_hook(
        lambda *a: heads.append('rpn'))]
    recalibrate_bn(model, ToyDetDataset(), pseudo_collate, num_batches=2,
                   batch_size=2, seed=3)
    for h in hooks:
        h.remove()
    model.data_preprocessor.forward = pre
    new = bn_stats(model)
    assert len(batches) == 2
    # no head ran unless a head holds BN layers
    assert heads == ([] if parts else ['rpn', 'rpn'])

    model.load_state_dict(state)
    ref = full_forward_stats(model, batches, 3)
    assert new.keys() == ref.keys() and len(new) > 20
    for k, (mean, var, n) in ref.items():
        assert n == 2 == new[k][2], k
        assert torch.allclose(new[k][0], mean, rtol=1e-4, atol=1e-5), k
        assert torch.allclose(new[k][1], var, rtol=1e-4, atol=1e-5), k


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
