"""DARTS-'s auxiliary skip connection, a remedy for DARTS's collapse onto skip connections.

Chu et al., "DARTS-: Robustly Stepping out of Performance Collapse Without Indicators", ICLR
2021 (https://arxiv.org/abs/2009.01027), eq. 2: every mixed edge of the supernet gets an extra
identity path with a coefficient β that is not searched,

    ō(x) = β · x + Σ_k softmax(α)_k · o_k(x),

and β decays linearly to 0 over the search, so the supernet ends as plain DARTS's. The skip
path carries the residual gradient that otherwise makes the parameter-free ``skip_connect``
candidate win its α unfairly (the paper's diagnosis of the collapse); with it there, α has to
judge the operations on what they add. The frozen network never has it.

Set by ``search.collapse.aux_skip`` (β₀; 0: off) for the gradient strategies (``darts``,
``darts2``, ``gumbel``, ``sync``): β = β₀ · (1 − e / E) at epoch e of E (the paper's linear
schedule). The cells add it (:attr:`search_space.fabric.Cell.aux_skip`).
"""
from __future__ import annotations

from torch import nn

from search_space.fabric import Cell

__all__ = ["aux_skip_weight", "set_aux_skip"]


def aux_skip_weight(initial: float, epoch: int, epochs: int) -> float:
    """β at ``epoch`` (0-based) of ``epochs``: ``initial`` · (1 − epoch / epochs)."""
    if initial == 0 or epochs <= 0:
        return 0.0
    return initial * max(0.0, 1.0 - epoch / epochs)


def set_aux_skip(model: nn.Module, weight: float) -> int:
    """Set β on every cell of ``model`` with mixed edges; returns how many cells took it."""
    cells = [m for m in model.modules() if isinstance(m, Cell) and m.mixed_edges]
    for cell in cells:
        cell.aux_skip = float(weight)
    return len(cells)
