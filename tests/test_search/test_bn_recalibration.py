"""BN recalibration re-estimates the statistics of exactly its batches."""
import torch
from mmengine.dataset import pseudo_collate
from mmengine.structures import BaseDataElement

from mmdetnas.models.classifiers import ImageClassifier
from mmdetnas.search.bn_recalibration import arch_seed, recalibrate_bn


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
