"""Weights of a frozen network taken from another: the supernet it was frozen from, the
full-width network that channel pruning (``prune_rate``) cut down, or — in a multi-trial search
with weight inheritance — a trained neighbour in the space (:func:`inherit_overlapping`).

Frozen state-dict keys are a subset of the supernet's; a width choice keeps the leading channels
(NNI's weight sharing) unless channel pruning recorded which channels it kept
(``arch.json`` ``channels``: label ``stage{s}/module{m}/branch{b}/block{k}/inner{i}`` → indices).
"""
from __future__ import annotations

import re
from typing import Mapping

import torch
from torch import nn

__all__ = ["inherit_weights", "inherit_overlapping", "slice_by_channels", "block_module_path",
           "INNER_WIDTH_LABEL"]

#: the label of a residual block's inner width
INNER_WIDTH_LABEL = re.compile(r"stage(\d+)/module(\d+)/branch(\d+)/block(\d+)/inner(\d)$")


def block_module_path(label: str) -> tuple[str, int]:
    """``stage3/module1/branch2/block0/inner0`` → ("backbone.stages.2.modules_.1.branches.2.0", 0)."""
    m = INNER_WIDTH_LABEL.match(label)
    if m is None:
        raise ValueError(f"not an inner-width label: {label}")
    s, mod, b, k, i = (int(g) for g in m.groups())
    return f"backbone.stages.{s - 1}.modules_.{mod}.branches.{b}.{k}", i


def slice_by_channels(state: Mapping[str, torch.Tensor],
                      channels: Mapping[str, list[int]]) -> dict[str, torch.Tensor]:
    """The full network's ``state`` reduced to the kept inner channels of each block."""
    out = dict(state)
    for label, idx in channels.items():
        block, i = block_module_path(label)
        index = torch.tensor(idx, dtype=torch.long)
        conv_in, bn, conv_out = f"{block}.conv{i + 1}", f"{block}.bn{i + 1}", f"{block}.conv{i + 2}"
        out[f"{conv_in}.weight"] = out[f"{conv_in}.weight"].index_select(0, index)
        for name in ("weight", "bias", "running_mean", "running_var"):
            out[f"{bn}.{name}"] = out[f"{bn}.{name}"].index_select(0, index)
        out[f"{conv_out}.weight"] = out[f"{conv_out}.weight"].index_select(1, index)
    return out


def inherit_weights(frozen: nn.Module, supernet_state: Mapping[str, torch.Tensor],
                    channels: Mapping[str, list[int]] | None = None) -> None:
    """Copy the supernet's (or a full-width network's) weights into ``frozen``: each frozen
    tensor is the source tensor of the same key, sliced to the leading channels (NNI's weight
    sharing for width choices), or the columns of the hidden nodes a pruned cell keeps.
    ``channels`` (inner-width label → kept channel indices, from channel pruning) first selects
    those channels instead of the leading ones (:func:`slice_by_channels`).

    Raises:
        KeyError: a frozen key the source does not have (the two come from different spaces),
            or a shape that cannot hold the frozen tensor.
    """
    if channels:
        supernet_state = slice_by_channels(supernet_state, channels)
    owners = {name: module for name, module in frozen.named_modules()}
    new_state = {}
    for key, target in frozen.state_dict().items():
        if key not in supernet_state:
            raise KeyError(f"supernet weights have no {key!r}: not the supernet of this space")
        source = supernet_state[key]
        owner_name, _, leaf = key.rpartition(".")
        owner = owners.get(owner_name)
        if hasattr(owner, "inherit"):
            source = owner.inherit(leaf, source)
        if source.dim() != target.dim() or any(s < t for s, t in zip(source.shape, target.shape)):
            raise KeyError(f"{key}: supernet shape {tuple(source.shape)} cannot hold "
                           f"{tuple(target.shape)}")
        new_state[key] = source[tuple(slice(0, t) for t in target.shape)].clone()
    frozen.load_state_dict(new_state)


def inherit_overlapping(network: nn.Module, donor_state: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """Start ``network`` from a trained neighbour's weights, as EvoPose2D's children start from
    their parent's (Zhang et al., "EvoPose2D", IEEE Access 2021, https://arxiv.org/abs/2011.08446):
    every tensor of ``network`` whose key the donor has with the same number of dimensions takes
    the donor's values over their common leading extent (the whole tensor when the shapes agree;
    the leading channels where a width choice differs, as NNI's weight sharing slices them);
    the rest of the tensor, and every tensor the donor lacks (another operation, another input),
    keeps its initial values. The two networks need not come from one space: only keys and
    shapes are compared.

    Returns:
        ``{"whole": n, "partial": n, "fresh": n}``: tensors copied whole, copied in part (the
        overlap), left initial.
    """
    counts = {"whole": 0, "partial": 0, "fresh": 0}
    new_state = {}
    for key, target in network.state_dict().items():
        source = donor_state.get(key)
        if source is None or source.dim() != target.dim():
            counts["fresh"] += 1
            continue
        if tuple(source.shape) == tuple(target.shape):
            new_state[key] = source.to(target.dtype).clone()
            counts["whole"] += 1
            continue
        merged = target.clone()
        overlap = tuple(slice(0, min(s, t)) for s, t in zip(source.shape, target.shape))
        merged[overlap] = source[overlap].to(target.dtype)
        new_state[key] = merged
        counts["partial"] += 1
    network.load_state_dict(new_state, strict=False)
    return counts
