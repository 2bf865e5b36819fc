"""The DetNAS training stages through the user's tools, on tiny data.

Each test runs ``tools/train.py`` / ``tools/test.py`` in a subprocess, as a
user would, with a quickstart config pointed at tiny data made here.
"""
import math
import os.path as osp

import pytest
import torch

from tests.e2e_utils import (coco_options, make_tiny_coco, make_tiny_imagenet,
                             run_tool, scalars)

QS = 'configs/quickstart'
FRCNN = (
    f'{QS}/'
    f'detnas_supernet_faster-rcnn_shufflenetv2-300m_fpn_quick_neon-trees.py')
RETINA = (
    f'{QS}/'
    f'detnas_supernet_retinanet_shufflenetv2-300m_fpn_quick_neon-trees.py')
SUBNET = (
    f'{QS}/'
    f'detnas_subnet_faster-rcnn_shufflenetv2-300m_fpn_quick_neon-trees.py')
CLS = (f'{QS}/'
       f'detnas_supernet_shufflenetv2-300m_quick_fashion-mnist.py')

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    return make_tiny_coco(str(tmp_path_factory.mktemp('coco')))


def losses(work_dir):
    return [r['loss'] for r in scalars(work_dir) if 'loss' in r]


def train(config, work_dir, *opts, extra=()):
    return run_tool([
        'tools/train.py', config, '--work-dir',
        str(work_dir), *extra, '--cfg-options', *opts
    ])


def assert_learns(work_dir):
    vals = losses(work_dir)
    assert vals and all(math.isfinite(v) for v in vals)
    k = max(1, len(vals) // 3)
    assert sum(vals[-k:]) / k < sum(vals[:k]) / k, vals


def test_classifier_supernet_trains_and_resumes(tmp_path):
    data = make_tiny_imagenet(str(tmp_path / 'imgs'), per_class=6)
    opts = [
        f'train_dataloader.dataset.data_root={data}',
        f'val_dataloader.dataset.data_root={data}',
        f'test_dataloader.dataset.data_root={data}', 'model.num_classes=2',
        'val_evaluator.topk=[1]', 'train_dataloader.batch_size=8',
        'train_dataloader.num_workers=0', 'optim_wrapper.optimizer.lr=0.01',
        'default_hooks.logger.interval=1', 'log_processor.window_size=1',
        'default_hooks.checkpoint.interval=20', 'train_cfg.val_interval=40',
        'default_hooks.checkpoint.max_keep_ckpts=3'
    ]
    wd = tmp_path / 'work'
    out = train(CLS, wd, 'train_cfg.max_iters=40', *opts)
    assert_learns(wd)
    assert osp.isfile(wd / 'iter_40.pth')
    assert 'accuracy/top1' in out.stdout + out.stderr
    assert 'BN recalibrated' in out.stdout + out.stderr
    # an explicit --resume PATH continues from iteration 20
    wd2 = tmp_path / 'resumed'
    out = train(
        CLS,
        wd2,
        'train_cfg.max_iters=24',
        *opts,
        extra=['--resume', str(wd / 'iter_20.pth')])
    log = out.stdout + out.stderr
    assert 'resumed epoch: 0, iter: 20' in log
    iters = [r['iter'] for r in scalars(wd2) if 'loss' in r]
    assert iters and min(iters) == 21 and max(iters) == 24


def test_frcnn_supernet_trains_and_auto_resumes(coco, tmp_path):
    opts = coco_options(coco) + [
        'model.backbone.init_cfg=None', 'default_hooks.logger.interval=1',
        'log_processor.window_size=1', 'default_hooks.checkpoint.interval=4',
        'train_cfg.val_interval=100',
        'default_hooks.checkpoint.max_keep_ckpts=3'
    ]
    wd = tmp_path / 'frcnn'
    out = train(FRCNN, wd, 'train_cfg.max_iters=8', *opts)
    assert 'SyncBN -> BN' in out.stdout + out.stderr
    assert_learns(wd)
    assert osp.isfile(wd / 'iter_8.pth')
    # --resume without a path: the latest checkpoint of the work dir
    out = train(FRCNN, wd, 'train_cfg.max_iters=10', *opts, extra=['--resume'])
    assert 'resumed epoch: 0, iter: 8' in out.stdout + out.stderr
    # the resumed run trained iterations 9 and 10 and saved the last one
    ckpt = torch.load(wd / 'iter_10.pth', map_location='cpu',
                      weights_only=False)
    assert ckpt['meta']['iter'] == 10
    assert (wd / 'last_checkpoint').read_text().strip().endswith(
        'iter_10.pth')
    # the optimizer state went on from the resumed one: SGD momentum
    # buffers exist for the trained parameters
    assert ckpt['optimizer']['state']


def test_retinanet_supernet_trains(coco, tmp_path):
    opts = coco_options(coco) + [
        'model.backbone.init_cfg=None', 'default_hooks.logger.interval=1',
        'log_processor.window_size=1', 'default_hooks.checkpoint.interval=24',
        'train_cfg.val_interval=100', 'param_scheduler.0.end=2',
        'optim_wrapper.optimizer.lr=0.02', 'randomness.seed=0'
    ]
    # a new random path every iteration makes the focal loss noisy: 16
    # iterations at lr 0.01 did not always show a decrease; 24 at lr 0.02
    # did for seeds 0, 1 and 2 (3-5% lower in the last third), and the seed
    # makes the run repeatable
    wd = tmp_path / 'retina'
    train(RETINA, wd, 'train_cfg.max_iters=24', *opts)
    assert_learns(wd)
    assert osp.isfile(wd / 'iter_24.pth')


def test_subnet_trains_and_tests_with_coco_metric(coco, tmp_path):
    opts = coco_options(coco) + [
        'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=8', 'train_cfg.val_interval=100',
        'model.backbone.arch=COCO-FPN-300M', 'model.backbone.init_cfg=None'
    ]
    wd = tmp_path / 'subnet'
    train(SUBNET, wd, 'train_cfg.max_iters=8', *opts)
    assert_learns(wd)
    out = run_tool([
        'tools/test.py', SUBNET,
        str(wd / 'iter_8.pth'), '--work-dir',
        str(tmp_path / 'test'), '--cfg-options', *coco_options(coco),
        'model.backbone.arch=COCO-FPN-300M'
    ])
    log = out.stdout + out.stderr
    assert 'coco/bbox_mAP' in log and 'coco/bbox_mAP_50' in log


def test_missing_files_give_clear_errors(tmp_path):
    out = run_tool(['tools/test.py', SUBNET,
                    str(tmp_path / 'nope.pth')],
                   check=False)
    assert out.returncode != 0
    assert 'checkpoint not found' in out.stderr
    out = run_tool(['tools/train.py', str(tmp_path / 'nope.py')], check=False)
    assert 'config not found' in out.stderr
