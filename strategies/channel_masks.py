"""Width choices under a differentiable strategy: NNI's weighted channel slices, built as vectors.

NNI 3.0's ``MixedConv2d`` relaxes a channel-count choice ``{w_i: p_i}`` (``p = softmax(α)``)
into the weight ``W ⊙ M`` with ``M = Σ_i p_i · 1[channel < w_i]``, slicing the output channels
and then the input channels in turn. ``_slice_weight`` (``nni/nas/oneshot/pytorch/supermodule/
_operation_utils.py``) builds that mask at the weight's full shape: per candidate a
``zeros_like(weight)``, an index fill, a multiply and an add — 4·7 weight-sized tensors per
sliced dimension with the 7 width multipliers of ``configs/spaces/pnfs_hrnet_w32_cnf5.yaml``,
in every forward, and as many in the backward (a third of the DARTS step with width choices,
measured with ``torch.profiler``).

The mask only depends on the channel index along the sliced dimension, so
:class:`ChannelMaskedConv2d` builds it as a vector ``m = p @ 1[channel < w]`` (``(K,) @ (K,
C)``) and broadcasts it over the weight: the same relaxation, the same value up to float
rounding (the ``p_i`` summed in another order), the same gradients for α and the weights,
and the backward keeps a vector instead of a weight-sized mask. Everything else — sampled
(integer) widths, kernel-size choices, grouped convolutions — goes through NNI's code unchanged.

Registered as a mutation hook of every one-shot strategy (:mod:`strategies.oneshot`), ahead of
NNI's own ``MixedConv2d`` hook.
"""
from __future__ import annotations

from typing import Any

import torch
from nni.nas.oneshot.pytorch.supermodule.operation import MixedConv2d

__all__ = ["ChannelMaskedConv2d", "channel_mask", "mask_channels"]


def channel_mask(distribution: dict[int, torch.Tensor], size: int) -> torch.Tensor:
    """The relaxed channel mask ``m[c] = Σ_i p_i · 1[c < w_i]`` of a width distribution.

    Args:
        distribution: ``{width w_i: probability p_i}`` (0-d tensors), as NNI's differentiable
            policy gives a channel-count argument.
        size: C, the largest width (the weight's extent along the sliced dimension).

    Returns:
        (C,) tensor of the probabilities' dtype and device.
    """
    widths = list(distribution)
    probs = torch.stack([torch.as_tensor(p) for p in distribution.values()])  # (K,)
    channel = torch.arange(size, device=probs.device)
    below = (channel[None, :] < torch.tensor(widths, device=probs.device)[:, None])  # (K, C)
    return probs @ below.to(probs.dtype)


def mask_channels(tensor: torch.Tensor, dim: int, width: Any) -> torch.Tensor:
    """``tensor``'s leading ``width`` channels along ``dim``: a prefix slice for an integer
    width, ``tensor ⊙ m`` (``m`` of :func:`channel_mask`, broadcast along ``dim``) for a width
    distribution — what ``nni``'s ``Slicable(tensor)[..., :width]`` computes."""
    size = tensor.shape[dim]
    if isinstance(width, dict):
        shape = [1] * tensor.dim()
        shape[dim] = size
        return tensor * channel_mask(width, size).to(tensor.dtype).view(shape)
    width = int(width)
    return tensor if width >= size else tensor.narrow(dim, 0, width)


class ChannelMaskedConv2d(MixedConv2d):
    """NNI's ``MixedConv2d`` whose weighted channel slices are :func:`mask_channels` (a vector
    mask broadcast over the weight) instead of weight-sized masks; grouped convolutions,
    kernel-size choices and sampled widths are NNI's own."""

    def _freeze_weight_impl(self, in_channels: Any, out_channels: Any, kernel_size: Any,
                            groups: Any, **kwargs: Any) -> Any:
        weighted = isinstance(in_channels, dict) or isinstance(out_channels, dict)
        if (not weighted or groups != 1 or isinstance(kernel_size, dict)
                or self._to_tuple(kernel_size) != tuple(self.kernel_size)):
            return super()._freeze_weight_impl(in_channels, out_channels, kernel_size, groups,
                                               **kwargs)
        # the order of NNI's slices: output channels, then input channels
        weight = mask_channels(mask_channels(self.weight, 0, out_channels), 1, in_channels)
        bias = None if self.bias is None else mask_channels(self.bias, 0, out_channels)
        return {"weight": weight, "bias": bias, "in_channels_per_group": None}
