"""DARTS-'s auxiliary skip connection (search.collapse.aux_skip; strategies.aux_skip)."""
from __future__ import annotations

import copy
import csv
import math

import pytest
import torch
from nni.nas.strategy import DARTS

from search_space.fabric import Cell
from search_space.supernet import build
from strategies.aux_skip import aux_skip_weight, set_aux_skip
from tests.conftest import tiny_space
from tests.test_strategies import search


def test_aux_skip_weight_decays_linearly_to_zero():
    # β₀ (1 − e/E), DARTS- §3.2: over 4 epochs 1, 3/4, 1/2, 1/4; off when β₀ = 0
    assert [aux_skip_weight(1.0, e, 4) for e in range(4)] == [1.0, 0.75, 0.5, 0.25]
    assert [aux_skip_weight(2.0, e, 2) for e in range(2)] == [2.0, 1.0]
    assert aux_skip_weight(0.0, 0, 3) == 0.0 and aux_skip_weight(1.0, 5, 4) == 0.0


class _PlusSkip(torch.nn.Module):
    """An edge written as DARTS- eq. 2 by hand: β·x + the mixed operation's output."""

    def __init__(self, edge: torch.nn.Module, beta: float) -> None:
        super().__init__()
        self.edge, self.beta = edge, beta

    def forward(self, x):
        return self.beta * x + self.edge(x)


def test_the_supernet_adds_beta_times_the_edge_input_to_every_mixed_edge():
    """The supernet with β = 0.7 set on its cells equals a copy whose mixed edges are wrapped
    as β·x + ō(x) by hand (and β = 0 leaves it as it was); the frozen network has no cell that
    searches, so it never takes β."""
    torch.manual_seed(0)
    sup = DARTS().mutate_model(build(tiny_space(widths=()), "coco")).eval()
    by_hand = copy.deepcopy(sup)
    for cell in (m for m in by_hand.modules() if isinstance(m, Cell)):
        for key in list(cell.edges):
            cell.edges[key] = _PlusSkip(cell.edges[key], 0.7)
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        plain = sup(x)
        assert set_aux_skip(sup, 0.7) > 0
        skipped = sup(x)
        expected = by_hand(x)
    scale = plain.abs().max()  # heatmaps of an untrained head: ~1e-6
    assert torch.allclose(skipped, expected, rtol=1e-4, atol=1e-4 * scale)
    assert (skipped - plain).abs().max() > 0.1 * scale  # the skip changes the output
    set_aux_skip(sup, 0.0)
    with torch.no_grad():
        assert torch.equal(sup(x), plain)


@pytest.mark.e2e
def test_darts_with_aux_skip_logs_the_decaying_beta(coco_root, tmp_path):
    out = tmp_path / "minus"
    r = search(coco_root, "darts", out, "search.epochs", "2", "search.collapse.aux_skip", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    (metrics,) = (out / "logs").rglob("metrics.csv")
    values = [float(row["search/aux_skip"]) for row in csv.DictReader(metrics.open())
              if row.get("search/aux_skip")]
    assert values == [1.0, 0.5]
    assert not math.isnan(float(next(iter(values))))
