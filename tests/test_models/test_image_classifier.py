"""Tests of mmdetnas.models.ImageClassifier, incl. an mmengine Runner run of
supernet pre-training on a tiny ImageNet-layout folder."""
import math

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.structures import BaseDataElement

from mmdetnas.models import ImageClassifier

SUBNET = dict(
    type='mmdetnas.DetNASShuffleNetV2',
    arch='COCO-FPN-300M',
    out_indices=(3, ),
    with_last_conv=True)
SUPERNET = dict(
    type='mmdetnas.DetNASShuffleNetV2', out_indices=(3, ), with_last_conv=True)


@pytest.fixture(autouse=True)
def mmdet_scope():
    # configs say type='mmdetnas.X' and run under default_scope='mmdet'
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


def _samples(labels):
    return [BaseDataElement(gt_label=torch.tensor([y])) for y in labels]


def test_structure_and_shapes():
    torch.manual_seed(0)
    model = ImageClassifier(backbone=SUBNET, num_classes=5)
    assert model.head.fc.in_features == 1024  # backbone.out_channels[-1]
    keys = list(model.state_dict())
    assert all(k.startswith(('backbone.', 'head.fc.')) for k in keys)
    assert 'head.fc.weight' in keys
    assert 'backbone.last_conv.conv.weight' in keys
    model.eval()
    logits = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 5)
    with pytest.raises(ValueError, match='invalid mode'):
        model(torch.randn(2, 3, 32, 32), mode='nope')
    with pytest.raises(ValueError, match='num_classes'):
        ImageClassifier(backbone=SUBNET, num_classes=0)
    with pytest.raises(ValueError, match='label_smoothing'):
        ImageClassifier(backbone=SUBNET, num_classes=2, label_smoothing=1.5)
    # in_channels override, dropout layer
    model = ImageClassifier(
        backbone=SUBNET, num_classes=2, in_channels=1024, dropout=0.2)
    assert isinstance(model.head.dropout, torch.nn.Dropout)
    # the classified map is the last of out_indices, not always stage 3
    model = ImageClassifier(
        backbone=dict(SUBNET, out_indices=(0, 1), with_last_conv=False),
        num_classes=2)
    chans = model.backbone.out_channels
    assert model.head.fc.in_features == chans[1] != chans[3]
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 2)
    # SPOS init of the classifier: N(0, 0.01) weights, zero bias
    model.init_weights()
    assert model.head.fc.bias.abs().max().item() == 0
    assert model.head.fc.weight.std().item() == pytest.approx(0.01, rel=0.1)


def test_label_smoothing_matches_hand_computation():
    torch.manual_seed(0)
    model = ImageClassifier(
        backbone=SUBNET, num_classes=4, label_smoothing=0.1).eval()
    x, labels = torch.randn(3, 3, 32, 32), [0, 3, 1]
    with torch.no_grad():
        logits = model(x)
        loss_smooth = model(x, _samples(labels), mode='loss')['loss']
        model.label_smoothing = 0.0
        loss_plain = model(x, _samples(labels), mode='loss')['loss']
    logp = torch.log_softmax(logits.double(), dim=1)
    nll = -logp[torch.arange(3), labels]  # (3, )
    uniform = -logp.mean(dim=1)  # cross-entropy against the uniform target
    assert loss_plain.item() == pytest.approx(nll.mean().item(), rel=1e-5)
    expected = (0.9 * nll + 0.1 * uniform).mean().item()
    assert loss_smooth.item() == pytest.approx(expected, rel=1e-5)
    assert abs(loss_smooth.item() - loss_plain.item()) > 1e-4


def test_loss_decreases_with_sgd():
    torch.manual_seed(0)
    model = ImageClassifier(
        backbone=SUBNET, num_classes=3, label_smoothing=0.0).train()
    x = torch.randn(6, 3, 64, 64)  # 2x2 maps at stride 32 for the BNs
    samples = _samples([0, 1, 2, 0, 1, 2])
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(8):
        loss = model(x, samples, mode='loss')['loss']
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(math.log(3), abs=0.3)
    assert losses[-1] < 0.6 * losses[0], losses


def test_predict_and_data_preprocessor():
    torch.manual_seed(0)
    model = ImageClassifier(
        backbone=SUBNET,
        num_classes=4,
        data_preprocessor=dict(
            type='ImgDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True)).eval()
    imgs = [
        torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8) for _ in range(3)
    ]
    samples = _samples([2, 0, 1])
    for s in samples:
        s.set_metainfo(dict(img_path='x.jpg'))
    out = model.test_step(dict(inputs=imgs, data_samples=samples))
    assert len(out) == 3
    data = model.data_preprocessor(dict(inputs=imgs), False)
    with torch.no_grad():
        logits = model(data['inputs'])
    for s, y, row in zip(out, [2, 0, 1], logits):
        assert s.pred_score.shape == (4, )
        assert s.pred_score.sum().item() == pytest.approx(1.0, abs=1e-6)
        assert s.pred_label.shape == (1, )
        assert s.pred_label.item() == row.argmax().item()
        assert s.gt_label.item() == y and s.img_path == 'x.jpg'
    # no data samples: new ones are created
    with torch.no_grad():
        out = model(data['inputs'], mode='predict')
    assert len(out) == 3 and 'gt_label' not in out[0]
    # supernet without a path: a clear error from the backbone
    supernet = ImageClassifier(backbone=SUPERNET, num_classes=4)
    assert supernet.backbone.is_supernet
    with pytest.raises(RuntimeError, match='no active path'):
        supernet(torch.randn(1, 3, 32, 32))


def _make_imagenet(root, classes=('a', 'b'), per_class=4):
    rng = np.random.RandomState(0)
    for split in ('train', 'val'):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                img = rng.randint(0, 256, (32, 32, 3), np.uint8)
                cv2.imwrite(str(root / split / c / f'{i}.JPEG'), img)


def test_runner_supernet_pretraining(tmp_path):
    from mmengine.runner import Runner
    _make_imagenet(tmp_path / 'data')
    pack = dict(type='mmdetnas.PackClsInputs')
    dataset = dict(
        type='mmdetnas.ImageNetDataset', data_root=str(tmp_path / 'data'))
    work_dir = tmp_path / 'work'
    runner = Runner(
        model=dict(
            type='mmdetnas.ImageClassifier',
            backbone=SUPERNET,
            num_classes=2,
            data_preprocessor=dict(
                type='ImgDataPreprocessor',
                mean=[123.675, 116.28, 103.53],
                std=[58.395, 57.12, 57.375],
                bgr_to_rgb=True)),
        work_dir=str(work_dir),
        train_dataloader=dict(
            batch_size=2,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True),
            dataset=dict(
                **dataset,
                data_prefix=dict(img_path='train'),
                pipeline=[
                    dict(type='LoadImageFromFile'),
                    dict(type='mmdetnas.RandomResizedCrop', size=32),
                    dict(type='RandomFlip', prob=0.5),
                    pack,
                ])),
        val_dataloader=dict(
            batch_size=4,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(
                **dataset,
                data_prefix=dict(img_path='val'),
                test_mode=True,
                pipeline=[
                    dict(type='LoadImageFromFile'),
                    dict(type='mmdetnas.ResizeEdge', scale=36),
                    dict(type='CenterCrop', crop_size=32),
                    pack,
                ])),
        val_evaluator=dict(type='mmdetnas.Accuracy', topk=(1, 2)),
        train_cfg=dict(by_epoch=False, max_iters=4, val_interval=4),
        val_cfg=dict(),
        optim_wrapper=dict(
            optimizer=dict(
                type='SGD', lr=0.01, momentum=0.9, weight_decay=4e-5)),
        custom_hooks=[dict(type='mmdetnas.PathSamplerHook')],
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=4, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0),
        default_scope='mmdet',
        log_level='WARNING')
    model = runner.train()
    assert runner.iter == 4
    assert model.backbone.is_supernet and model.backbone.arch is not None
    # validation ran and logged both accuracies
    scalars = (work_dir / runner.timestamp / 'vis_data' /
               'scalars.json').read_text()
    assert 'accuracy/top1' in scalars and 'accuracy/top2' in scalars
    assert '"accuracy/top2": 100.0' in scalars  # 2 classes
    ckpt = work_dir / 'iter_4.pth'
    assert ckpt.is_file()
    state = torch.load(str(ckpt), map_location='cpu', weights_only=False)
    assert 'path_sampler' in state  # saved by PathSamplerHook
    assert 'head.fc.weight' in state['state_dict']
    assert any(k.startswith('backbone.layers.0.') for k in state['state_dict'])
