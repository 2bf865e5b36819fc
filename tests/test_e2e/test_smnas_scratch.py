"""The SM-NAS from-scratch recipe through the user's tools, on tiny data.

``tools/train.py`` trains the quickstart-sized from-scratch config (GN + WS,
no pre-trained weights) for a few iterations and ``tools/test.py`` evaluates
the checkpoint with mmdet's CocoMetric, both in subprocesses as a user
would run them.
"""
import math
import os.path as osp

import pytest
import torch

from tests.e2e_utils import coco_options, make_tiny_coco, run_tool, scalars

CONFIG = ('configs/smnas/'
          'smnas_scratch_faster-rcnn_r18-gnws_fpn_quick_neon-trees.py')

pytestmark = pytest.mark.slow


def test_scratch_recipe_trains_and_tests(tmp_path):
    coco = make_tiny_coco(str(tmp_path / 'coco'))
    iters = 12
    wd = tmp_path / 'scratch'
    run_tool([
        'tools/train.py', CONFIG, '--work-dir',
        str(wd), '--cfg-options', *coco_options(coco),
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={iters}',
        'default_hooks.logger.interval=1', 'log_processor.window_size=1',
        'param_scheduler.0.end=2', 'randomness.seed=0'
    ])
    losses = [r['loss'] for r in scalars(str(wd)) if 'loss' in r]
    assert len(losses) == iters and all(math.isfinite(v) for v in losses)
    k = iters // 3
    assert sum(losses[-k:]) / k < sum(losses[:k]) / k, losses
    ckpt = wd / f'iter_{iters}.pth'
    assert osp.isfile(ckpt)
    # trained from scratch with GN + WS: the checkpoint holds GroupNorm
    # parameters and no BatchNorm statistics
    state = torch.load(ckpt, map_location='cpu',
                       weights_only=False)['state_dict']
    assert 'backbone.stem.1.weight' in state
    assert not any(k.endswith('running_mean') for k in state)
    out = run_tool([
        'tools/test.py', CONFIG,
        str(ckpt), '--work-dir',
        str(tmp_path / 'test'), '--cfg-options', *coco_options(coco)
    ])
    log = out.stdout + out.stderr
    assert 'coco/bbox_mAP' in log and 'coco/bbox_mAP_50' in log
