"""A minimal image classifier for supernet / subnet ImageNet pre-training.

DetNAS (Chen et al., NeurIPS 2019), Sec. 4.1, pre-trains the supernet on
ImageNet classification the SPOS way (Guo et al., ECCV 2020): the backbone
(with its last 1x1 conv) is followed by global average pooling, an optional
dropout and one fully connected layer, trained with label-smoothed
cross-entropy. The backbone stays under the attribute ``backbone`` so the
checkpoint keys are ``backbone.*``, which the detection stage loads with the
prefix ``backbone.``.
"""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel, BaseModule
from mmengine.structures import BaseDataElement

from mmdetnas.registry import MODELS


class LinearClsHead(BaseModule):
    """Global average pooling, dropout and a linear layer.

    Args:
        in_channels (int): Channels of the input feature map.
        num_classes (int): Number of classes.
        dropout (float): Dropout probability before the linear layer, in
            ``[0, 1)``; 0 disables it.
        init_cfg (dict | list, optional): mmengine init config. Defaults to
            ``Normal(std=0.01)`` weights and zero bias for the linear layer,
            as in the SPOS reference code.

    Shapes:
        input ``(N, C, H, W)`` (or ``(N, C)``, already pooled); output
        ``(N, num_classes)`` logits.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 dropout: float = 0.0,
                 init_cfg: Union[None, dict, list] = dict(
                     type='Normal', layer='Linear', std=0.01, bias=0.)):
        super().__init__(init_cfg=init_cfg)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool, drop out and classify.

        Args:
            x (Tensor): ``(N, C, H, W)`` feature map or ``(N, C)`` vector.

        Returns:
            Tensor: ``(N, num_classes)`` logits.
        """
        if x.dim() == 4:
            x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(self.dropout(x))


@MODELS.register_module()
class ImageClassifier(BaseModel):
    """Backbone + global average pooling + linear classifier.

    Used for the ImageNet pre-training of the DetNAS supernet (with
    :class:`mmdetnas.engine.PathSamplerHook` sampling one path per
    iteration) and of the searched subnet (DetNAS Sec. 4.1, following SPOS).

    Args:
        backbone (dict): Config of the backbone, built with
            ``mmdetnas.registry.MODELS`` (e.g.
            ``dict(type='mmdetnas.DetNASShuffleNetV2', out_indices=(3, ),
            with_last_conv=True)``). Only its last output is classified.
        num_classes (int): Number of classes (1000 for ImageNet).
        in_channels (int, optional): Channels of the last backbone output.
            ``None`` reads them from the built backbone:
            ``backbone.out_channels[max(backbone.out_indices)]`` (the list
            has one entry per stage index; ``[-1]`` without
            ``out_indices``; an ``int`` attribute is taken as is).
        label_smoothing (float): Label smoothing of the cross-entropy loss,
            in ``[0, 1]`` (0.1 in SPOS/DetNAS). The target of class ``y`` is
            ``(1 - eps) * onehot(y) + eps / num_classes``.
        dropout (float): Dropout probability before the linear layer, in
            ``[0, 1)``.
        data_preprocessor (dict, optional): mmengine data preprocessor
            config, e.g. ``dict(type='ImgDataPreprocessor', mean=[123.675,
            116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True)``.
            ``None`` uses ``dict(type='ImgDataPreprocessor')`` (stacks the
            images and casts them to float, no normalisation).
        init_cfg (dict | list, optional): mmengine init config.

    Shapes:
        ``inputs`` ``(N, 3, H, W)`` float images (after the data
        preprocessor); ``'tensor'`` mode returns ``(N, num_classes)`` logits.

    Raises:
        ValueError: ``num_classes < 1``, ``label_smoothing`` outside
            ``[0, 1]``, ``dropout`` outside ``[0, 1)``, or ``in_channels``
            not given and not readable from the backbone.
    """

    def __init__(self,
                 backbone: dict,
                 num_classes: int,
                 in_channels: Optional[int] = None,
                 label_smoothing: float = 0.1,
                 dropout: float = 0.0,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Union[None, dict, list] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='ImgDataPreprocessor')
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f'num_classes must be a positive int, got {num_classes!r}')
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(
                f'label_smoothing must be in [0, 1], got {label_smoothing}')
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f'dropout must be in [0, 1), got {dropout}')
        self.backbone = MODELS.build(backbone)
        if in_channels is None:
            out_channels = getattr(self.backbone, 'out_channels', None)
            if isinstance(out_channels, int):
                in_channels = out_channels
            elif isinstance(out_channels, Sequence) and len(out_channels):
                # out_channels lists every stage index; the classified
                # output is the one of the last (largest) out index
                out_indices = getattr(self.backbone, 'out_indices', None)
                last = max(out_indices) if out_indices else -1
                in_channels = out_channels[last]
            else:
                raise ValueError(
                    f'in_channels was not given and the backbone '
                    f'{type(self.backbone).__name__} has no usable '
                    f'out_channels attribute ({out_channels!r}); pass '
                    'in_channels=<channels of its last output>')
        self.num_classes = num_classes
        self.label_smoothing = float(label_smoothing)
        self.head = LinearClsHead(in_channels, num_classes, dropout=dropout)

    # --------------------------------------------------------------- features
    def extract_feat(self, inputs: torch.Tensor) -> torch.Tensor:
        """Run the backbone and keep its last output.

        Args:
            inputs (Tensor): ``(N, 3, H, W)`` images.

        Returns:
            Tensor: ``(N, C, h, w)`` last backbone feature map.
        """
        feats = self.backbone(inputs)
        if isinstance(feats, (tuple, list)):
            feats = feats[-1]
        return feats

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[BaseDataElement]] = None,
                mode: str = 'tensor'):
        """The single entry of mmengine models.

        Args:
            inputs (Tensor): ``(N, 3, H, W)`` float images.
            data_samples (list[BaseDataElement], optional): One per image,
                with ``gt_label`` (``LongTensor`` of shape ``(1, )`` or an
                int); required in ``'loss'`` mode.
            mode (str): ``'tensor'``, ``'loss'`` or ``'predict'``.

        Returns:
            - ``'tensor'``: ``(N, num_classes)`` logits.
            - ``'loss'``: ``dict(loss=Tensor)``, the mean label-smoothed
              cross-entropy (a scalar).
            - ``'predict'``: list of ``N`` :class:`BaseDataElement`, the
              given data samples (``gt_label`` and metainfo kept) or new ones,
              with ``pred_score`` (softmax, ``(num_classes, )``) and
              ``pred_label`` (``LongTensor`` ``(1, )``).

        Raises:
            ValueError: unknown ``mode``; missing or mismatched
                ``data_samples`` in ``'loss'`` mode.
        """
        if mode == 'tensor':
            return self.head(self.extract_feat(inputs))
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise ValueError(f'invalid mode {mode!r}; expected one of '
                         "'tensor', 'loss' or 'predict'")

    def loss(self, inputs: torch.Tensor,
             data_samples: List[BaseDataElement]) -> dict:
        """Label-smoothed cross-entropy of a batch.

        Args:
            inputs (Tensor): ``(N, 3, H, W)`` images.
            data_samples (list[BaseDataElement]): ``N`` samples with
                ``gt_label``.

        Returns:
            dict[str, Tensor]: ``dict(loss=...)``, a scalar tensor.
        """
        if data_samples is None:
            raise ValueError("mode='loss' needs data_samples with gt_label")
        labels = self._gt_labels(data_samples,
                                 inputs.shape[0]).to(inputs.device)
        logits = self.head(self.extract_feat(inputs))
        loss = F.cross_entropy(
            logits, labels, label_smoothing=self.label_smoothing)
        return dict(loss=loss)

    def predict(
        self,
        inputs: torch.Tensor,
        data_samples: Optional[List[BaseDataElement]] = None
    ) -> List[BaseDataElement]:
        """Class probabilities of a batch.

        Args:
            inputs (Tensor): ``(N, 3, H, W)`` images.
            data_samples (list[BaseDataElement], optional): ``N`` samples
                to fill in; ``None`` creates empty ones.

        Returns:
            list[BaseDataElement]: with ``pred_score`` ``(num_classes, )``
            summing to 1 and ``pred_label`` ``(1, )``.
        """
        logits = self.head(self.extract_feat(inputs))
        scores = F.softmax(logits, dim=1)
        labels = scores.argmax(dim=1, keepdim=True)
        if data_samples is None:
            data_samples = [BaseDataElement() for _ in range(len(scores))]
        elif len(data_samples) != len(scores):
            raise ValueError(f'got {len(data_samples)} data samples for '
                             f'{len(scores)} images')
        for sample, score, label in zip(data_samples, scores, labels):
            sample.pred_score = score.detach()
            sample.pred_label = label.detach()
        return list(data_samples)

    @staticmethod
    def _gt_labels(data_samples: List, num: int) -> torch.Tensor:
        """``(N, )`` LongTensor of the ground-truth labels."""
        if len(data_samples) != num:
            raise ValueError(
                f'got {len(data_samples)} data samples for {num} images')
        labels = []
        for i, sample in enumerate(data_samples):
            label = (
                sample.get('gt_label', None) if isinstance(
                    sample, (BaseDataElement, dict)) else None)
            if label is None:
                raise ValueError(f'data sample {i} has no gt_label')
            label = torch.as_tensor(label, dtype=torch.long).reshape(-1)
            if label.numel() != 1:
                raise ValueError(
                    f'data sample {i}: gt_label must hold one class index '
                    f'(single-label classification), got shape '
                    f'{tuple(label.shape)}')
            labels.append(label)
        return torch.cat(labels)
