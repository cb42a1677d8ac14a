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

Under DARTS's softmax the convolution also skips NNI's per-call evaluation of the width
distributions, and :class:`MaxWidthBatchNorm2d` the one NNI's batch norm builds and drops.

Both are mutation hooks of every one-shot strategy (:data:`WIDTH_HOOKS`, registered by
:mod:`strategies.oneshot` ahead of NNI's own). The PNFS HRNet-W32 DARTS step with width choices
went from 3.10× to 1.65× the all-operations training step at 128×96 (2.15× to 1.83× at 256×192;
README, Performance).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from nni.mutable import Categorical
from nni.nas.oneshot.pytorch.supermodule.differentiable import MixedOpDifferentiablePolicy
from nni.nas.oneshot.pytorch.supermodule.operation import MixedBatchNorm2d, MixedConv2d
from torch import nn

__all__ = ["ChannelMaskedConv2d", "MaxWidthBatchNorm2d", "width_indicator", "channel_mask",
           "mask_channels", "WIDTH_HOOKS"]


def width_indicator(widths: list[int], size: int, device: torch.device | str | None = None,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(K, C) ``1[c < w_k]``: which of the C channels each of the K candidate widths keeps."""
    channel = torch.arange(size, device=device)
    return (channel[None, :] < torch.tensor(widths, device=device)[:, None]).to(dtype)


def channel_mask(distribution: dict[int, torch.Tensor], size: int) -> torch.Tensor:
    """The relaxed channel mask ``m[c] = Σ_i p_i · 1[c < w_i]`` of a width distribution.

    Args:
        distribution: ``{width w_i: probability p_i}`` (0-d tensors), as NNI's differentiable
            policy gives a channel-count argument.
        size: C, the largest width (the weight's extent along the sliced dimension).

    Returns:
        (C,) tensor of the probabilities' dtype and device.
    """
    probs = torch.stack([torch.as_tensor(p) for p in distribution.values()])  # (K,)
    return probs @ width_indicator(list(distribution), size, probs.device, probs.dtype)


def _scale_channels(tensor: torch.Tensor, dim: int, mask: torch.Tensor) -> torch.Tensor:
    """``tensor ⊙ mask``, the (C,) ``mask`` broadcast along ``dim``."""
    shape = [1] * tensor.dim()
    shape[dim] = tensor.shape[dim]
    return tensor * mask.to(tensor.dtype).view(shape)


def mask_channels(tensor: torch.Tensor, dim: int, width: Any) -> torch.Tensor:
    """``tensor``'s leading ``width`` channels along ``dim``: a prefix slice for an integer
    width, ``tensor ⊙ m`` (``m`` of :func:`channel_mask`, broadcast along ``dim``) for a width
    distribution — what ``nni``'s ``Slicable(tensor)[..., :width]`` computes."""
    size = tensor.shape[dim]
    if isinstance(width, dict):
        return _scale_channels(tensor, dim, channel_mask(width, size))
    width = int(width)
    return tensor if width >= size else tensor.narrow(dim, 0, width)


def _plain_softmax(op: Any) -> bool:
    """Whether ``op`` is under NNI's differentiable policy with a deterministic softmax (DARTS,
    not GumbelDARTS, whose every softmax call draws noise: its calls stay NNI's)."""
    return (isinstance(getattr(op, "sampling_policy", None), MixedOpDifferentiablePolicy)
            and type(getattr(op, "_softmax", None)) is nn.Softmax)


class ChannelMaskedConv2d(MixedConv2d):
    """NNI's ``MixedConv2d`` whose weighted channel slices are :func:`mask_channels` (a vector
    mask broadcast over the weight) instead of weight-sized masks; grouped convolutions,
    kernel-size choices and sampled widths are NNI's own.

    Under DARTS's softmax, where the widths are plain choices (``Categorical`` labels with
    their own α), the forward also skips NNI's per-call evaluation of the argument
    distributions (``traverse_all_options``: ~0.2 ms of Python per argument and call): the
    mask is ``softmax(α) @ 1[channel < w]`` with the indicator built once.
    """

    #: ``{argument: (α label, widths)}`` of the direct forward, set by :meth:`mutate` where
    #: it applies; None: NNI's forward
    _direct: dict[str, tuple[str, list[int]]] | None = None

    @classmethod
    def mutate(cls, module: Any, name: str, memo: dict, mutate_kwargs: dict) -> Any:
        """NNI's hook (which sets the sampling policy), then whether the direct forward
        applies: decided once here, not in every forward."""
        op = super().mutate(module, name, memo, mutate_kwargs)
        if isinstance(op, cls):
            op._direct, op._indicators = op._direct_masks(), {}
        return op

    def _direct_masks(self) -> dict[str, tuple[str, list[int]]] | None:
        """``{argument: (α label, widths)}`` when the fast forward applies, else None."""
        if not _plain_softmax(self) or self.groups != 1 or self.padding_mode != "zeros":
            return None
        direct = {}
        for name, value in self.mutable_arguments.items():
            if (name not in ("in_channels", "out_channels") or not isinstance(value, Categorical)
                    or value.label not in self._arch_alpha):
                return None
            direct[name] = (value.label, [int(w) for w in value.values])
        return direct

    def _mask(self, label: str, widths: list[int], size: int) -> torch.Tensor:
        """(C,) ``softmax(α_label) @ 1[channel < w]``: the mask of :func:`channel_mask`."""
        alpha = self._arch_alpha[label]
        key = (label, alpha.device, alpha.dtype)
        below = self._indicators.get(key)
        if below is None:
            below = self._indicators[key] = width_indicator(widths, size, alpha.device,
                                                            alpha.dtype)
        return self._softmax(alpha) @ below

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self._direct is None:
            return super().forward(inputs)
        weight, bias = self.weight, self.bias
        # the order of NNI's slices: output channels, then input channels
        for dim, name in ((0, "out_channels"), (1, "in_channels")):
            if name in self._direct:
                m = self._mask(*self._direct[name], weight.shape[dim])
                weight = _scale_channels(weight, dim, m)
                if dim == 0 and bias is not None:
                    bias = _scale_channels(bias, 0, m)
        return F.conv2d(inputs, weight, bias, self.stride, self.padding, self.dilation)

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


class MaxWidthBatchNorm2d(MixedBatchNorm2d):
    """NNI's ``MixedBatchNorm2d``: under a differentiable policy it normalises at the largest
    width, whatever the distribution (``freeze_weight`` drops it); under DARTS's softmax this
    skips building that distribution in every forward. Sampled widths are NNI's own."""

    #: whether the direct forward applies (set by :meth:`mutate`); False: NNI's forward
    _direct = False

    @classmethod
    def mutate(cls, module: Any, name: str, memo: dict, mutate_kwargs: dict) -> Any:
        """NNI's hook, then whether the direct forward applies (decided once)."""
        op = super().mutate(module, name, memo, mutate_kwargs)
        if isinstance(op, cls):
            op._direct = _plain_softmax(op) and set(op.mutable_arguments) == {"num_features"}
        return op

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if not self._direct:
            return super().forward(inputs)
        eps, momentum = self.init_arguments["eps"], self.init_arguments["momentum"]
        track = not self.training or self.track_running_stats
        return F.batch_norm(inputs, self.running_mean if track else None,
                            self.running_var if track else None, self.weight, self.bias,
                            self.training or (self.running_mean is None
                                              and self.running_var is None), momentum, eps)


#: the mutation hooks, ahead of NNI's: every one-shot strategy builds its width choices so
WIDTH_HOOKS = [ChannelMaskedConv2d.mutate, MaxWidthBatchNorm2d.mutate]
