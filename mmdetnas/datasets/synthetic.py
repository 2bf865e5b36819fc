"""Tiny synthetic detection data: the COCO-format set of noise images with
bright squares that the end-to-end tests and ``tools/gpu_check.py`` build,
so a check needs no download."""
import json
import os
import os.path as osp

import numpy as np

__all__ = ['make_tiny_coco', 'coco_options']


def make_tiny_coco(root: str, num_images: int = 6, size: int = 96,
                   seed: int = 0) -> dict:
    """Images of noise with bright squares (the objects) and COCO json files
    ``train.json`` (all images) and ``val.json`` (the first half).

    Returns the paths (``root``, ``train``, ``val`` json).
    """
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    images, anns = [], []
    for i in range(num_images):
        img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            w, h = (int(v) for v in rng.integers(16, 36, 2))
            x, y = (int(v) for v in rng.integers(0, size - 36, 2))
            img[y:y + h, x:x + w] = 220
            anns.append(dict(id=len(anns) + 1, image_id=i + 1, category_id=1,
                             bbox=[x, y, w, h], area=w * h, iscrowd=0))
        name = f'img_{i}.jpg'
        _imwrite(osp.join(root, 'images', name), img)
        images.append(dict(id=i + 1, file_name=name, width=size,
                           height=size))
    cats = [dict(id=1, name='square')]
    paths = dict(root=root)
    for split, keep in (('train', images), ('val', images[:num_images // 2])):
        ids = {im['id'] for im in keep}
        path = osp.join(root, f'{split}.json')
        with open(path, 'w') as f:
            json.dump(dict(images=keep, categories=cats,
                           annotations=[a for a in anns
                                        if a['image_id'] in ids]), f)
        paths[split] = path
    return paths


def coco_options(paths: dict) -> list:
    """--cfg-options pointing a quickstart detection config at the tiny
    set, at 96x96."""
    root = paths['root'] + '/'
    opts = []
    for dl, ann in (('train_dataloader', 'train.json'),
                    ('val_dataloader', 'val.json'),
                    ('test_dataloader', 'val.json')):
        opts += [f'{dl}.dataset.data_root={root}',
                 f'{dl}.dataset.ann_file={ann}',
                 f"{dl}.dataset.metainfo.classes=['square']"]
    opts += [f"val_evaluator.ann_file={paths['val']}",
             f"test_evaluator.ann_file={paths['val']}",
             'train_dataloader.batch_size=2',
             'train_dataloader.num_workers=0']
    return opts


def _imwrite(path: str, img: np.ndarray) -> None:
    import cv2
    if not cv2.imwrite(path, img):
        raise OSError(f'could not write the image {path!r}')

