"""Weights of a frozen network taken from a bigger one: the supernet it was frozen from, or the
full-width network that channel pruning (``prune_rate``) cut down.

Frozen state-dict keys are a subset of the supernet's; a width choice keeps the leading channels
(NNI's weight sharing) unless channel pruning recorded which channels it kept
(``arch.json`` ``channels``: label ``stage{s}/module{m}/branch{b}/block{k}/inner{i}`` → indices).
"""
from __future__ import annotations

import re
from typing import Mapping

import torch
from torch import nn

__all__ = ["inherit_weights", "slice_by_channels", "block_module_path", "INNER_WIDTH_LABEL"]

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
