"""Packing of classification samples into model inputs."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement

from mmdetnas.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackClsInputs(BaseTransform):
    """Pack an image and its label for
    :class:`mmdetnas.models.ImageClassifier`.

    Required keys: ``img``. Optional keys: ``gt_label`` and the
    ``meta_keys``.

    Args:
        meta_keys (Sequence[str]): Keys of ``results`` copied into the data
            sample's metainfo when present (missing ones are skipped).

    Returns (of :meth:`transform`):
        dict: ``inputs``, a contiguous ``(C, H, W)`` tensor with the image's
        dtype (``uint8`` for loaded images; the channel order is kept, BGR
        for cv2-loaded images; a gray ``(H, W)`` image becomes
        ``(1, H, W)``), and ``data_samples``, a
        :class:`mmengine.structures.BaseDataElement` with ``gt_label``
        (``LongTensor`` of shape ``(1, )``, when ``gt_label`` is in
        ``results``) and the metainfo.

    Raises:
        KeyError: ``img`` missing.
        ValueError: ``gt_label`` is not a single class index.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('img_path', 'ori_shape',
                                             'img_shape')):
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        if 'img' not in results:
            raise KeyError('PackClsInputs needs results["img"]; load the '
                           'image first (LoadImageFromFile)')
        img = results['img']
        if isinstance(img, np.ndarray):
            if img.ndim == 2:
                img = img[..., None]
            img = torch.from_numpy(
                np.ascontiguousarray(img.transpose(2, 0, 1)))
        elif isinstance(img, torch.Tensor):
            if img.dim() == 2:
                img = img[None]
            else:
                img = img.permute(2, 0, 1)
            img = img.contiguous()
        else:
            raise TypeError(f'results["img"] must be a numpy array or a '
                            f'tensor, got {type(img).__name__}')
        sample = BaseDataElement(
            metainfo={k: results[k]
                      for k in self.meta_keys if k in results})
        if results.get('gt_label') is not None:
            label = torch.as_tensor(
                results['gt_label'], dtype=torch.long).reshape(-1)
            if label.numel() != 1:
                raise ValueError(
                    'gt_label must be a single class index, got shape '
                    f'{tuple(np.shape(results["gt_label"]))}')
            sample.gt_label = label
        return dict(inputs=img, data_samples=sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
