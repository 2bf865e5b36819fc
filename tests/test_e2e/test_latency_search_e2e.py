"""Search for the user's hardware, end to end on this CPU: a latency table
built with ONNX Runtime, a DetNAS search constrained by it (every recorded
latency checked against the table's entries by hand), and the searched
subnet exported to ONNX and checked against PyTorch."""
import json
import os.path as osp
import random
import statistics

import numpy as np
import pytest

from mmdetnas.spaces import load_arch_file
from tests.e2e_utils import ROOT, coco_options, make_tiny_coco, run_tool

QS = 'configs/quickstart'
SUPERNET = (f'{QS}/detnas_supernet_faster-rcnn_shufflenetv2-300m_fpn_quick_'
            'neon-trees.py')
SEARCH = (f'{QS}/detnas_search_faster-rcnn_shufflenetv2-300m_fpn_quick_'
          'neon-trees.py')
SHAPE = (64, 96)

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('latency')
    coco = make_tiny_coco(str(tmp / 'coco'))
    wd = tmp / 'supernet'
    run_tool([
        'tools/train.py', SUPERNET, '--work-dir', str(wd), '--cfg-options',
        *coco_options(coco), 'model.backbone.init_cfg=None',
        'train_cfg.max_iters=4', 'train_cfg.val_interval=100',
        'default_hooks.checkpoint.interval=4'
    ])
    table = str(tmp / 'table.json')
    out = run_tool([
        'tools/analysis_tools/latency_table.py', SEARCH, '--backend',
        'onnxruntime', '--shape', *map(str, SHAPE), '--out', table,
        '--warmup', '1', '--repeats', '3', '--rounds', '1'
    ])
    assert 'calibration scale' in out.stdout
    return coco, str(wd / 'iter_4.pth'), table, tmp


def by_hand(data, arch):
    """The table's prediction of ``arch`` computed from its JSON alone."""
    entries, bf = data['entries'], data['built_for']

    def summed(a):
        keys = ['stem'] + [bf['layer_keys'][i][c] for i, c in enumerate(a)]
        keys += [p for p in bf['parts'] if p != 'stem']
        total = sum(entries[k]['ms'] for k in keys)
        return total - (len(keys) - 1) * entries['call_overhead']['ms']

    ratios = [e['ms'] / summed(k[len('path '):].split(','))
              for k, e in entries.items() if k.startswith('path ')]
    return statistics.median(ratios) * summed(arch)


def test_table_search_and_export(setup, tmp_path):
    coco, ckpt, table, _ = setup
    with open(table) as f:
        data = json.load(f)
    assert data['complete'] and data['built_for']['backend'] == 'onnxruntime'
    assert data['built_for']['shape'] == list(SHAPE)
    assert data['built_for']['parts'] == ['stem', 'neck']
    choices = list(data['built_for']['layer_keys'][0])
    # a latency bound that cuts the space: the median prediction of 30
    # random paths
    rng = random.Random(0)
    n = len(data['built_for']['layer_keys'])
    preds = [by_hand(data, [rng.choice(choices) for _ in range(n)])
             for _ in range(30)]
    bound = float(np.median(preds))
    wd = tmp_path / 'search'
    run_tool([
        'tools/search.py', SEARCH, ckpt, '--work-dir', str(wd),
        '--cfg-options', *coco_options(coco), 'train_cfg.max_generations=2',
        'train_cfg.population_size=4', 'train_cfg.num_mutation=1',
        'train_cfg.num_crossover=1', 'train_cfg.top_k=2',
        'train_cfg.calib_iters=1', 'train_cfg.calib_batch_size=2',
        f'train_cfg.latency_table={table}',
        f'train_cfg.latency_shape=[{SHAPE[0]},{SHAPE[1]}]',
        f'train_cfg.latency=[None,{bound}]'
    ])
    with open(wd / 'candidates.jsonl') as f:
        rows = [json.loads(x) for x in f if x.strip()]
    assert len(rows) == 8
    device = data['built_for']['device']
    for r in rows:
        assert r['latency_ms'] == pytest.approx(by_hand(data, r['arch']),
                                                rel=1e-9)
        assert r['latency_ms'] <= bound
        assert r['latency_backend'].startswith('onnxruntime ')
        assert '(table)' in r['latency_backend']
        assert r['latency_device'] == device
    with open(wd / 'best_arch.yaml') as f:
        text = f.read()
    assert 'latency_backend' in text and device in text
    # the searched subnet, exported from the supernet checkpoint
    onnx_file = str(tmp_path / 'best.onnx')
    out = run_tool([
        'tools/deployment/export_onnx.py', SEARCH, ckpt, '--arch',
        str(wd / 'best_arch.yaml'), '--shape', *map(str, SHAPE), '--out',
        onnx_file
    ])
    assert 'max abs difference' in out.stdout
    # onnxruntime against PyTorch, here, independently of the tool's check
    import onnxruntime as ort
    import torch
    from mmengine.config import Config

    from mmdetnas.deploy import (DeployableModel, build_model,
                                 deployable_input)
    from mmdetnas.models.backbones.detnas_shufflenetv2 import \
        slice_supernet_state_dict
    from mmdetnas.utils.checkpoint import load_local_checkpoint
    from mmdetnas.utils.setup_env import register_all_modules
    register_all_modules()
    _, best = load_arch_file(str(wd / 'best_arch.yaml'))
    cfg = Config.fromfile(osp.join(ROOT, SEARCH))
    model = build_model(cfg.model, best)
    state = load_local_checkpoint(ckpt, map_location='cpu')['state_dict']
    model.load_state_dict(slice_supernet_state_dict(state, best),
                          strict=False)
    x = deployable_input(SHAPE)
    with torch.no_grad():
        ref = DeployableModel(model)(x)
    sess = ort.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    assert len(got) == len(ref) == 5  # FPN levels
    for g, r in zip(got, ref):
        assert g.shape == tuple(r.shape)
        assert np.abs(g - r.numpy()).max() <= 1e-4 + 1e-3 * np.abs(
            r.numpy()).max()


def test_search_refuses_a_table_for_another_shape(setup, tmp_path):
    coco, ckpt, table, _ = setup
    out = run_tool([
        'tools/search.py', SEARCH, ckpt, '--work-dir', str(tmp_path / 'w'),
        '--cfg-options', *coco_options(coco),
        f'train_cfg.latency_table={table}', 'train_cfg.latency=[None,5]'
    ], check=False)
    assert out.returncode != 0
    err = out.stderr
    assert 'input shape' in err and str(list(SHAPE)) in err
    assert '[800, 1333]' in err
    assert not osp.exists(tmp_path / 'w' / 'candidates.jsonl')


def test_search_refuses_a_table_for_another_backend(setup, tmp_path):
    coco, ckpt, table, _ = setup
    out = run_tool([
        'tools/search.py', SEARCH, ckpt, '--work-dir', str(tmp_path / 'w'),
        '--cfg-options', *coco_options(coco),
        f'train_cfg.latency_table.file={table}',
        'train_cfg.latency_table.backend=openvino',
        f'train_cfg.latency_shape=[{SHAPE[0]},{SHAPE[1]}]'
    ], check=False)
    assert out.returncode != 0
    assert "backend: the table is for 'onnxruntime', 'openvino'" in out.stderr


def test_predict_and_measure_commands(setup, tmp_path):
    _, _, table, _ = setup
    with open(table) as f:
        data = json.load(f)
    n = len(data['built_for']['layer_keys'])
    choices = list(data['built_for']['layer_keys'][0])
    arch = [choices[0]] * (n // 2) + [choices[-1]] * (n - n // 2)
    text = ','.join(arch)
    out = run_tool(['tools/analysis_tools/latency_table.py', '--table', table,
                    '--predict', text, '--json'])
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r['predicted_ms'] == pytest.approx(by_hand(data, arch), rel=1e-9)
    out = run_tool(['tools/analysis_tools/latency_table.py', SEARCH,
                    '--table', table, '--measure', text, '--json'])
    r = json.loads(out.stdout.strip().splitlines()[-1])
    t = r['timing']
    assert r['predicted_ms'] == pytest.approx(by_hand(data, arch), rel=1e-9)
    assert t['backend'] == 'onnxruntime' and t['median_ms'] > 0
    assert t['input_shape'] == [1, 3, *SHAPE]
    # the table's timing settings: 1 warm-up, 3 calls, 1 round
    assert t['repeats'] == 3 and t['warmup'] == 1
    assert r['error_pct'] == pytest.approx(
        100 * (r['predicted_ms'] - t['median_ms']) / t['median_ms'])


def test_bad_tables_and_exports_are_refused(setup, tmp_path):
    _, ckpt, table, _ = setup
    cut = tmp_path / 'cut.json'
    cut.write_text(open(table).read()[:500])
    out = run_tool(['tools/analysis_tools/latency_table.py', '--table',
                    str(cut), '--predict', '0' + ',0' * 19], check=False)
    assert out.returncode == 1
    assert 'not readable JSON' in out.stderr and str(cut) in out.stderr
    # an architecture of another length
    out = run_tool(['tools/analysis_tools/latency_table.py', '--table',
                    table, '--predict', '0,1,2'], check=False)
    assert out.returncode == 1 and '3' in out.stderr
    # building into a table made with other settings: refused, unchanged
    before = open(table).read()
    out = run_tool(['tools/analysis_tools/latency_table.py', SEARCH,
                    '--backend', 'onnxruntime', '--shape', '64', '64',
                    '--out', table, '--repeats', '3', '--rounds', '1',
                    '--warmup', '1'], check=False)
    assert out.returncode == 1 and 'input shape' in out.stderr
    assert open(table).read() == before
    # an unknown backend
    out = run_tool(['tools/analysis_tools/latency_table.py', SEARCH,
                    '--backend', 'tensorrt', '--shape', '64', '64', '--out',
                    str(tmp_path / 't.json')], check=False)
    assert out.returncode == 2 and 'tensorrt' in out.stderr
    # a supernet checkpoint with no architecture to export
    out = run_tool(['tools/deployment/export_onnx.py', SEARCH, ckpt,
                    '--out', str(tmp_path / 'x.onnx')], check=False)
    assert out.returncode == 1 and '--arch' in out.stderr
    assert not osp.exists(tmp_path / 'x.onnx')
