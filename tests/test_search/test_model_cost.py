"""Tests of measure_latency: what it times, how it reduces, its unit."""
import types

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config

from mmdetnas.search import model_cost
from tests.e2e_utils import ROOT


class FakeClock:
    """``time.perf_counter`` stand-in: seconds advance only in forward."""

    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class Timed(nn.Module):
    """Each forward takes the next of ``durations`` seconds of the clock
    and records how it was called."""

    def __init__(self, clock, durations):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.clock = clock
        self.durations = list(durations)
        self.calls = []

    def forward(self, x, mode='tensor'):
        self.calls.append((tuple(x.shape), mode, torch.is_grad_enabled()))
        self.clock.t += self.durations.pop(0)
        return self.conv(x)


@pytest.fixture
def clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(model_cost, 'time',
                        types.SimpleNamespace(perf_counter=clock))
    return clock


def test_median_in_ms_after_warmup(clock):
    # two slow warm-up forwards (not timed), then 4, 1, 3, 5, 2 ms
    model = Timed(clock, [7.0, 9.0, 0.004, 0.001, 0.003, 0.005, 0.002])
    ms = model_cost.measure_latency(model, (32, 48), warmup=2, repeats=5)
    assert isinstance(ms, float)
    assert ms == pytest.approx(3.0)  # the median, in milliseconds
    # one 1x3xHxW input per forward, raw outputs, no autograd
    assert model.calls == [((1, 3, 32, 48), 'tensor', False)] * 7
    assert model.durations == []


def test_even_repeats_and_no_warmup(clock):
    model = Timed(clock, [0.010, 0.040, 0.020, 0.030])
    # upper median of 10, 20, 30, 40 ms; the first forward is timed
    assert model_cost.measure_latency(
        model, (8, 8), warmup=0, repeats=4) == pytest.approx(30.0)


@pytest.mark.parametrize('kw', [dict(repeats=0), dict(warmup=-1)])
def test_bad_counts(kw):
    model = Timed(FakeClock(), [0.001] * 8)
    with pytest.raises(ValueError, match='repeats'):
        model_cost.measure_latency(model, (8, 8), **kw)


def test_detector_gets_data_samples(clock):
    """A detector is timed on one image with its metainfo, mode 'tensor'
    (no post-processing), with the real model behind it."""
    from mmdet.registry import MODELS

    from mmdetnas.utils.setup_env import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(
        f'{ROOT}/configs/quickstart/detnas_subnet_faster-rcnn_'
        'shufflenetv2-300m_fpn_quick_neon-trees.py')
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model).eval()
    seen = []
    forward = model.forward

    def timed_forward(inputs, data_samples=None, mode='tensor'):
        seen.append((tuple(inputs.shape), mode,
                     [s.metainfo['img_shape'] for s in data_samples]))
        clock.t += 0.25
        return forward(inputs, data_samples, mode)

    model.forward = timed_forward
    ms = model_cost.measure_latency(model, (64, 96), warmup=1, repeats=2)
    assert ms == pytest.approx(250.0)
    assert seen == [((1, 3, 64, 96), 'tensor', [(64, 96)])] * 3
