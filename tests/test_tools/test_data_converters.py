"""Dataset converters: search split, NEON tiling helpers, Fashion-MNIST."""
import gzip
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest

from tests.e2e_utils import ROOT


def load(name):
    path = osp.join(ROOT, 'tools', 'dataset_converters', f'{name}.py')
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


split = load('split_search_set')
neon = load('prepare_neon_trees')
fashion = load('prepare_fashion_mnist')


def tiny_coco(n=10):
    images = [dict(id=i, file_name=f'{i}.jpg', width=8, height=8)
              for i in range(1, n + 1)]
    anns = [dict(id=10 * i + k, image_id=i, bbox=[0, 0, 2, 2],
                 category_id=1) for i in range(1, n + 1) for k in range(2)]
    return dict(images=images, annotations=anns,
                categories=[dict(id=1, name='x')])


def test_coco_split_is_disjoint_complete_and_deterministic(tmp_path):
    ann = tmp_path / 'train.json'
    ann.write_text(json.dumps(tiny_coco()))
    out = tmp_path / 'out'
    train_p, val_p = split.main([str(ann), '--num', '3', '--seed', '1',
                                 '--out-dir', str(out)])
    assert osp.basename(train_p) == 'train_supernet_train.json'
    tr, va = (json.load(open(p)) for p in (train_p, val_p))
    ti, vi = ({im['id'] for im in d['images']} for d in (tr, va))
    assert len(vi) == 3 and not ti & vi and ti | vi == set(range(1, 11))
    for d, ids in ((tr, ti), (va, vi)):
        assert {a['image_id'] for a in d['annotations']} == ids
        assert d['categories'] == [dict(id=1, name='x')]
    again = split.main([str(ann), '--num', '3', '--seed', '1', '--out-dir',
                        str(tmp_path / 'again')])
    assert open(again[1]).read() == open(val_p).read()


def test_voc_list_split_and_bad_num(tmp_path):
    lst = tmp_path / 'trainval.txt'
    lst.write_text('\n'.join(f'{i:06d}' for i in range(20)) + '\n')
    train_p, val_p = split.main([str(lst), '--num', '5'])
    tr = open(train_p).read().split()
    va = open(val_p).read().split()
    assert len(va) == 5 and sorted(tr + va) == sorted(
        f'{i:06d}' for i in range(20)) and not set(tr) & set(va)
    with pytest.raises(SystemExit):
        split.main([str(lst), '--num', '20'])
    with pytest.raises(ValueError, match='20'):
        split.split_ids(list(range(20)), 20)


def test_clip_boxes_drops_small_remnants():
    boxes = np.array([[10, 10, 30, 30],    # inside
                      [390, 10, 420, 30],  # 10 of 30 px inside: 33% < 40%
                      [380, 10, 410, 30]])  # 20 of 30 px inside: 67%
    kept, idx = neon.clip_boxes(boxes, (0, 0, 400, 400))
    assert idx.tolist() == [0, 2]
    assert kept[1].tolist() == [380, 10, 400, 30]


def test_tile_windows_cover_the_image_inside_it():
    wins = neon.tile_windows(1000, 450, 400)
    for x, y, w, h in wins:
        assert x >= 0 and y >= 0 and x + w <= 1000 and y + h <= 450
    covered = np.zeros((450, 1000), bool)
    for x, y, w, h in wins:
        covered[y:y + h, x:x + w] = True
    assert covered.all()


def write_idx(path, arr):
    header = bytes([0, 0, 8, arr.ndim]) + b''.join(
        int(d).to_bytes(4, 'big') for d in arr.shape)
    with gzip.open(path, 'wb') as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_fashion_mnist_imagenet_layout(tmp_path):
    import cv2
    src = tmp_path / 'src'
    src.mkdir()
    rng = np.random.default_rng(0)
    for split_name, n in (('train', 40), ('t10k', 20)):
        write_idx(src / f'{split_name}-images-idx3-ubyte.gz',
                  rng.integers(0, 255, (n, 28, 28)))
        write_idx(src / f'{split_name}-labels-idx1-ubyte.gz',
                  np.arange(n) % 10)
    out = tmp_path / 'out'
    counts = fashion.main(['--src', str(src), '--out-dir', str(out),
                           '--num-train', '20', '--size', '32'])
    assert counts == dict(train=20, val=20)
    lines = (out / 'meta' / 'train.txt').read_text().split('\n')[:-1]
    labels = [int(x.split()[1]) for x in lines]
    assert sorted(labels) == sorted(list(range(10)) * 2)  # balanced
    for line in lines:
        rel, label = line.split()
        assert rel.split('/')[0] == fashion.CLASSES[int(label)]
        img = cv2.imread(str(out / 'train' / rel), cv2.IMREAD_UNCHANGED)
        assert img.shape == (32, 32, 3)
    with pytest.raises(SystemExit, match='apt-get install'):
        fashion.main(['--src', str(tmp_path / 'missing'), '--out-dir',
                      str(out)])
