"""Inference backends for timing and ONNX export: every backend runs the
same exported network and agrees with PyTorch, a measurement says what it
was measured with, bad settings and missing packages are named, an export
that computes something else is refused, and the exported file runs
without torch or mmdetnas."""
import builtins
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

from mmdetnas.deploy import (BACKENDS, DeployableModel, ExportMismatchError,
                             build_backend, check_onnx, deployable_input,
                             export_onnx, require_package)
from mmdetnas.models.backbones.detnas_shufflenetv2 import DetNASShuffleNetV2

TINY = dict(name='tiny', stem_channels=8, stage_channels=[16, 32, 64, 128],
            stage_blocks=[1, 2, 1, 1], last_channels=256,
            choices=['shuffle_3x3', 'shuffle_xception'])
ARCH = ('shuffle_xception', 'shuffle_3x3', 'shuffle_xception',
        'shuffle_3x3', 'shuffle_3x3')


def subnet():
    torch.manual_seed(0)
    m = DetNASShuffleNetV2(search_space=TINY, arch=list(ARCH)).eval()
    # non-trivial BN statistics, so a wrong export shows
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    return m


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('onnx') / 'tiny.onnx')
    x = deployable_input((64, 96))
    diff = export_onnx(DeployableModel(subnet()), x, path)
    return path, x, diff


def test_export_agrees_with_pytorch_on_every_onnx_backend(exported):
    path, x, diff = exported
    assert 0 <= diff < 1e-4
    with torch.no_grad():
        ref = [t.numpy() for t in subnet()(x)]
    assert [r.shape for r in ref] == [(1, 16, 16, 24), (1, 32, 8, 12),
                                     (1, 64, 4, 6), (1, 128, 2, 3)]
    for name in ('onnxruntime', 'openvino'):
        got = build_backend(name, device='cpu').run_onnx(path, (x, ))
        assert len(got) == 4
        for g, r in zip(got, ref):
            assert g.shape == r.shape
            assert np.abs(g - r).max() <= 1e-4 + 1e-3 * np.abs(r).max()


def test_an_export_that_computes_something_else_is_refused(exported):
    path, x, _ = exported
    other = subnet()
    with torch.no_grad():
        other.stem.conv.weight.mul_(1.5)  # another network than the file's
    with pytest.raises(ExportMismatchError) as e:
        check_onnx(path, DeployableModel(other), x)
    assert 'output 0 differs from PyTorch by up to' in str(e.value)
    assert path in str(e.value)


@pytest.mark.parametrize('name', BACKENDS)
def test_a_timing_records_what_it_was_measured_with(name):
    b = build_backend(name, device='cpu', threads=1, warmup=1, repeats=3,
                      rounds=2)
    t = b.time(DeployableModel(subnet()), deployable_input((64, 64)))
    assert t.backend == name and t.backend_version
    assert t.device.startswith('cpu: ') and len(t.device) > 5
    assert (t.threads, t.batch, t.warmup) == (1, 1, 1)
    assert t.input_shape == [1, 3, 64, 64]
    assert t.repeats == 6  # 3 calls in each of 2 rounds
    assert 0 < t.min_ms <= t.median_ms <= t.max_ms
    assert 0 <= t.iqr_ms <= t.max_ms - t.min_ms
    assert name in t.describe() and 'ms' in t.describe()


def test_time_many_interleaves_rounds():
    b = build_backend('torch', device='cpu', warmup=1, repeats=2, rounds=3)
    order = []
    runs = [lambda: order.append('a'), lambda: order.append('b')]
    ts = b.time_many(runs, [(1, 3, 8, 8)] * 2)
    # warmed up once each, then 3 rounds of 2 calls, in turn
    assert order == ['a', 'b'] + ['a', 'a', 'b', 'b'] * 3
    assert [t.repeats for t in ts] == [6, 6]


def test_summary_statistics_by_hand():
    b = build_backend('torch', device='cpu')
    t = b.summarize([4.0, 1.0, 3.0, 2.0, 10.0], (2, 3, 8, 8))
    assert t.median_ms == 3.0 and t.min_ms == 1.0 and t.max_ms == 10.0
    # numpy's linear percentiles of 1,2,3,4,10: 2 and 4
    assert t.iqr_ms == pytest.approx(2.0)
    assert t.batch == 2 and t.repeats == 5


@pytest.mark.parametrize('kwargs,message', [
    (dict(threads=0), 'latency threads must be >= 1, got 0'),
    (dict(repeats=0), 'repeats=0'),
    (dict(rounds=0), 'rounds=0'),
    (dict(warmup=-1), 'warmup=-1'),
    (dict(device='tpu'), "'tpu'"),
])
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError) as e:
        build_backend('onnxruntime', **kwargs)
    assert message in str(e.value)


def test_an_unknown_backend_is_named():
    with pytest.raises(ValueError) as e:
        build_backend('tensorrt')
    assert "'tensorrt'" in str(e.value) and 'openvino' in str(e.value)


def test_openvino_refuses_cuda():
    with pytest.raises(ValueError, match="runs on the CPU; got device"):
        build_backend('openvino', device='cuda')


@pytest.mark.skipif(torch.cuda.is_available(), reason='a CPU-only check')
def test_cuda_asked_for_without_cuda_is_named():
    with pytest.raises(ValueError, match="latency device 'cuda'"):
        build_backend('torch', device='cuda')
    with pytest.raises(ValueError, match='CUDAExecutionProvider'):
        build_backend('onnxruntime', device='cuda')


@pytest.mark.parametrize('name,package', [('onnxruntime', 'onnxruntime'),
                                          ('openvino', 'openvino')])
def test_a_missing_package_is_named(monkeypatch, name, package):
    real = builtins.__import__

    def fake(mod, *a, **k):
        if mod == package or mod.startswith(package + '.'):
            raise ImportError(f'No module named {mod!r}')
        return real(mod, *a, **k)

    monkeypatch.setattr(builtins, '__import__', fake)
    with pytest.raises(ImportError) as e:
        require_package(name)
    assert f'pip install {package}' in str(e.value)
    with pytest.raises(ImportError, match=f'needs the package {package!r}'):
        build_backend(name)


def test_the_exported_file_runs_without_torch_or_mmdetnas(exported):
    path, x, _ = exported
    np.save(osp.join(osp.dirname(path), 'x.npy'), x.numpy())
    code = (
        'import sys\n'
        'for m in ("torch", "mmdetnas", "mmdet", "mmengine", "mmcv"):\n'
        '    sys.modules[m] = None  # any import of them fails\n'
        'import numpy as np, onnxruntime as ort\n'
        f'd = {osp.dirname(path)!r}\n'
        f's = ort.InferenceSession({path!r}, '
        'providers=["CPUExecutionProvider"])\n'
        'x = np.load(d + "/x.npy")\n'
        'out = s.run(None, {s.get_inputs()[0].name: x})\n'
        'np.save(d + "/out0.npy", out[0])\n'
        'print(len(out))\n')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == '4'
    with torch.no_grad():
        ref = subnet()(x)[0].numpy()
    got = np.load(osp.join(osp.dirname(path), 'out0.npy'))
    assert np.abs(got - ref).max() <= 1e-4 + 1e-3 * np.abs(ref).max()


def test_deployable_model_parts():
    from mmdetnas.utils.setup_env import register_all_modules
    from mmdet.registry import MODELS
    register_all_modules()
    neck = dict(type='FPN', in_channels=[16, 32, 64, 128], out_channels=8,
                num_outs=5)
    bb = dict(type='mmdetnas.DetNASShuffleNetV2', search_space=TINY,
              arch=list(ARCH))
    retina = MODELS.build(dict(
        type='RetinaNet', backbone=bb, neck=neck,
        bbox_head=dict(
            type='RetinaHead', num_classes=3, in_channels=8,
            feat_channels=8, stacked_convs=1,
            anchor_generator=dict(type='AnchorGenerator',
                                  octave_base_scale=4, scales_per_octave=1,
                                  ratios=[1.0], strides=[8, 16, 32, 64,
                                                         128]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder'))))
    d = DeployableModel(retina.eval())
    assert d.parts == ['backbone', 'neck', 'head']
    with torch.no_grad():
        out = d(deployable_input((64, 64)))
    # 5 levels of class scores (3 classes x 1 anchor), then 5 of box deltas
    assert len(out) == 10
    assert [tuple(o.shape[1:2]) for o in out] == [(3, )] * 5 + [(4, )] * 5
    assert [tuple(o.shape[2:]) for o in out[:5]] == [
        (16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]
    # without the head: the neck's five levels
    d = DeployableModel(retina, with_head=False)
    assert d.parts == ['backbone', 'neck']
