"""Classification augmentations not provided by mmcv.

Used for the ImageNet pre-training of DetNAS supernets and subnets (DetNAS
Sec. 4.1, training recipe of SPOS / ShuffleNetV2): ``RandomResizedCrop`` for
training, ``ResizeEdge`` + mmcv's ``CenterCrop`` for evaluation. Random draws
use numpy's global RNG, so mmengine's seeding (``randomness=dict(seed=...)``
and its per-worker seeds) makes them reproducible.
"""
import math
from typing import Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from mmdetnas.registry import TRANSFORMS


def _pair(size: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    """``(h, w)`` from an int or a 2-sequence of positive ints."""
    if isinstance(size, int):
        size = (size, size)
    size = tuple(size)
    if (len(size) != 2 or not all(isinstance(s, int) for s in size)
            or min(size) < 1):
        raise ValueError(
            f'{name} must be a positive int or (h, w), got {size!r}')
    return size


@TRANSFORMS.register_module()
class RandomResizedCrop(BaseTransform):
    """Crop a random area and aspect ratio, then resize to ``size``.

    The crop box follows torchvision's definition (Szegedy et al., "Going
    deeper with convolutions"): up to ``max_attempts`` times draw an area
    fraction ``s ~ U(scale)`` and a log-uniform aspect ratio ``r`` (w / h)
    in ``ratio``; the box ``w = round(sqrt(s * A * r))``,
    ``h = round(sqrt(s * A / r))`` (``A = H * W``) is accepted if it fits in
    the image, at a uniform position. If no draw fits, fall back to the
    largest centred box whose ratio is clipped to ``ratio``.

    Required keys: ``img``. Modified keys: ``img``, ``img_shape``. Added
    keys: ``crop_bbox`` (``[x1, y1, x2, y2]``, exclusive ``x2``/``y2``,
    pixels of the input image).

    Args:
        size (int | tuple[int, int]): Output size, ``(h, w)`` if a tuple.
        scale (tuple[float, float]): Range of the crop area as a fraction
            of the image area, ``0 < low <= high``.
        ratio (tuple[float, float]): Range of the crop aspect ratio
            ``w / h``, ``0 < low <= high``.
        max_attempts (int): Random draws before the centre-crop fallback.
        interpolation (str): mmcv interpolation, e.g. ``'bilinear'``.
        backend (str): mmcv resize backend, ``'cv2'`` or ``'pillow'``.

    Shapes:
        ``img`` ``(H, W[, C])`` in, ``(size_h, size_w[, C])`` out, same
        dtype.

    Raises:
        ValueError: invalid ``size``, ``scale``, ``ratio`` or
            ``max_attempts``.
    """

    def __init__(self,
                 size: Union[int, Sequence[int]],
                 scale: Sequence[float] = (0.08, 1.0),
                 ratio: Sequence[float] = (3. / 4., 4. / 3.),
                 max_attempts: int = 10,
                 interpolation: str = 'bilinear',
                 backend: str = 'cv2'):
        self.size = _pair(size, 'size')
        for name, rng in (('scale', scale), ('ratio', ratio)):
            if len(rng) != 2 or not 0 < rng[0] <= rng[1]:
                raise ValueError(f'{name} must be (low, high) with '
                                 f'0 < low <= high, got {tuple(rng)}')
        if not isinstance(max_attempts, int) or max_attempts < 0:
            raise ValueError(
                f'max_attempts must be an int >= 0, got {max_attempts!r}')
        self.scale = tuple(float(s) for s in scale)
        self.ratio = tuple(float(r) for r in ratio)
        self.max_attempts = max_attempts
        self.interpolation = interpolation
        self.backend = backend

    def get_params(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """Draw a crop box.

        Args:
            height (int): Image height in pixels.
            width (int): Image width in pixels.

        Returns:
            tuple[int]: ``(top, left, h, w)`` in pixels, with
            ``0 <= top``, ``top + h <= height``, ``0 <= left``,
            ``left + w <= width`` and ``h, w >= 1``.
        """
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(self.max_attempts):
            target_area = area * np.random.uniform(*self.scale)
            aspect = math.exp(np.random.uniform(*log_ratio))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = int(np.random.randint(0, height - h + 1))
                left = int(np.random.randint(0, width - w + 1))
                return top, left, h, w
        # fallback: centre crop with the ratio clipped into range
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            h, w = height, int(round(height * self.ratio[1]))
        else:
            w, h = width, height
        h, w = max(1, min(h, height)), max(1, min(w, width))
        return (height - h) // 2, (width - w) // 2, h, w

    def transform(self, results: dict) -> dict:
        """Crop and resize ``results['img']``.

        Args:
            results (dict): With ``img``, ``(H, W[, C])`` array.

        Returns:
            dict: ``results`` with the new ``img``, ``img_shape`` and
            ``crop_bbox``.
        """
        img = results['img']
        height, width = img.shape[:2]
        top, left, h, w = self.get_params(height, width)
        # mmcv.imcrop boxes are inclusive
        crop = mmcv.imcrop(img,
                           np.array([left, top, left + w - 1, top + h - 1]))
        img = mmcv.imresize(
            crop, (self.size[1], self.size[0]),
            interpolation=self.interpolation,
            backend=self.backend)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['crop_bbox'] = np.array([left, top, left + w, top + h],
                                        dtype=np.int64)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, '
                f'scale={self.scale}, ratio={self.ratio}, '
                f'max_attempts={self.max_attempts}, '
                f'interpolation={self.interpolation!r}, '
                f'backend={self.backend!r})')


@TRANSFORMS.register_module()
class ResizeEdge(BaseTransform):
    """Resize keeping the aspect ratio so one edge equals ``scale``.

    With ``edge='short'`` (the usual evaluation resize, e.g. 256 before a
    224 centre crop) the shorter side becomes ``scale`` and the longer one
    ``int(scale * long / short)`` (truncated, as torchvision's ``Resize``);
    ``edge='long'`` does the same for the longer side. Square images get
    ``(scale, scale)``.

    Required keys: ``img``. Modified keys: ``img``, ``img_shape``. Added
    keys: ``scale`` (``(w, h)`` output size), ``scale_factor``
    (``(w_out / w_in, h_out / h_in)``), ``keep_ratio`` (True).

    Args:
        scale (int): Target length of the chosen edge, in pixels.
        edge (str): ``'short'`` or ``'long'``.
        interpolation (str): mmcv interpolation, e.g. ``'bilinear'``.
        backend (str): mmcv resize backend, ``'cv2'`` or ``'pillow'``.

    Raises:
        ValueError: ``scale`` not a positive int or unknown ``edge``.
    """

    def __init__(self,
                 scale: int,
                 edge: str = 'short',
                 interpolation: str = 'bilinear',
                 backend: str = 'cv2'):
        if not isinstance(scale, int) or scale < 1:
            raise ValueError(f'scale must be a positive int, got {scale!r}')
        if edge not in ('short', 'long'):
            raise ValueError(f"edge must be 'short' or 'long', got {edge!r}")
        self.scale = scale
        self.edge = edge
        self.interpolation = interpolation
        self.backend = backend

    def output_size(self, height: int, width: int) -> Tuple[int, int]:
        """``(h, w)`` of the resized image for an input ``(height, width)``.
        """
        short_is_h = height <= width
        resize_h = short_is_h == (self.edge == 'short')
        if resize_h:
            return self.scale, max(1, int(self.scale * width / height))
        return max(1, int(self.scale * height / width)), self.scale

    def transform(self, results: dict) -> dict:
        """Resize ``results['img']``.

        Args:
            results (dict): With ``img``, ``(H, W[, C])`` array.

        Returns:
            dict: ``results`` with the resized ``img`` and updated keys.
        """
        img = results['img']
        height, width = img.shape[:2]
        h, w = self.output_size(height, width)
        img = mmcv.imresize(
            img, (w, h),
            interpolation=self.interpolation,
            backend=self.backend)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['scale'] = (w, h)
        results['scale_factor'] = (w / width, h / height)
        results['keep_ratio'] = True
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(scale={self.scale}, '
                f'edge={self.edge!r}, interpolation={self.interpolation!r}, '
                f'backend={self.backend!r})')
