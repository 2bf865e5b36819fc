# Copyright (c) OpenMMLab. All rights reserved.
"""Carve the DetNAS search split out of a detection training set.

DetNAS (Chen et al., NeurIPS 2019) never searches on the official
validation set: it holds out a random subset of the *training* images
(5k of COCO ``train2017``) as ``search_val``, trains the supernet on the
rest (``supernet_train``) and ranks candidate paths by their mAP on the
held-out part.  This script produces that split, seeded and deterministic.

Two input formats are understood, chosen by the file suffix:

* COCO json (``.json``): writes ``<out_dir>/<stem>_supernet_train.json`` and
  ``<out_dir>/<stem>_search_val.json``.  The two files hold disjoint sets of
  images that together are exactly the input images; every annotation goes
  to the file that holds its image; every other top-level key
  (``categories``, ``info``, ``licenses``, ...) is copied to both.
* Pascal VOC image-set list (``.txt``, one image id per line, e.g.
  ``VOC2007/ImageSets/Main/trainval.txt``): writes
  ``<stem>_supernet_train.txt`` and ``<stem>_search_val.txt``.

Both outputs keep the input order of the images. :func:`split_search_set`
writes them; the command line is::

    python tools/dataset_converters/split_search_set.py \\
        data/coco/annotations/instances_train2017.json \\
        --num 5000 --seed 0 --out-dir data/coco/annotations
"""
import json
import os.path as osp
import random
from pathlib import Path
from typing import Optional, Tuple

__all__ = [
    'TRAIN_SUFFIX', 'VAL_SUFFIX', 'split_ids', 'split_coco', 'read_voc_list',
    'output_paths', 'split_search_set'
]

TRAIN_SUFFIX = 'supernet_train'
VAL_SUFFIX = 'search_val'


def split_ids(ids, num, seed=0):
    """Pick ``num`` ids at random as the search-val subset.

    Args:
        ids (Sequence): Unique, hashable image ids (COCO ints or VOC
            strings), in dataset order.
        num (int): Number of ids to put in the search-val subset.
        seed (int): Seed of the (Python ``random``) generator. The same
            ``ids``, ``num`` and ``seed`` always give the same split.

    Returns:
        tuple[list, list]: ``(supernet_train_ids, search_val_ids)``, disjoint,
        each in the order of ``ids``, together exactly ``ids``.

    Raises:
        ValueError: If ``ids`` holds duplicates or ``num`` is not in
            ``[1, len(ids) - 1]``.
    """
    ids = list(ids)
    if len(set(ids)) != len(ids):
        seen, dups = set(), []
        for i in ids:
            if i in seen:
                dups.append(i)
            seen.add(i)
        raise ValueError(f'duplicate image ids in the input: {dups[:5]}'
                         f'{" ..." if len(dups) > 5 else ""}')
    if num < 1:
        raise ValueError(f'--num must be >= 1, got {num}')
    if num >= len(ids):
        raise ValueError(f'--num ({num}) must be smaller than the number of '
                         f'images in the input ({len(ids)})')
    rng = random.Random(seed)
    val_pos = set(rng.sample(range(len(ids)), num))
    train = [i for k, i in enumerate(ids) if k not in val_pos]
    val = [i for k, i in enumerate(ids) if k in val_pos]
    return train, val


def split_coco(coco, num, seed=0):
    """Split a COCO-style annotation dict by image.

    Args:
        coco (dict): Loaded COCO json; needs ``images`` (each with ``id``)
            and may have ``annotations`` (each with ``image_id``).
        num (int): Number of images for the search-val part.
        seed (int): Random seed, see :func:`split_ids`.

    Returns:
        tuple[dict, dict]: ``(supernet_train, search_val)`` COCO dicts. Keys
        other than ``images``/``annotations`` are shared (copied by
        reference) between both.

    Raises:
        ValueError: On a malformed dict, duplicate image ids, annotations
            pointing to unknown images, or a bad ``num``.
    """
    if not isinstance(coco, dict) or not isinstance(coco.get('images'), list):
        raise ValueError('not a COCO annotation file: no "images" list')
    images = coco['images']
    annotations = coco.get('annotations', [])
    try:
        img_ids = [img['id'] for img in images]
    except (KeyError, TypeError):
        raise ValueError('every entry of "images" needs an "id"')
    train_ids, val_ids = split_ids(img_ids, num, seed)
    val_set = set(val_ids)
    known = set(img_ids)
    orphans = [
        a.get('id') for a in annotations if a.get('image_id') not in known
    ]
    if orphans:
        raise ValueError(f'{len(orphans)} annotations refer to image ids not '
                         f'in "images" (annotation ids {orphans[:5]})')

    def subset(in_val):
        out = {k: v for k, v in coco.items() if k not in ('images', )}
        out['images'] = [
            img for img in images if (img['id'] in val_set) == in_val
        ]
        if 'annotations' in coco:
            out['annotations'] = [
                a for a in annotations if (a['image_id'] in val_set) == in_val
            ]
        # keep the key order of the input file
        return {k: out[k] for k in coco}

    return subset(False), subset(True)


def read_voc_list(path):
    """Read a VOC image-set list (one image id per line).

    Blank lines are skipped; only the first whitespace-separated field of a
    line is kept (VOC per-class lists carry a ``-1/0/1`` flag after it).

    Args:
        path (str): Path of the ``.txt`` list.

    Returns:
        list[str]: Image ids in file order.
    """
    with open(path, encoding='utf-8') as f:
        return [line.split()[0] for line in f if line.strip()]


def output_paths(ann_file, out_dir):
    """Return the two output paths for ``ann_file``.

    Args:
        ann_file (str): Input ``.json`` or ``.txt`` file.
        out_dir (str): Output folder.

    Returns:
        tuple[str, str]: ``(supernet_train_path, search_val_path)``, i.e.
        ``<out_dir>/<stem>_supernet_train<suffix>`` and
        ``<out_dir>/<stem>_search_val<suffix>``.
    """
    p = Path(ann_file)
    return (osp.join(out_dir, f'{p.stem}_{TRAIN_SUFFIX}{p.suffix}'),
            osp.join(out_dir, f'{p.stem}_{VAL_SUFFIX}{p.suffix}'))


def split_search_set(ann_file: str,
                     num: int = 5000,
                     seed: int = 0,
                     out_dir: Optional[str] = None) -> Tuple[str, str]:
    """Write the supernet_train and search_val parts of ``ann_file`` (see
    the module docstring) and print their sizes.

    Args:
        ann_file (str): COCO annotation json or VOC image-set list (.txt)
            of the training set.
        num (int): Images put in search_val.
        seed (int): Random seed (:func:`split_ids`).
        out_dir (str, optional): Output folder (default: the folder of
            ``ann_file``).

    Returns:
        tuple[str, str]: Paths of the written supernet_train and
        search_val files.

    Raises:
        FileNotFoundError: ``ann_file`` does not exist.
        ValueError: an unknown format, an output that would overwrite the
            input, invalid json, or what :func:`split_coco` and
            :func:`split_ids` raise (prefixed with ``ann_file``).
    """
    out_dir = out_dir or osp.dirname(osp.abspath(ann_file))
    suffix = Path(ann_file).suffix.lower()
    if suffix not in ('.json', '.txt'):
        raise ValueError(f'ANN_FILE {ann_file!r}: unknown format {suffix!r}, '
                         'expected a COCO .json or a VOC image-set .txt')
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'ANN_FILE {ann_file!r} does not exist')
    train_path, val_path = output_paths(ann_file, out_dir)
    if osp.abspath(ann_file) in (osp.abspath(train_path),
                                 osp.abspath(val_path)):
        raise ValueError(f'refusing to overwrite the input {ann_file!r}')

    try:
        if suffix == '.json':
            with open(ann_file, encoding='utf-8') as f:
                try:
                    coco = json.load(f)
                except json.JSONDecodeError as e:
                    raise ValueError(f'{ann_file!r} is not valid json: {e}')
            train, val = split_coco(coco, num, seed)
        else:
            ids = read_voc_list(ann_file)
            train, val = split_ids(ids, num, seed)
    except ValueError as e:
        raise ValueError(f'{ann_file}: {e}') from e

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for path, part in ((train_path, train), (val_path, val)):
        with open(path, 'w', encoding='utf-8') as f:
            if suffix == '.json':
                json.dump(part, f)
            else:
                f.write(''.join(f'{i}\n' for i in part))

    print(f'{"split":<16}{"images":>10}{"annotations":>14}  file')
    if suffix == '.json':
        n_ann = len(coco.get('annotations', []))
        rows = [('input', len(coco['images']), n_ann, ann_file)]
        rows += [(name, len(part['images']), len(part.get('annotations',
                                                          [])), path)
                 for name, part, path in ((TRAIN_SUFFIX, train, train_path),
                                          (VAL_SUFFIX, val, val_path))]
    else:
        rows = [('input', len(train) + len(val), '-', ann_file),
                (TRAIN_SUFFIX, len(train), '-', train_path),
                (VAL_SUFFIX, len(val), '-', val_path)]
    for name, n_img, n_ann, path in rows:
        print(f'{name:<16}{n_img:>10}{n_ann:>14}  {path}')
    return train_path, val_path

