"""Tests of the dataset converters (mmdetnas.datasets.converters, the
library behind tools/dataset_converters: split_search_set.py,
prepare_neon_trees.py and prepare_fashion_mnist.py), on tiny synthetic
inputs built in ``tmp_path``; each tool's command line is run once."""
import gzip
import json
import os
import os.path as osp
import shutil
import struct
import zipfile

import cv2
import numpy as np
import pytest

from mmdetnas.datasets.converters import (fashion_mnist, neon_trees,
                                          search_split)
from tests.e2e_utils import run_tool


@pytest.fixture(scope='module')
def split_tool():
    return search_split


@pytest.fixture(scope='module')
def neon_tool():
    return neon_trees


@pytest.fixture(scope='module')
def fashion_tool():
    return fashion_mnist


# --------------------------------------------------------- split_search_set
def _tiny_coco(n_img=20):
    # non-contiguous image ids, 0-4 annotations per image
    images = [
        dict(id=100 + 7 * i, file_name=f'{i:03d}.jpg', width=64, height=48)
        for i in range(n_img)
    ]
    annotations, ann_id = [], 1
    for i, img in enumerate(images):
        for k in range(i % 5):
            annotations.append(
                dict(
                    id=ann_id,
                    image_id=img['id'],
                    category_id=1 + k % 2,
                    bbox=[k, k, 10, 10],
                    area=100,
                    iscrowd=0))
            ann_id += 1
    return dict(
        info=dict(description='tiny'),
        licenses=[dict(id=1, name='x')],
        images=images,
        annotations=annotations,
        categories=[dict(id=1, name='a'),
                    dict(id=2, name='b')])


def _write_json(path, obj):
    with open(path, 'w') as f:
        json.dump(obj, f)
    return str(path)


def test_split_coco(tmp_path, split_tool, capsys):
    coco = _tiny_coco()
    ann_file = _write_json(tmp_path / 'instances_train.json', coco)
    out_dir = tmp_path / 'out'
    paths = split_tool.split_search_set(ann_file, 6, 3, str(out_dir))
    assert [osp.basename(p) for p in paths] == [
        'instances_train_supernet_train.json',
        'instances_train_search_val.json'
    ]
    out = capsys.readouterr().out
    assert 'supernet_train' in out and 'search_val' in out
    train = json.loads(
        (out_dir / 'instances_train_supernet_train.json').read_text())
    val = json.loads((out_dir / 'instances_train_search_val.json').read_text())

    train_ids = [img['id'] for img in train['images']]
    val_ids = [img['id'] for img in val['images']]
    all_ids = [img['id'] for img in coco['images']]
    assert len(val_ids) == 6 and len(train_ids) == 14
    assert not set(train_ids) & set(val_ids)
    assert sorted(train_ids + val_ids) == sorted(all_ids)
    # input order kept
    assert train_ids == [i for i in all_ids if i in set(train_ids)]
    assert val_ids == [i for i in all_ids if i in set(val_ids)]
    # annotations follow their images, none lost or duplicated
    for part, ids in ((train, train_ids), (val, val_ids)):
        assert all(a['image_id'] in set(ids) for a in part['annotations'])
        assert part['categories'] == coco['categories']
        assert part['info'] == coco['info']
        assert part['licenses'] == coco['licenses']
        assert list(part) == list(coco)
    got = sorted(a['id'] for a in train['annotations'] + val['annotations'])
    assert got == sorted(a['id'] for a in coco['annotations'])
    n_ann_val = sum(1 for a in coco['annotations']
                    if a['image_id'] in set(val_ids))
    assert len(val['annotations']) == n_ann_val


def test_split_deterministic(tmp_path, split_tool):
    ann_file = _write_json(tmp_path / 'train.json', _tiny_coco())
    outs = []
    for name, seed in (('a', 0), ('b', 0), ('c', 1)):
        split_tool.split_search_set(ann_file, 5, seed, str(tmp_path / name))
        outs.append((tmp_path / name / 'train_search_val.json').read_bytes())
    assert outs[0] == outs[1]
    assert outs[0] != outs[2]  # another seed, another split
    assert split_tool.split_ids(range(50), 10, 7) == \
        split_tool.split_ids(range(50), 10, 7)


def test_split_voc_list(tmp_path, split_tool):
    ids = [f'{i:06d}' for i in range(1, 31)]
    ann_file = tmp_path / 'trainval.txt'
    ann_file.write_text('\n'.join(ids) + '\n\n')  # trailing blank line
    split_tool.split_search_set(str(ann_file), 8, out_dir=str(tmp_path))
    train = (tmp_path / 'trainval_supernet_train.txt').read_text().split()
    val = (tmp_path / 'trainval_search_val.txt').read_text().split()
    assert len(val) == 8 and len(train) == 22
    assert not set(train) & set(val)
    assert sorted(train + val) == ids
    assert train == sorted(train) and val == sorted(val)  # input order


def test_split_errors(tmp_path, split_tool):
    ann_file = _write_json(tmp_path / 'train.json', _tiny_coco(12))
    for num in (12, 13):
        with pytest.raises(ValueError) as e:
            split_tool.split_search_set(ann_file, num)
        assert f'--num ({num})' in str(e.value) and '(12)' in str(e.value)
    with pytest.raises(ValueError, match='--num must be >= 1'):
        split_tool.split_search_set(ann_file, 0)
    missing = str(tmp_path / 'nope.json')
    with pytest.raises(FileNotFoundError) as e:
        split_tool.split_search_set(missing, 1)
    assert missing in str(e.value)
    with pytest.raises(ValueError, match="'.csv'"):
        split_tool.split_search_set(str(tmp_path / 'x.csv'), 1)
    # the command line: a usage error naming the input, nothing written
    proc = run_tool(['tools/dataset_converters/split_search_set.py',
                     ann_file, '--num', '12'], check=False)
    assert proc.returncode == 2
    assert '--num (12)' in proc.stderr and ann_file in proc.stderr
    # malformed inputs
    coco = _tiny_coco(4)
    coco['annotations'][0]['image_id'] = 12345
    with pytest.raises(ValueError, match='refer to image ids'):
        split_tool.split_coco(coco, 1)
    with pytest.raises(ValueError, match='20'):
        split_tool.split_ids(list(range(20)), 20)  # nothing left to train
    with pytest.raises(ValueError, match='duplicate'):
        split_tool.split_ids(['a', 'b', 'a'], 1)
    assert not list((tmp_path).glob('*_search_val*'))


# ------------------------------------------------------- prepare_neon_trees
# Synthetic stand-in of the deepforest wheel; boxes in continuous px
# coordinates, written to the xml as 1-based VOC (xmin + 1, xmax).
# SEARCH image 100x90 px, --tile 40: windows x0 in (0, 40, 60),
# y0 in (0, 40, 50).
SEARCH_BOXES = [
    ('Tree', (5, 5, 25, 25)),  # B1: only in tile (0, 0)
    ('Tree', (45, 5, 65, 25)),  # B2: (40, 0); 25% in (60, 0) -> dropped
    ('Tree', (70, 60, 96, 85)),  # B3: (60, 50) whole, 80% in (60, 40),
    # 38% in (40, 50) and 31% in (40, 40) -> dropped
    ('Tree', (10, 60, 13, 80)),  # B4: 3 px wide -> dropped everywhere
]
# tile id -> expected COCO bboxes (x, y, w, h)
SEARCH_TILES = {
    '0_0': [[5, 5, 20, 20]],
    '40_0': [[5, 5, 20, 20]],
    '60_40': [[10, 20, 26, 20]],
    '60_50': [[10, 10, 26, 25]],
}
TEST_SOURCES = {
    # 50x30: two 40x30 tiles, x0 in (0, 10)
    '2019_YELL_2_541000_4977000_image_crop':
    ((50, 30), [('Tree', (20, 5, 35, 25))]),
    # smaller than a tile: one 30x30 tile
    'OSBS_029': ((30, 30), [('Tree', (0, 0, 30, 30))]),
    'SOAP_061': ((40, 40), [('Dead', (2, 2, 12, 12)),
                            ('Alive', (20, 20, 35, 35))]),
}


def _xml(stem, size, boxes):
    w, h = size
    objs = ''.join(
        f'<object><name>{name}</name><pose>Unspecified</pose>'
        f'<truncated>0</truncated><difficult>0</difficult><bndbox>'
        f'<xmin>{x0 + 1}</xmin><ymin>{y0 + 1}</ymin><xmax>{x1}</xmax>'
        f'<ymax>{y1}</ymax></bndbox></object>'
        for name, (x0, y0, x1, y1) in boxes)
    return (f'<annotation><folder>data</folder><filename>{stem}.png'
            f'</filename><size><width>{w}</width><height>{h}</height>'
            f'<depth>3</depth></size><segmented>0</segmented>{objs}'
            '</annotation>')


def _fake_wheel(path, neon_tool, skip=()):
    rng = np.random.RandomState(0)
    sources = {neon_tool.SEARCH_IMAGE: ((100, 90), SEARCH_BOXES)}
    sources.update(TEST_SOURCES)
    with zipfile.ZipFile(path, 'w') as zf:
        for stem, (size, boxes) in sources.items():
            img = rng.randint(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            if f'{stem}.png' not in skip:
                zf.writestr(f'deepforest/data/{stem}.png',
                            cv2.imencode('.png', img)[1].tobytes())
            zf.writestr(f'deepforest/data/{stem}.xml', _xml(stem, size, boxes))
        zf.writestr('deepforest-2.1.0.dist-info/METADATA',
                    'Name: deepforest\nVersion: 2.1.0\nLicense: MIT\n')
    return str(path)


def _read_tree(root):
    """{relative path: bytes} of every file under ``root``."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = osp.join(dirpath, f)
            out[osp.relpath(p, root)] = open(p, 'rb').read()
    return out


def test_neon_tiling_functions(neon_tool):
    assert neon_tool.tile_starts(100, 40) == [0, 40, 60]
    assert neon_tool.tile_starts(80, 40) == [0, 40]
    assert neon_tool.tile_starts(30, 40) == [0]
    assert neon_tool.tile_windows(50, 30, 40) == [(0, 0, 40, 30),
                                                  (10, 0, 40, 30)]
    # the windows of a larger image stay inside it and cover all of it
    wins = neon_tool.tile_windows(1000, 450, 400)
    covered = np.zeros((450, 1000), bool)
    for x, y, w, h in wins:
        assert x >= 0 and y >= 0 and x + w <= 1000 and y + h <= 450
        covered[y:y + h, x:x + w] = True
    assert covered.all()
    kept, idx = neon_tool.clip_boxes(
        np.array([[10, 10, 30, 30],  # inside
                  [390, 10, 420, 30],  # 10 of 30 px inside: 33% < 40%
                  [380, 10, 410, 30]]),  # 20 of 30 px inside: 67%
        (0, 0, 400, 400))
    assert idx.tolist() == [0, 2]
    assert kept[1].tolist() == [380, 10, 400, 30]
    boxes = np.array([
        [30, 10, 50, 20],  # 50% inside after clipping -> kept
        [30, 10, 45, 20],  # 33% -> dropped
        [41, 5, 44, 35],  # inside but 3 px wide -> dropped
        [50, 5, 70, 25],  # inside -> unchanged
        [0, 0, 10, 10],  # outside -> dropped
        [60, 36, 70, 70],  # 4x10 remnant: 4 px high but 12% -> dropped
        [60, 34, 70, 44],  # 6 px high, 60% -> kept
    ])
    kept, idx = neon_tool.clip_boxes(boxes, (40, 0, 40, 40))
    assert idx.tolist() == [0, 3, 6]
    np.testing.assert_array_equal(
        kept, [[0, 10, 10, 20], [10, 5, 30, 25], [20, 34, 30, 40]])
    # thresholds are parameters
    _, idx = neon_tool.clip_boxes(boxes, (40, 0, 40, 40), min_area_frac=0.3)
    assert idx.tolist() == [0, 1, 3, 6]
    _, idx = neon_tool.clip_boxes(boxes, (40, 0, 40, 40), min_size=7)
    assert idx.tolist() == [0, 3]


def test_neon_parse_voc_xml(neon_tool):
    ann = neon_tool.parse_voc_xml(
        _xml('x', (40, 30), [('Dead', (0, 1, 10, 30)),
                             ('Alive', (5, 5, 6, 7))]))
    assert (ann['width'], ann['height']) == (40, 30)
    assert ann['labels'] == ['Dead', 'Alive']
    np.testing.assert_array_equal(ann['boxes'], [[0, 1, 10, 30], [5, 5, 6, 7]])
    with pytest.raises(ValueError, match='empty box'):
        neon_tool.parse_voc_xml(_xml('x', (40, 30), [('T', (5, 5, 5, 9))]))


def test_neon_prepare(tmp_path, neon_tool, capsys):
    wheel = _fake_wheel(tmp_path / 'deepforest.whl', neon_tool)
    out = tmp_path / 'neon'
    neon_tool.prepare_neon_trees(str(out), wheel, 40)
    stdout = capsys.readouterr().out
    assert 'supernet_train' in stdout and 'test' in stdout
    cocos = {
        s: json.loads((out / 'annotations' / f'{s}.json').read_text())
        for s in neon_tool.SPLITS
    }

    # the search image: 4 of 9 windows keep a box, split 3 / 1
    search = neon_tool.SEARCH_IMAGE
    train, val = cocos['supernet_train'], cocos['search_val']
    assert (len(train['images']), len(val['images'])) == (3, 1)
    names = {img['file_name'] for c in (train, val) for img in c['images']}
    assert names == {f'{search}_{k}.jpg' for k in SEARCH_TILES}
    for coco in (train, val):
        for img in coco['images']:
            key = img['file_name'][len(search) + 1:-4]
            bboxes = [
                a['bbox'] for a in coco['annotations']
                if a['image_id'] == img['id']
            ]
            assert bboxes == SEARCH_TILES[key], key
            assert (img['width'], img['height']) == (40, 40)

    # test split: other images; Dead/Alive became Tree; small tiles
    test = cocos['test']
    assert len(test['images']) == 4 and len(test['annotations']) == 5
    sizes = {
        img['file_name']: (img['width'], img['height'])
        for img in test['images']
    }
    assert sizes == {
        '2019_YELL_2_541000_4977000_image_crop_0_0.jpg': (40, 30),
        '2019_YELL_2_541000_4977000_image_crop_10_0.jpg': (40, 30),
        'OSBS_029_0_0.jpg': (30, 30),
        'SOAP_061_0_0.jpg': (40, 40),
    }
    by_name = {img['id']: img['file_name'] for img in test['images']}
    got = sorted(
        (by_name[a['image_id']], a['bbox']) for a in test['annotations'])
    assert got == sorted([
        ('2019_YELL_2_541000_4977000_image_crop_0_0.jpg', [20, 5, 15, 20]),
        ('2019_YELL_2_541000_4977000_image_crop_10_0.jpg', [10, 5, 15, 20]),
        ('OSBS_029_0_0.jpg', [0, 0, 30, 30]),
        ('SOAP_061_0_0.jpg', [2, 2, 10, 10]),
        ('SOAP_061_0_0.jpg', [20, 20, 15, 15]),
    ])

    # COCO conventions: one category, unique ids across the splits
    img_ids, ann_ids = [], []
    for coco in cocos.values():
        assert coco['categories'] == [
            dict(id=1, name='Tree', supercategory='plant')
        ]
        for a in coco['annotations']:
            assert a['category_id'] == 1 and a['iscrowd'] == 0
            assert a['area'] == a['bbox'][2] * a['bbox'][3]
        img_ids += [img['id'] for img in coco['images']]
        ann_ids += [a['id'] for a in coco['annotations']]
    assert len(set(img_ids)) == len(img_ids) == 8
    assert len(set(ann_ids)) == len(ann_ids) == 9

    # images: JPEGs of the right size, the VOC copy is the same file
    for coco in cocos.values():
        for img in coco['images']:
            jpg = out / 'images' / img['file_name']
            arr = cv2.imread(str(jpg))
            assert arr.shape == (img['height'], img['width'], 3)
            assert jpg.read_bytes()[:2] == b'\xff\xd8'
            voc_jpg = out / 'VOC2007' / 'JPEGImages' / img['file_name']
            assert voc_jpg.read_bytes() == jpg.read_bytes()
    jpgs = sorted(os.listdir(out / 'images'))
    assert jpgs == sorted(os.listdir(out / 'VOC2007' / 'JPEGImages'))
    assert len(jpgs) == 8  # no empty tiles written

    # the VOC side matches the COCO side
    for split, coco in cocos.items():
        ids = (out / 'VOC2007' / 'ImageSets' / 'Main' /
               f'{split}.txt').read_text().split()
        assert [f'{i}.jpg' for i in ids] == \
            [img['file_name'] for img in coco['images']]
        for img in coco['images']:
            xml = (out / 'VOC2007' / 'Annotations' /
                   (img['file_name'][:-4] + '.xml')).read_text()
            assert '<difficult>0</difficult>' in xml
            ann = neon_tool.parse_voc_xml(xml)
            assert (ann['width'], ann['height']) == (img['width'],
                                                     img['height'])
            assert set(ann['labels']) == {'Tree'}
            xywh = [[x0, y0, x1 - x0, y1 - y0]
                    for x0, y0, x1, y1 in ann['boxes'].tolist()]
            assert xywh == [
                a['bbox'] for a in coco['annotations']
                if a['image_id'] == img['id']
            ]
    readme = (out / 'README.txt').read_text()
    assert 'MIT' in readme and 'NEON' in readme and 'deepforest==2.1.0' \
        in readme


def test_neon_deterministic_and_idempotent(tmp_path, neon_tool):
    wheel = _fake_wheel(tmp_path / 'deepforest.whl', neon_tool)
    a, b = tmp_path / 'a', tmp_path / 'b'
    neon_tool.prepare_neon_trees(str(a), wheel, 40)
    neon_tool.prepare_neon_trees(str(b), wheel, 40)
    first = _read_tree(a)
    assert first == _read_tree(b)
    # re-running in place gives the same files
    neon_tool.prepare_neon_trees(str(a), wheel, 40)
    assert _read_tree(a) == first
    # another seed may move tiles between supernet_train and search_val
    # but never changes the union
    neon_tool.prepare_neon_trees(str(b), wheel, 40, seed=5)
    lists = [
        set((d /
             'VOC2007/ImageSets/Main/supernet_train.txt').read_text().split())
        | set(
            (d / 'VOC2007/ImageSets/Main/search_val.txt').read_text().split())
        for d in (a, b)
    ]
    assert lists[0] == lists[1]
    # another tile size in the same folder: no stale tiles are left
    neon_tool.prepare_neon_trees(str(a), wheel, 50)
    listed = set()
    for split in neon_tool.SPLITS:
        listed |= set((a / 'VOC2007' / 'ImageSets' / 'Main' /
                       f'{split}.txt').read_text().split())
    assert {f[:-4] for f in os.listdir(a / 'images')} == listed
    assert {f[:-4]
            for f in os.listdir(a / 'VOC2007' / 'Annotations')} == listed
    assert any(i.endswith('_50_0') for i in listed)


def test_neon_wheel_download_and_reuse(tmp_path, neon_tool, monkeypatch):
    fake = _fake_wheel(tmp_path / 'fake.whl', neon_tool)
    calls = []

    def fake_run(cmd, *args, **kwargs):
        calls.append(cmd)
        dl_dir = cmd[cmd.index('-d') + 1]
        shutil.copy(fake, osp.join(dl_dir, neon_tool.WHEEL_NAME))

        class Result:
            returncode = 0

        return Result()

    monkeypatch.setattr(neon_tool.subprocess, 'run', fake_run)
    out = tmp_path / 'neon'
    neon_tool.prepare_neon_trees(str(out), tile=40)
    assert len(calls) == 1
    assert calls[0][1:] == [
        '-m', 'pip', 'download', '--no-deps', 'deepforest==2.1.0', '-d',
        str(out / 'downloads')
    ]
    assert (out / 'downloads' / neon_tool.WHEEL_NAME).is_file()
    # the second run reuses the downloaded wheel
    neon_tool.prepare_neon_trees(str(out), tile=40)
    assert len(calls) == 1
    assert (out / 'annotations' / 'test.json').is_file()


def test_neon_errors(tmp_path, neon_tool, monkeypatch):
    missing = str(tmp_path / 'missing.whl')
    with pytest.raises(neon_tool.SourceError) as e:
        neon_tool.prepare_neon_trees(str(tmp_path / 'o'), missing)
    assert missing in str(e.value)
    # a wheel without one of the images
    wheel = _fake_wheel(
        tmp_path / 'partial.whl', neon_tool, skip=('OSBS_029.png', ))
    with pytest.raises(neon_tool.SourceError) as e:
        neon_tool.prepare_neon_trees(str(tmp_path / 'o'), wheel)
    assert 'deepforest/data/OSBS_029.png' in str(e.value)
    # the command line: a usage error naming the file
    proc = run_tool(['tools/dataset_converters/prepare_neon_trees.py',
                     '--out-dir', str(tmp_path / 'o'), '--wheel', wheel],
                    check=False)
    assert proc.returncode == 2
    assert 'deepforest/data/OSBS_029.png' in proc.stderr

    # pip failing
    class Failed:
        returncode = 1

    monkeypatch.setattr(neon_tool.subprocess, 'run', lambda *a, **k: Failed)
    with pytest.raises(neon_tool.SourceError, match='--wheel'):
        neon_tool.prepare_neon_trees(str(tmp_path / 'o'))


# ---------------------------------------------------- prepare_fashion_mnist
def _idx_gz(path, arr):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b''.join(
        struct.pack('>I', d) for d in arr.shape)
    with gzip.open(path, 'wb') as f:
        f.write(header + arr.tobytes())


@pytest.fixture
def fashion_src(tmp_path):
    """Fake Fashion-MNIST: 40 train / 20 t10k images; image i is a
    constant ``3 * i`` patch of 28x28 px, label ``i % 10``."""
    src = tmp_path / 'fashion-mnist'
    src.mkdir()
    for prefix, n in (('train', 40), ('t10k', 20)):
        images = np.repeat(
            (3 * np.arange(n, dtype=np.uint8))[:, None, None], 28 * 28,
            axis=1).reshape(n, 28, 28)
        _idx_gz(src / f'{prefix}-images-idx3-ubyte.gz', images)
        _idx_gz(src / f'{prefix}-labels-idx1-ubyte.gz', np.arange(n) % 10)
    return src


def test_fashion_layout(tmp_path, fashion_src, fashion_tool):
    out = tmp_path / 'fm'
    fashion_tool.prepare_fashion_mnist(str(fashion_src), str(out), size=16)
    classes = (out / 'meta' / 'classes.txt').read_text().split()
    assert classes == [
        'T-shirt_top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
        'Shirt', 'Sneaker', 'Bag', 'Ankle_boot'
    ]
    for split, n in (('train', 40), ('val', 20)):
        lines = (out / 'meta' / f'{split}.txt').read_text().splitlines()
        assert len(lines) == n
        for i, line in enumerate(lines):
            rel, label = line.split()
            assert int(label) == i % 10
            assert rel == f'{classes[i % 10]}/{i:05d}.png'
            img = cv2.imread(str(out / split / rel), cv2.IMREAD_UNCHANGED)
            assert img.shape == (16, 16, 3) and img.dtype == np.uint8
            assert (img == 3 * i).all()  # gray replicated, right image
        pngs = [f for c in classes for f in os.listdir(out / split / c)]
        assert len(pngs) == n


def test_fashion_balanced_subset(tmp_path, fashion_src, fashion_tool):
    args = dict(src=str(fashion_src), num_train=20, num_val=13, size=8)
    counts = fashion_tool.prepare_fashion_mnist(
        out_dir=str(tmp_path / 'a'), **args)
    assert counts == dict(train=20, val=13)
    fashion_tool.prepare_fashion_mnist(out_dir=str(tmp_path / 'b'), **args)
    meta = {}
    for d in ('a', 'b'):
        meta[d] = {
            s: (tmp_path / d / 'meta' / f'{s}.txt').read_text()
            for s in ('train', 'val')
        }
    assert meta['a'] == meta['b']  # deterministic
    train = [int(x.split()[1]) for x in meta['a']['train'].splitlines()]
    val = [int(x.split()[1]) for x in meta['a']['val'].splitlines()]
    assert np.bincount(train, minlength=10).tolist() == [2] * 10
    assert sorted(np.bincount(val, minlength=10).tolist()) == [1] * 7 + [2] * 3
    assert _read_tree(tmp_path / 'a' / 'train') == \
        _read_tree(tmp_path / 'b' / 'train')
    idx = fashion_tool.balanced_subset(np.arange(40) % 10, 20, 0)
    assert idx.tolist() == sorted(idx.tolist())


def test_fashion_errors(tmp_path, fashion_src, fashion_tool):
    with pytest.raises(FileNotFoundError) as e:
        fashion_tool.prepare_fashion_mnist(str(tmp_path / 'none'),
                                           str(tmp_path / 'o'))
    msg = str(e.value)
    assert 'sudo apt-get install dataset-fashion-mnist' in msg
    assert '--src' in msg and str(tmp_path / 'none') in msg
    # the command line: the message, exit status 1
    proc = run_tool(['tools/dataset_converters/prepare_fashion_mnist.py',
                     '--src', str(tmp_path / 'none'), '--out-dir',
                     str(tmp_path / 'o')], check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == msg
    os.remove(fashion_src / 't10k-labels-idx1-ubyte.gz')
    with pytest.raises(FileNotFoundError) as e:
        fashion_tool.prepare_fashion_mnist(str(fashion_src),
                                           str(tmp_path / 'o'))
    assert 't10k-labels-idx1-ubyte.gz' in str(e.value)
    bad = tmp_path / 'bad.gz'
    with gzip.open(bad, 'wb') as f:
        f.write(b'\x01\x02\x03\x04')
    with pytest.raises(ValueError, match='idx'):
        fashion_tool.read_idx(str(bad))
