"""Tests of ImageNetDataset and the classification transforms."""
import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import TRANSFORMS, DefaultScope

from mmdetnas.datasets import (ImageNetDataset, PackClsInputs,
                               RandomResizedCrop, ResizeEdge)


def _write(path, h=12, w=16, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((h, w, 3), value, np.uint8)
    img[0, 0] = (1, 2, 3)  # B, G, R
    assert cv2.imwrite(str(path), img)


@pytest.fixture
def folder_root(tmp_path):
    """train/{dog,cat}: mixed-case extensions, a nested file, a non-image."""
    root = tmp_path / 'imagenet'
    _write(root / 'train' / 'dog' / 'd1.JPEG')
    _write(root / 'train' / 'dog' / 'sub' / 'd2.png')
    _write(root / 'train' / 'cat' / 'c1.jpg')
    _write(root / 'train' / 'cat' / 'c2.jpeg')
    (root / 'train' / 'cat' / 'notes.txt').write_text('not an image')
    return root


@pytest.fixture(autouse=True)
def mmdet_scope():
    # configs say type='mmdetnas.X' and run under default_scope='mmdet'
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


def _rel(ds, i):
    info = ds.get_data_info(i)
    return info['img_path'].split('train/')[-1], info['gt_label']


# ---------------------------------------------------------------- layouts
def test_folder_layout(folder_root):
    ds = ImageNetDataset(
        data_root=str(folder_root), data_prefix=dict(img_path='train'))
    assert ds.metainfo['classes'] == ('cat', 'dog')
    assert len(ds) == 4
    assert [_rel(ds, i) for i in range(4)] == [('cat/c1.jpg', 0),
                                               ('cat/c2.jpeg', 0),
                                               ('dog/d1.JPEG', 1),
                                               ('dog/sub/d2.png', 1)]
    assert isinstance(ds.get_data_info(0)['gt_label'], int)


def test_folder_layout_given_classes(folder_root, tmp_path):
    ds = ImageNetDataset(
        data_root=str(folder_root),
        data_prefix='train',
        classes=['dog', 'cat'])
    assert ds.metainfo['classes'] == ('dog', 'cat')
    assert [lbl for _, lbl in map(lambda i: _rel(ds, i), range(4))
            ] == [0, 0, 1, 1]
    # a txt file with one class per line, relative to data_root
    (folder_root / 'classes.txt').write_text('dog\n\n')
    ds = ImageNetDataset(
        data_root=str(folder_root), data_prefix='train', classes='classes.txt')
    assert ds.metainfo['classes'] == ('dog', )
    assert len(ds) == 2
    # metainfo works too
    ds = ImageNetDataset(
        data_root=str(folder_root),
        data_prefix='train',
        metainfo=dict(classes=('cat', )))
    assert len(ds) == 2 and ds.metainfo['classes'] == ('cat', )


def test_ann_file_layout(folder_root):
    (folder_root / 'meta').mkdir()
    (folder_root / 'meta' / 'train.txt'
     ).write_text('dog/d1.JPEG 1\n\ncat/c1.jpg 0\n  dog/sub/d2.png   1  \n')
    ds = ImageNetDataset(
        ann_file='meta/train.txt',
        data_root=str(folder_root),
        data_prefix=dict(img_path='train'),
        classes=['cat', 'dog'])
    assert [_rel(ds, i) for i in range(3)] == [('dog/d1.JPEG', 1),
                                               ('cat/c1.jpg', 0),
                                               ('dog/sub/d2.png', 1)]
    assert ds.get_data_info(0)['img_path'] == str(folder_root / 'train' /
                                                  'dog' / 'd1.JPEG')
    # without classes: labels only need to be >= 0
    ds = ImageNetDataset(
        ann_file='meta/train.txt',
        data_root=str(folder_root),
        data_prefix='train')
    assert len(ds) == 3 and 'classes' not in ds.metainfo


def test_pipeline_end_to_end(folder_root):
    ds = ImageNetDataset(
        data_root=str(folder_root),
        data_prefix=dict(img_path='train'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='mmdetnas.RandomResizedCrop', size=8),
            dict(type='RandomFlip', prob=0.5),
            dict(type='mmdetnas.PackClsInputs'),
        ])
    out = ds[3]
    assert out['inputs'].shape == (3, 8, 8)
    assert out['inputs'].dtype == torch.uint8
    assert out['data_samples'].gt_label.tolist() == [1]
    assert out['data_samples'].ori_shape == (12, 16)
    assert out['data_samples'].img_shape == (8, 8)
    # evaluation pipeline: resize short edge, centre crop (mmcv)
    ds = ImageNetDataset(
        data_root=str(folder_root),
        data_prefix=dict(img_path='train'),
        test_mode=True,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='mmdetnas.ResizeEdge', scale=9),
            dict(type='CenterCrop', crop_size=8),
            dict(type='mmdetnas.PackClsInputs'),
        ])
    assert ds[0]['inputs'].shape == (3, 8, 8)


# ----------------------------------------------------------------- errors
def test_errors(folder_root, tmp_path):
    root = str(folder_root)
    with pytest.raises(FileNotFoundError, match='nowhere'):
        ImageNetDataset(data_root=root, data_prefix='nowhere')
    with pytest.raises(FileNotFoundError, match="'bird'"):
        ImageNetDataset(
            data_root=root, data_prefix='train', classes=['cat', 'bird'])
    with pytest.raises(FileNotFoundError, match='missing.txt'):
        ImageNetDataset(
            ann_file='missing.txt', data_root=root, data_prefix='train')
    with pytest.raises(FileNotFoundError, match='nope.txt'):
        ImageNetDataset(
            data_root=root, data_prefix='train', classes='nope.txt')
    with pytest.raises(ValueError, match='duplicate'):
        ImageNetDataset(
            data_root=root, data_prefix='train', classes=['cat', 'cat'])

    ann = folder_root / 'bad.txt'
    ann.write_text('cat/c1.jpg 0\ncat/c2.jpeg\n')
    with pytest.raises(ValueError, match=r'bad\.txt, line 2'):
        ImageNetDataset(
            ann_file='bad.txt', data_root=root, data_prefix='train')
    ann.write_text('cat/c1.jpg 0\n\ncat/c2.jpeg zero\n')
    with pytest.raises(ValueError, match='line 3'):
        ImageNetDataset(
            ann_file='bad.txt', data_root=root, data_prefix='train')
    ann.write_text('cat/c1.jpg 0\ndog/d1.JPEG 2\n')
    with pytest.raises(ValueError, match=r'line 2: label 2 out of range'):
        ImageNetDataset(
            ann_file='bad.txt',
            data_root=root,
            data_prefix='train',
            classes=['cat', 'dog'])
    ann.write_text('cat/c1.jpg -1\n')
    with pytest.raises(ValueError, match='out of range'):
        ImageNetDataset(
            ann_file='bad.txt', data_root=root, data_prefix='train')
    ann.write_text('\n\n')
    with pytest.raises(ValueError, match='empty'):
        ImageNetDataset(
            ann_file='bad.txt', data_root=root, data_prefix='train')

    (tmp_path / 'empty' / 'a').mkdir(parents=True)
    with pytest.raises(ValueError, match='empty'):
        ImageNetDataset(data_root=str(tmp_path), data_prefix='empty')
    (tmp_path / 'noclass').mkdir()
    with pytest.raises(ValueError, match='no class folder'):
        ImageNetDataset(data_root=str(tmp_path), data_prefix='noclass')


# ------------------------------------------------------------- transforms
def test_random_resized_crop_size_and_bounds():
    img = np.random.RandomState(0).randint(0, 256, (30, 50, 3), np.uint8)
    t = TRANSFORMS.build(dict(type='mmdetnas.RandomResizedCrop', size=(7, 11)))
    assert isinstance(t, RandomResizedCrop)
    np.random.seed(0)
    areas = []
    for _ in range(200):
        out = t(dict(img=img.copy()))
        assert out['img'].shape == (7, 11, 3)
        assert out['img'].dtype == np.uint8
        assert out['img_shape'] == (7, 11)
        x1, y1, x2, y2 = out['crop_bbox']
        assert 0 <= x1 < x2 <= 50 and 0 <= y1 < y2 <= 30
        areas.append((x2 - x1) * (y2 - y1) / (30 * 50))
        ratio = (x2 - x1) / (y2 - y1)
        assert 0.6 < ratio < 1.5  # 3/4..4/3 up to rounding
    assert 0.07 < min(areas) < 0.3 and max(areas) > 0.7
    # reproducible under numpy seeding (what mmengine seeds)
    np.random.seed(1)
    a = t(dict(img=img.copy()))['crop_bbox']
    np.random.seed(1)
    assert (t(dict(img=img.copy()))['crop_bbox'] == a).all()
    assert RandomResizedCrop(5)(dict(img=img))['img'].shape == (5, 5, 3)


def test_random_resized_crop_content_and_fallback():
    img = np.arange(20 * 100 * 3, dtype=np.int64).reshape(20, 100, 3)
    img = (img % 251).astype(np.uint8)
    t = RandomResizedCrop(size=(5, 7))
    t.get_params = lambda h, w: (3, 10, 5, 7)  # top, left, h, w
    out = t(dict(img=img))
    np.testing.assert_array_equal(out['img'], img[3:8, 10:17])
    # no draw can fit an area above the image's -> centred fallback with
    # the ratio clipped to 4/3: h = 20, w = round(20 * 4 / 3) = 27
    t = RandomResizedCrop(size=4, scale=(2.0, 3.0))
    assert t.get_params(20, 100) == (0, 36, 20, 27)
    # portrait: w = 20, h = round(20 / (3 / 4)) = 27, top = (100 - 27) // 2
    assert t.get_params(100, 20) == (36, 0, 27, 20)
    assert t.get_params(30, 30) == (0, 0, 30, 30)
    with pytest.raises(ValueError, match='scale'):
        RandomResizedCrop(4, scale=(0.5, 0.1))
    with pytest.raises(ValueError, match='size'):
        RandomResizedCrop((4, 0))


def test_resize_edge():
    img = np.zeros((40, 60, 3), np.uint8)
    out = ResizeEdge(20)(dict(img=img))
    assert out['img'].shape == (20, 30, 3) and out['img_shape'] == (20, 30)
    assert out['scale_factor'] == (0.5, 0.5)
    assert ResizeEdge(
        30, edge='long')(dict(img=img))['img'].shape[:2] == (20, 30)
    # portrait, truncation of the long side as torchvision: 256*500/333
    img = np.zeros((500, 333, 3), np.uint8)
    assert ResizeEdge(256)(dict(img=img))['img'].shape[:2] == (384, 256)
    assert ResizeEdge(256).output_size(333, 500) == (256, 384)
    with pytest.raises(ValueError, match='edge'):
        ResizeEdge(10, edge='width')


def test_pack_cls_inputs():
    img = np.random.RandomState(0).randint(0, 256, (6, 5, 3), np.uint8)
    out = PackClsInputs()(
        dict(
            img=img,
            gt_label=3,
            img_path='a.jpg',
            ori_shape=(9, 9),
            img_shape=(6, 5)))
    inputs, ds = out['inputs'], out['data_samples']
    assert inputs.shape == (3, 6, 5) and inputs.dtype == torch.uint8
    assert inputs.is_contiguous()
    assert torch.equal(inputs, torch.from_numpy(img).permute(2, 0, 1))
    assert ds.gt_label.dtype == torch.long and ds.gt_label.shape == (1, )
    assert ds.gt_label.item() == 3
    assert ds.metainfo == dict(
        img_path='a.jpg', ori_shape=(9, 9), img_shape=(6, 5))
    gray = PackClsInputs()(dict(img=img[..., 0]))
    assert gray['inputs'].shape == (1, 6, 5)
    assert 'gt_label' not in gray['data_samples']
    with pytest.raises(ValueError, match='single'):
        PackClsInputs()(dict(img=img, gt_label=[1, 2]))
