"""Freezing and ``norm_eval`` for the toolkit's backbones, as mmdet's ResNet
does them (frozen modules stay in eval mode with ``requires_grad=False``)."""
from typing import Iterable

import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


def freeze_modules(modules: Iterable[nn.Module]) -> None:
    """Put ``modules`` in eval mode and stop gradients to their parameters."""
    for m in modules:
        m.eval()
        for p in m.parameters():
            p.requires_grad = False


def train_keeping_frozen(backbone: nn.Module, mode: bool,
                         frozen: Iterable[nn.Module],
                         norm_eval: bool) -> None:
    """The body of a backbone's ``train(mode)`` after ``nn.Module.train``:
    re-freeze ``frozen``, and with ``mode and norm_eval`` keep every
    BatchNorm of ``backbone`` in eval mode (running statistics fixed)."""
    freeze_modules(frozen)
    if mode and norm_eval:
        for m in backbone.modules():
            if isinstance(m, _BatchNorm):
                m.eval()
