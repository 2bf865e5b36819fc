"""EvolutionSearchLoop refuses bad settings naming the value that is wrong
(issue 22, probes 8 and 9), and a score_key its evaluator will not return
before any candidate is scored or any file is touched (probe 7).

The runner is the scoring stand-in of test_evolution_search_loop.py; the
evaluator of the score_key check is mmdet's real CocoMetric."""
import os

import pytest
from mmdet.evaluation.metrics import CocoMetric
from mmengine.evaluator import Evaluator

from tests.test_engine.test_evolution_search_loop import (  # noqa: F401
    FakeRunner, make_loop, new_loop)

BASE = dict(population_size=10, top_k=3, num_mutation=4, num_crossover=3,
            max_generations=4)


@pytest.mark.parametrize('change,blamed', [
    # probe 8: used to be blamed on num_mutation + num_crossover
    (dict(population_size=0), 'train_cfg.population_size must be an int '
     '>= 1 (candidates per generation), got 0'),
    # probe 9: everything 0: the first setting is named
    (dict(population_size=0, top_k=0, num_mutation=0, num_crossover=0),
     'train_cfg.population_size must be an int >= 1'),
    (dict(population_size=-3), 'got -3'),
    (dict(population_size=2.5), 'got 2.5'),
    (dict(max_generations=0), 'train_cfg.max_generations must be an int '
     '>= 1 (generations), got 0'),
    (dict(top_k=0), 'train_cfg.top_k must be an int >= 1'),
    (dict(top_k=0, num_mutation=20), 'train_cfg.top_k'),
    (dict(num_mutation=-1), 'train_cfg.num_mutation must be an int >= 0'),
    (dict(num_crossover=None), 'train_cfg.num_crossover must be an int'),
    (dict(population_size=5), 'num_mutation (4) + num_crossover (3) = 7 '
     'exceeds population_size (5)'),
    (dict(mutate_prob=1.5), 'train_cfg.mutate_prob must be a probability '
     'in [0, 1], got 1.5'),
    (dict(max_tries_factor=0), 'train_cfg.max_tries_factor'),
])
def test_bad_settings_blame_the_wrong_value(tmp_path, change, blamed):
    with pytest.raises(ValueError) as e:
        make_loop(tmp_path, **dict(BASE, **change))
    assert blamed in str(e.value)
    assert os.listdir(tmp_path) == []


def test_settings_at_their_limits_are_accepted(tmp_path):
    loop, runner = make_loop(tmp_path, population_size=7, top_k=1,
                             num_mutation=4, num_crossover=3,
                             max_generations=1, mutate_prob=1)
    loop.run()
    assert len(runner.evaluated) == 7


def coco_runner(work_dir):
    runner = FakeRunner(work_dir)
    runner.val_loop.evaluator = Evaluator([CocoMetric(metric='bbox')])
    return runner


def test_a_score_key_the_evaluator_lacks_is_refused_before_scoring(
        tmp_path):
    # the files of an earlier search in the work dir stay where they are
    (tmp_path / 'candidates.jsonl').write_text('{"index": 0}\n')
    before = sorted(os.listdir(tmp_path))
    runner = coco_runner(tmp_path)
    loop = new_loop(runner, [], max_generations=1, population_size=2,
                    top_k=1, num_mutation=0, num_crossover=0,
                    calibrate_bn=False, score_key='coco/bbox_mAP50')
    with pytest.raises(ValueError) as e:
        loop.run()
    msg = str(e.value)
    assert "'coco/bbox_mAP50'" in msg and "'coco/bbox_mAP_50'" in msg
    assert 'CocoMetric' in msg
    assert runner.evaluated == []  # no candidate scored
    assert 'before_train' not in runner.hook_calls
    assert sorted(os.listdir(tmp_path)) == before  # no state, nothing moved
    # the right key: the same loop searches
    runner = coco_runner(tmp_path / 'ok')
    loop = new_loop(runner, [], max_generations=1, population_size=2,
                    top_k=1, num_mutation=0, num_crossover=0,
                    calibrate_bn=False, score_key='coco/bbox_mAP')
    loop.run()
    assert len(runner.evaluated) == 2
