"""The Runner of an SM-NAS candidate: one evaluation scores it (mmengine's
train loop validates at its end; no second ``runner.val()``), and
:func:`mmdetnas.utils.release_runner` leaves no logger, message hub,
visualizer, default scope, open file or model behind."""
import argparse
import gc
import os
import os.path as osp
import time
import weakref

import pytest
import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.logging import MessageHub, MMLogger
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.visualization import Visualizer
from torch.utils.data import Dataset

from mmdetnas.utils import release_runner
from mmdetnas.utils.setup_env import register_all_modules
from tests.e2e_utils import ROOT, coco_options, make_tiny_coco

CONFIG = osp.join(ROOT, 'configs', 'smnas',
                  'smnas_structural_faster-rcnn_mixed_fpn_quick_neon-trees.py')


# ------------------------------------------- one evaluation per candidate
def _cfg_options(opts):
    """``key=value`` strings parsed as ``--cfg-options`` parses them."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(['--cfg-options', *opts]).cfg_options


@pytest.fixture
def counted_evaluator(monkeypatch):
    """Every ``Evaluator.evaluate`` call (its returned metrics) and the
    number of ``Evaluator.process`` calls (val batches)."""
    calls = dict(evaluate=[], process=0)
    evaluate, process = Evaluator.evaluate, Evaluator.process

    def counting_evaluate(self, size):
        metrics = evaluate(self, size)
        calls['evaluate'].append(dict(metrics))
        return metrics

    def counting_process(self, *args, **kwargs):
        calls['process'] += 1
        return process(self, *args, **kwargs)

    monkeypatch.setattr(Evaluator, 'evaluate', counting_evaluate)
    monkeypatch.setattr(Evaluator, 'process', counting_process)
    return calls


@pytest.mark.slow
def test_an_smnas_candidate_is_evaluated_once(tmp_path, counted_evaluator):
    register_all_modules()
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    from tests.e2e_utils import SearchRun

    coco = make_tiny_coco(str(tmp_path / 'coco'), num_images=4, size=64)
    num_val = 2  # make_tiny_coco's val split: the first half
    cfg = Config.fromfile(CONFIG)
    # val_interval=1 with 2 iterations: mmengine's loop alone would
    # validate twice, and the old driver's runner.val() a third time
    cfg.merge_from_dict(_cfg_options(coco_options(coco) + [
        'train_cfg.candidate_train_cfg.max_iters=2',
        'train_cfg.candidate_train_cfg.val_interval=1',
        'param_scheduler.0.end=1', 'param_scheduler.1.end=2',
        'param_scheduler.1.milestones=[1]',
        'train_cfg.latency_repeats=1',
        'train_cfg.latency_warmup=0']))
    search = SearchRun(cfg, tmp_path / 'search')
    genome = search.space.validate(dict(
        backbone='r18', neck='fpn32', head='retinanet', roi_head=None,
        input_size='s256'))

    record = search.evaluate(genome)
    calls = counted_evaluator
    assert len(calls['evaluate']) == 1, calls['evaluate']
    # one pass over the val split (batch size 1)
    assert calls['process'] == num_val
    score_key = search.score_key
    assert record['score'] == float(calls['evaluate'][0][score_key])
    assert record['metrics'] == {
        k: float(v) if isinstance(v, (int, float)) else v
        for k, v in calls['evaluate'][0].items()}
    # the candidate really trained to its end
    cand_dir = osp.dirname(record['config'])
    assert osp.isfile(osp.join(cand_dir, 'iter_2.pth'))
    # the config the user re-trains with keeps the val_interval they wrote
    dumped = Config.fromfile(record['config'])
    assert dumped.train_cfg.val_interval == 1
    assert dumped.train_cfg.max_iters == 2

    # a resumed search whose candidate checkpoint is already at the end:
    # nothing trains, nothing validates at the end of training, and
    # runner.val() scores the same weights once
    search.loop.resume = True
    again = search.evaluate(genome)
    assert len(calls['evaluate']) == 2
    assert calls['process'] == 2 * num_val
    assert again['score'] == float(calls['evaluate'][1][score_key])
    assert again['score'] == record['score']


def test_validate_at_end_only_keeps_the_original():
    from mmdetnas.engine.loops import validate_at_end_only
    for train_cfg, key in (
            (dict(type='IterBasedTrainLoop', max_iters=7, val_interval=2,
                  dynamic_intervals=[(4, 1)]), 'max_iters'),
            (dict(type='EpochBasedTrainLoop', max_epochs=3, val_interval=1),
             'max_epochs'),
            (dict(by_epoch=True, max_epochs=5), 'max_epochs'),
            (dict(by_epoch=False, max_iters=9, val_interval=100),
             'max_iters')):
        cfg = Config(dict(train_cfg=train_cfg))
        run = validate_at_end_only(cfg)
        assert run.train_cfg.val_interval == train_cfg[key]
        assert 'dynamic_intervals' not in run.train_cfg
        assert cfg.train_cfg.to_dict() == train_cfg  # not changed
    other = Config(dict(train_cfg=dict(type='ValLoop', val_interval=2)))
    assert validate_at_end_only(other).train_cfg.val_interval == 2


# ------------------------------------------------------ released runners
class _Points(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, i):
        x = torch.full((4, ), float(i))
        return dict(inputs=x, target=x.sum(0, keepdim=True))


class _Regressor(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 1)

    def forward(self, inputs, target=None, mode='tensor'):
        out = self.fc(torch.stack(inputs))
        if mode == 'loss':
            return dict(loss=((out - torch.stack(target))**2).mean())
        return [dict(pred=o) for o in out]


class _Mse(BaseMetric):

    def process(self, data_batch, data_samples):
        for s, t in zip(data_samples, data_batch['target']):
            self.results.append(float((s['pred'] - t)**2))

    def compute_metrics(self, results):
        return dict(mse=sum(results) / len(results))


def _loader():
    return dict(dataset=_Points(), batch_size=4, num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=False),
                collate_fn=pseudo_collate)


def _train_runner(root, i):
    """A small Runner made and trained like a search candidate's: its own
    work dir and experiment name, a LocalVisBackend visualizer, a log file,
    a validation."""
    runner = Runner(
        model=_Regressor(), work_dir=osp.join(root, f'{i:03d}'),
        experiment_name=f'cand{i:03d}_{time.time_ns()}',
        train_dataloader=_loader(), val_dataloader=_loader(),
        val_evaluator=Evaluator(_Mse()), val_cfg=dict(),
        train_cfg=dict(by_epoch=False, max_iters=2, val_interval=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=None),
        visualizer=dict(type='Visualizer',
                        vis_backends=[dict(type='LocalVisBackend')]),
        log_processor=dict(by_epoch=False), default_scope='mmengine')
    runner.train()
    return runner


def _counts():
    gc.collect()
    return dict(fds=len(os.listdir('/proc/self/fd')),
                loggers=len(MMLogger._instance_dict),
                message_hubs=len(MessageHub._instance_dict),
                visualizers=len(Visualizer._instance_dict),
                default_scopes=len(DefaultScope._instance_dict))


@pytest.mark.skipif(not osp.isdir('/proc/self/fd'),
                    reason='counts open files in /proc/self/fd')
def test_released_runners_leave_nothing_behind(tmp_path):
    # the search's own logger, made before its candidates
    search_log = str(tmp_path / 'search.log')
    search_logger = MMLogger.get_instance(
        f'search_{time.time_ns()}', logger_name='mmdetnas',
        log_file=search_log)
    hub_before = MessageHub.get_current_instance()
    scope_before = DefaultScope.get_current_instance()
    start = _counts()

    # without release: every Runner leaves one of each behind (the test
    # measures something)
    kept = []
    for i in range(2):
        kept.append(_train_runner(str(tmp_path / 'kept'), i))
        now = _counts()
        for key, value in now.items():
            assert value >= start[key] + i + 1, (key, i, now, start)
    # release_runner gives all of it back, the model included
    models = [weakref.ref(r.model) for r in kept]
    for runner in kept:
        release_runner(runner)
    assert all(ref() is None for ref in models)  # the runners still exist
    assert _counts() == start
    del kept

    # 20 candidates, each released: nothing grows after the first
    first = None
    for i in range(20):
        runner = _train_runner(str(tmp_path / 'released'), i)
        log_file = runner.logger.log_file
        model = weakref.ref(runner.model)
        release_runner(runner)
        assert model() is None
        # the search's logger is current again and still writes to its file
        assert MMLogger.get_current_instance() is search_logger
        assert MessageHub.get_current_instance() is hub_before
        assert DefaultScope.get_current_instance() is scope_before
        # the candidate's log was written and closed, not deleted
        assert osp.getsize(log_file) > 0
        del runner
        now = _counts()
        first = first or now
        assert now == first, (i, now, first)
    assert first == start
    search_logger.info('after the candidates')
    for handler in search_logger.handlers:
        handler.flush()
    with open(search_log) as f:
        assert 'after the candidates' in f.read()
    for handler in list(search_logger.handlers):
        handler.close()
        search_logger.removeHandler(handler)
    MMLogger._instance_dict.pop(search_logger.instance_name)
