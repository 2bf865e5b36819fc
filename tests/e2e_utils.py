"""Tiny data sets and a tool runner shared by the end-to-end tests."""
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


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
        cv2.imwrite(osp.join(root, 'images', name), img)
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


def make_tiny_imagenet(root: str, classes=('a', 'b'), per_class: int = 4,
                       size: int = 32, seed: int = 0) -> str:
    """ImageNet-layout folders ``train/<cls>`` and ``val/<cls>`` with
    ``meta/{train,val}.txt``; class ``k`` images have brightness ~ k."""
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    for split in ('train', 'val'):
        lines = []
        for label, cls in enumerate(classes):
            os.makedirs(osp.join(root, split, cls), exist_ok=True)
            for i in range(per_class):
                base = 40 + 150 * label
                img = (base + rng.integers(0, 40, (size, size, 3))).astype(
                    np.uint8)
                rel = f'{cls}/{i}.png'
                cv2.imwrite(osp.join(root, split, rel), img)
                lines.append(f'{rel} {label}')
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    return root


def run_tool(args: list, timeout: int = 600, check: bool = True):
    """Run ``python tools/...`` like a user, in the repository root."""
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f'{args} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n'
            f'{proc.stderr[-6000:]}')
    return proc


def scalars(work_dir: str) -> list:
    """The train log records (``vis_data/scalars.json``) of a work dir."""
    import glob
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    out = []
    for path in files:
        with open(path) as f:
            out += [json.loads(x) for x in f if x.strip()]
    return out
