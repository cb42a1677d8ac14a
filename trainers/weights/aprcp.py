"""Channel-pruned HRNets of APRCP HRNet (vvhj/APRCP-HRNet): ``pruneXXX.txt`` + ``XXXXXXXX.pth``.

APRCP prunes only the inner channels of the residual blocks (a Bottleneck's ``bn1``/``bn2``, a
BasicBlock's ``bn1``); block outputs, transitions and fuse layers keep their widths. Its
``PosePurnHighResolutionNet`` is the official pose HRNet built from a flat list of those widths,
consumed in construction order — ``layer1``'s four Bottlenecks (two each), then stage 2, 3, 4:
module by module, branch by branch, block by block (one each). ``normal_regular_select.py``
writes the list as the second line of ``prune.txt``::

    Configuration:
    [37, 41, 20, …]
    Number of parameters:
    17912345

and the weights under the official names (``trainers.weights.formats``'s ``hrnet`` layout), so
the widths can be read from the tensors too: :func:`pruned_widths` does, :func:`read_prune_txt`
reads the file to check them, and :func:`pruned_space` gives the posenas architecture — the same
HRNet with every inner width a decision (``stage{s}/module{m}/branch{b}/block{k}/inner{i}``) set
to APRCP's, the pruned network ``strategies.prune_rate`` also writes.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Mapping

import torch

from search_space.config import SpaceConfig
from search_space.errors import UserInputError

__all__ = ["read_prune_txt", "inner_widths", "pruned_widths", "pruned_space", "aprcp_order"]

_INNER = re.compile(r"^backbone\.stages\.(\d+)\.modules_\.(\d+)\.branches\.(\d+)\.(\d+)\."
                    r"conv([12])\.weight$")


def read_prune_txt(path: str | Path, field: str = "--structure") -> tuple[list[int], int | None]:
    """The inner widths (line 2) and the parameter count (line 4, if any) of an APRCP
    ``prune.txt``.

    Raises:
        UserInputError: naming the file, ``field`` and the line that is not what APRCP writes.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UserInputError(str(path), f"cannot read ({type(err).__name__})", field=field) from None
    if len(lines) < 2 or not lines[0].strip().lower().startswith("configuration"):
        raise UserInputError(str(path), "line 1: expected 'Configuration:' (APRCP's prune.txt)",
                             field=field)
    body = lines[1].strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise UserInputError(str(path), "line 2: expected a list [w1, w2, ...] of inner widths",
                             field=field)
    try:
        widths = [int(v) for v in body.strip("[]").split(",") if v.strip()]
    except ValueError:
        raise UserInputError(str(path), "line 2: widths must be whole numbers", field=field) from None
    if not widths or min(widths) < 1:
        raise UserInputError(str(path), "line 2: widths must be positive", field=field)
    params = None
    if len(lines) >= 4 and lines[3].strip().isdigit():
        params = int(lines[3].strip())
    return widths, params


def aprcp_order(label: str) -> tuple[int, ...]:
    """Sort key: APRCP's construction order of an inner-width label."""
    return tuple(int(v) for v in re.findall(r"\d+", label))


def inner_widths(state: Mapping[str, torch.Tensor],
                 like: Mapping[str, torch.Tensor] | None = None) -> dict[str, int]:
    """Inner-width label → width in ``state`` (posenas names) for every residual block of
    ``like`` (default: ``state``), in APRCP's order."""
    like = state if like is None else like
    widths: dict[str, int] = {}
    for key in like:
        m = _INNER.match(key)
        if not m or key not in state:
            continue
        s, mod, b, k, conv = (int(g) for g in m.groups())
        if conv == 2 and key.replace("conv2.weight", "conv3.weight") not in like:
            continue  # a BasicBlock's conv2 makes the block output: not pruned
        widths[f"stage{s + 1}/module{mod}/branch{b}/block{k}/inner{conv - 1}"] = int(
            state[key].shape[0])
    return dict(sorted(widths.items(), key=lambda kv: aprcp_order(kv[0])))


def pruned_widths(state: Mapping[str, torch.Tensor],
                  full: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """:func:`inner_widths` of ``state`` for the blocks of the full network ``full`` (its state
    dict, e.g. on the meta device); empty when every width is the full one."""
    widths = inner_widths(state, full)
    return widths if widths != inner_widths(full) else {}


def pruned_space(space: SpaceConfig, widths: Mapping[str, int],
                 full: Mapping[str, int]) -> tuple[SpaceConfig, dict[str, int]]:
    """The space whose inner-width decisions can take ``widths`` (label → width; ``full``:
    label → the unpruned width) and the choices that select them.

    Raises:
        ValueError: a width larger than the unpruned one.
    """
    ratios = {1.0}
    for label, width in widths.items():
        if width > full[label]:
            raise ValueError(f"{label}: width {width} is wider than the network's {full[label]}")
        ratios.add(width / full[label])
    backbone = replace(space.backbone, width_multipliers=tuple(sorted(ratios)),
                       search_branch_widths=False, search_block_widths=True)
    return replace(space, backbone=backbone), dict(widths)
