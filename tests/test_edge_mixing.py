"""PoseNFS's edge mixing in the gradient strategies' supernet (search.edge_mixing;
strategies.edge_mixing)."""
from __future__ import annotations

import copy

import pytest
import torch
from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedLayer
from nni.nas.strategy import DARTS

from search_space.fabric import Cell
from search_space.supernet import build
from strategies.edge_mixing import set_edge_mixing
from tests.conftest import tiny_space
from tests.test_strategies import search
from trainers.network.arch_file import load_arch


class _SumOfOperations(torch.nn.Module):
    """An edge as PoseNFS mixes it at uniform α, by hand: n · Σ (1/n)·o(x) = Σ_o o(x)."""

    def __init__(self, edge: DifferentiableMixedLayer) -> None:
        super().__init__()
        self.edge = edge

    def forward(self, x):
        return sum(self.edge[name](x) for name in self.edge.names)


def test_pnfs_mixing_sums_the_operations_where_darts_averages_them():
    """With α uniform (0), the supernet under ``pnfs`` mixing equals a copy whose mixed edges
    sum their operations by hand; back on ``darts`` it is the convex mean again, unchanged."""
    torch.manual_seed(0)
    sup = DARTS().mutate_model(build(tiny_space(widths=()), "coco")).eval()
    for layer in (m for m in sup.modules() if isinstance(m, DifferentiableMixedLayer)):
        layer._arch_alpha.data.zero_()
    by_hand = copy.deepcopy(sup)
    replaced = 0
    for cell in (m for m in by_hand.modules() if isinstance(m, Cell)):
        for key in cell.mixed_edges:
            cell.edges[key] = _SumOfOperations(cell.edges[key])
            replaced += 1
    assert replaced > 0
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        mean = sup(x)
        assert set_edge_mixing(sup, "pnfs") > 0
        summed = sup(x)
        expected = by_hand(x)
    scale = expected.abs().max()
    assert torch.allclose(summed, expected, rtol=1e-4, atol=1e-4 * scale)
    assert (summed - mean).abs().max() > 0.1 * scale  # the scaling changes the output
    set_edge_mixing(sup, "darts")
    with torch.no_grad():
        assert torch.equal(sup(x), mean)
    with pytest.raises(ValueError):
        set_edge_mixing(sup, "sum")


@pytest.mark.e2e
def test_the_search_applies_the_mixing_it_records(coco_root, tmp_path):
    """The same seeded DARTS search with ``pnfs`` mixing trains another supernet than with
    ``darts`` mixing (its first epoch's training loss differs), and arch.json records it."""
    import json

    losses = {}
    for mixing in ("darts", "pnfs"):
        out = tmp_path / mixing
        r = search(coco_root, "darts", out, "search.edge_mixing", mixing)
        assert r.returncode == 0, r.stderr[-3000:]
        assert load_arch(out / "arch.json").config.search.edge_mixing == mixing
        first = json.loads((out / "history.jsonl").read_text().splitlines()[0])
        losses[mixing] = first["train_loss"]
    assert losses["pnfs"] != pytest.approx(losses["darts"], rel=1e-3)
