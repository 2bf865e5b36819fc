"""Fashion-MNIST in the ImageNet layout (the quickstart's stand-in for
ImageNet supernet pre-training): :func:`prepare_fashion_mnist` writes it;
the command line is::

    python tools/dataset_converters/prepare_fashion_mnist.py \\
        --out-dir data/fashion_mnist [--src /usr/share/datasets/fashion-mnist]
        [--num-train N] [--num-val M] [--size 64] [--seed 0]

Source: Fashion-MNIST (Xiao, Rasul and Vollgraf, Zalando Research, 2017; MIT
licence), 28x28 grey photographs of 10 clothing classes, as installed by the
Debian package ``dataset-fashion-mnist`` under
``/usr/share/datasets/fashion-mnist/`` (``train-images-idx3-ubyte.gz`` ...).

Output (what :class:`mmdetnas.datasets.ImageNetDataset` reads, exactly as it
reads ImageNet)::

    OUT/train/<class>/<index>.png     3-channel, upsampled to size
    OUT/val/<class>/<index>.png       from the t10k files
    OUT/meta/train.txt, meta/val.txt  "<class>/<index>.png <label>"
    OUT/meta/classes.txt              the 10 class names in label order

``num_train``/``num_val`` take a seeded, class-balanced subset.
Deterministic: the same arguments write the same files.
"""
import gzip
import os
import os.path as osp
from typing import Optional

import numpy as np

__all__ = [
    'CLASSES', 'DEFAULT_SRC', 'read_idx', 'balanced_subset', 'write_split',
    'prepare_fashion_mnist'
]

CLASSES = ('T-shirt_top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
           'Shirt', 'Sneaker', 'Bag', 'Ankle_boot')
DEFAULT_SRC = '/usr/share/datasets/fashion-mnist'
FILES = {
    'train': ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
    'val': ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'),
}


def read_idx(path: str) -> np.ndarray:
    """Read an idx file (gzip or plain): ``uint8`` array of its shape.

    Raises:
        ValueError: not an unsigned-byte idx file.
    """
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f'{path}: not an unsigned-byte idx file')
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big')
            for i in range(ndim)]
    arr = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f'{path}: expected {dims} values, got {arr.size}')
    return arr.reshape(dims)


def balanced_subset(labels: np.ndarray, num, seed: int) -> np.ndarray:
    """Sorted indices of a class-balanced random subset of ``num`` samples
    (all when ``num`` is None or too large)."""
    if num is None or num >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per = [num // len(classes) + (i < num % len(classes))
           for i in range(len(classes))]
    keep = []
    for c, n in zip(classes, per):
        idx = np.flatnonzero(labels == c)
        keep.append(rng.choice(idx, size=min(n, len(idx)), replace=False))
    return np.sort(np.concatenate(keep))


def write_split(images: np.ndarray, labels: np.ndarray, idx: np.ndarray,
                out_dir: str, split: str, size: int) -> int:
    """Write one split; returns the number of images written."""
    import cv2
    lines = []
    for cls in CLASSES:
        os.makedirs(osp.join(out_dir, split, cls), exist_ok=True)
    for i in idx:
        label = int(labels[i])
        img = images[i]
        if size != img.shape[0]:
            img = cv2.resize(img, (size, size),
                             interpolation=cv2.INTER_LINEAR)
        img = np.repeat(img[:, :, None], 3, axis=2)
        rel = f'{CLASSES[label]}/{i:05d}.png'
        cv2.imwrite(osp.join(out_dir, split, rel), img)
        lines.append(f'{rel} {label}')
    os.makedirs(osp.join(out_dir, 'meta'), exist_ok=True)
    with open(osp.join(out_dir, 'meta', f'{split}.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return len(lines)


def prepare_fashion_mnist(src: str = DEFAULT_SRC,
                          out_dir: str = 'data/fashion_mnist',
                          num_train: Optional[int] = None,
                          num_val: Optional[int] = None,
                          size: int = 64,
                          seed: int = 0) -> dict:
    """Write Fashion-MNIST from ``src`` in the ImageNet layout into
    ``out_dir`` (see the module docstring) and print what was written.

    Args:
        src (str): Folder with the four ``*-ubyte.gz`` files.
        out_dir (str): Output folder.
        num_train (int, optional): Training images (a seeded,
            class-balanced subset; default all).
        num_val (int, optional): Validation images (likewise).
        size (int): Output side in pixels (>= 8; upsampled from 28).
        seed (int): Seed of the subsets.

    Returns:
        dict: images written per split, ``{'train': n, 'val': m}``.

    Raises:
        FileNotFoundError: ``src`` or one of its four files is missing
            (the message says how to install them).
        ValueError: ``size`` below 8, image and label files of different
            lengths, or a file that is not an idx file.
    """
    if not osp.isdir(src):
        raise FileNotFoundError(
            f'Fashion-MNIST not found at {src!r}: run `sudo apt-get install '
            'dataset-fashion-mnist` (Debian/Ubuntu) or pass --src DIR with '
            'train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, '
            't10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz')
    if size < 8:
        raise ValueError(f'--size must be >= 8, got {size}')
    counts = {}
    for split, (img_file, lbl_file) in FILES.items():
        paths = [osp.join(src, n) for n in (img_file, lbl_file)]
        for p in paths:
            if not osp.isfile(p):
                raise FileNotFoundError(f'missing Fashion-MNIST file {p!r}')
        images, labels = read_idx(paths[0]), read_idx(paths[1])
        if len(images) != len(labels):
            raise ValueError(f'{paths[0]} has {len(images)} images but '
                             f'{paths[1]} has {len(labels)} labels')
        num = num_train if split == 'train' else num_val
        idx = balanced_subset(labels, num, seed)
        counts[split] = write_split(images, labels, idx, out_dir, split,
                                    size)
    with open(osp.join(out_dir, 'meta', 'classes.txt'), 'w') as f:
        f.write('\n'.join(CLASSES) + '\n')
    print(f"wrote Fashion-MNIST to {out_dir}: {counts['train']} train, "
          f"{counts['val']} val images, {size}x{size}, "
          f'{len(CLASSES)} classes')
    return counts
