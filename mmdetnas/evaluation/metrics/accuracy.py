"""Top-k classification accuracy (ImageNet evaluation of supernets and
subnets, DetNAS Sec. 4.1)."""
from typing import List, Optional, Sequence, Union

import torch
from mmengine.evaluator import BaseMetric
from mmengine.structures import BaseDataElement

from mmdetnas.registry import METRICS


def _field(sample, key: str, index: int):
    """``sample[key]`` of a dict or a :class:`BaseDataElement`."""
    if isinstance(sample, BaseDataElement):
        value = sample.get(key, None)
    elif isinstance(sample, dict):
        value = sample.get(key)
    else:
        raise TypeError(f'data sample {index} must be a dict or a '
                        f'BaseDataElement, got {type(sample).__name__}')
    if value is None:
        raise KeyError(f'data sample {index} has no {key!r}; Accuracy needs '
                       "the 'predict' outputs of a classifier (pred_score) "
                       'and gt_label')
    return value


@METRICS.register_module()
class Accuracy(BaseMetric):
    """Top-k accuracy, in percent.

    A sample is correct at ``k`` when its ground-truth class is among the
    ``k`` highest ``pred_score`` entries (ties broken by ``torch.topk``).

    Args:
        topk (int | Sequence[int]): The ``k`` values, each ``>= 1``.
        collect_device (str): ``'cpu'`` or ``'gpu'``, where results of all
            ranks are gathered.
        prefix (str): Prefix of the result keys; results are
            ``'{prefix}/top{k}'``.
        collect_dir (str, optional): Temporary folder of the CPU collection.

    Each data sample (``dict`` or :class:`BaseDataElement`) needs
    ``pred_score`` (``(num_classes, )`` scores, e.g. softmax probabilities)
    and ``gt_label`` (int or a tensor holding one class index).

    Returns (of :meth:`compute_metrics`):
        dict[str, float]: ``top{k}`` for each ``k``, the percentage of
        correct samples in ``[0, 100]`` (full float precision, not rounded).

    Raises:
        ValueError: a ``k < 1``; a ``k`` larger than the number of classes
            (checked when computing); score vectors of different lengths; no
            sample at all.
        KeyError: a data sample without ``pred_score`` or ``gt_label``.
    """
    default_prefix: Optional[str] = 'accuracy'

    def __init__(self,
                 topk: Union[int, Sequence[int]] = (1, 5),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = 'accuracy',
                 collect_dir: Optional[str] = None):
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir)
        topk = (topk, ) if isinstance(topk, int) else tuple(topk)
        if not topk or any(not isinstance(k, int) or k < 1 for k in topk):
            raise ValueError(f'topk must be positive ints, got {topk!r}')
        self.topk = tuple(sorted(set(topk)))

    def process(self, data_batch, data_samples: Sequence) -> None:
        """Keep the score vector and label of each sample.

        Args:
            data_batch: The batch from the dataloader (unused).
            data_samples (Sequence[dict | BaseDataElement]): Model outputs
                with ``pred_score`` and ``gt_label``.
        """
        for i, sample in enumerate(data_samples):
            score = torch.as_tensor(_field(sample, 'pred_score', i))
            label = torch.as_tensor(_field(sample, 'gt_label', i))
            if label.numel() != 1:
                raise ValueError(
                    f'data sample {i}: gt_label must be one class index, '
                    f'got shape {tuple(label.shape)}')
            self.results.append(
                dict(
                    pred_score=score.detach().reshape(-1).float().cpu(),
                    gt_label=int(label.reshape(-1)[0])))

    def compute_metrics(self, results: List[dict]) -> dict:
        """Top-k accuracies of all gathered samples.

        Args:
            results (list[dict]): ``pred_score`` ``(num_classes, )`` and
                ``gt_label`` int per sample.

        Returns:
            dict[str, float]: ``{'top1': ..., 'top5': ...}`` in percent.
        """
        if not results:
            raise ValueError('Accuracy got no sample to evaluate')
        num_classes = {r['pred_score'].numel() for r in results}
        if len(num_classes) != 1:
            raise ValueError(f'pred_score vectors have different lengths '
                             f'{sorted(num_classes)}')
        num_classes = num_classes.pop()
        too_big = [k for k in self.topk if k > num_classes]
        if too_big:
            raise ValueError(
                f'top-k with k={too_big} is larger than the number of '
                f'classes ({num_classes}); use topk <= {num_classes}')
        scores = torch.stack([r['pred_score'] for r in results])  # (N, C)
        labels = torch.tensor([r['gt_label'] for r in results])  # (N, )
        top = scores.topk(max(self.topk), dim=1).indices  # (N, maxk)
        hits = top == labels[:, None]
        num = len(results)
        return {
            f'top{k}': hits[:, :k].any(dim=1).sum().item() * 100.0 / num
            for k in self.topk
        }
