"""Channels-last (NHWC) memory format for training: oneDNN and cuDNN run most convolutions
faster on it (measured in ``benchmarks/train_step.py``), with the same values up to float
rounding.

Only 4-D tensors have a channels-last layout; 5-D weights (the fabric's 3D convolution mode)
and everything else keep theirs.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["to_channels_last", "channels_last_input"]


def to_channels_last(module: nn.Module) -> nn.Module:
    """Re-lay every 4-D parameter and buffer of ``module`` out as channels-last, in place.

    The parameter objects stay the same (their ``.data`` is replaced), so optimisers, NNI's
    mutables and anything else holding them keep working. Returns ``module``.
    """
    with torch.no_grad():
        for tensor in (*module.parameters(), *module.buffers()):
            if tensor.dim() == 4 and not tensor.is_contiguous(memory_format=torch.channels_last):
                tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
    return module


def channels_last_input(images: torch.Tensor, enabled: bool = True) -> torch.Tensor:
    """A (N, C, H, W) batch in channels-last layout, or in the standard (NCHW) one when not
    ``enabled``. No copy when it is laid out so already (normalised loader crops are NHWC)."""
    if images.dim() != 4:
        return images
    if enabled:
        return images.contiguous(memory_format=torch.channels_last)
    return images.contiguous()
