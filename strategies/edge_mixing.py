"""PoseNFS's edge mixing for the gradient strategies' supernet (``search.edge_mixing pnfs``).

DARTS (Liu et al., ICLR 2019, https://arxiv.org/abs/1806.09055, eq. 2) mixes an edge's n
candidate operations as a convex combination, ō(x) = Σ_o softmax(α)_o · o(x): at the start,
with α uniform, each operation enters at weight 1/n. PoseNFS (Yang et al., "Pose Neural Fabrics
Search", https://arxiv.org/abs/1909.07068; yangsenius/PoseNFS) mixes it as

    ō(x) = n · Σ_o softmax(α)_o · o(x),

so each operation enters at weight 1 while α is uniform — the weight the fixed-mixture
("None") networks keep (:class:`search_space.fabric.UniformOperations`) and the weight the
derived network gives its one chosen operation. With weight inheritance (Prune's
``derived.pth``, ``make demo``) the derived network then starts from operations trained at the
scale they keep, not n times larger. α's softmax, the argmax Prune takes and the expected
cost are unchanged; only the supernet's activations (and so its gradients) are scaled.

The cells apply it (:attr:`search_space.fabric.Cell.scale_mixed`); the frozen network never has
it.
"""
from __future__ import annotations

from torch import nn

from search_space.fabric import Cell

__all__ = ["set_edge_mixing"]


def set_edge_mixing(model: nn.Module, mixing: str) -> int:
    """Mix every mixed edge of ``model`` as ``mixing`` says (``"darts"`` or ``"pnfs"``);
    returns how many cells with mixed edges took it."""
    if mixing not in ("darts", "pnfs"):
        raise ValueError(f"edge mixing {mixing!r}: 'darts' or 'pnfs'")
    cells = [m for m in model.modules() if isinstance(m, Cell) and m.mixed_edges]
    for cell in cells:
        cell.scale_mixed = mixing == "pnfs"
    return len(cells)
