import logging

import pytest
import torch

from search_space.models import build_model
from trainers.deploy.onnx_graph import check_onnx, export_onnx


# Lite-HRNet at 128x96: its smallest branch (4x3) divides every other, so the TorchScript
# exporter takes it (10 s); at 64x48 (2x2 from 4x3) only torch.export's does (2 min), tested on
# a small network below
@pytest.mark.parametrize("name, size", [("hrnet_tiny", (64, 48)),
                                        pytest.param("litehrnet_18", (128, 96), marks=pytest.mark.e2e)])
def test_onnx_matches_pytorch(name, size, tmp_path, caplog):
    torch.manual_seed(0)
    model = build_model(name, "coco").eval()
    for m in model.modules():  # weights large enough that a wrong graph shows
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, std=0.2)
    path = tmp_path / f"{name}.onnx"
    with caplog.at_level(logging.INFO, logger="trainers.deploy.onnx_graph"):
        export_onnx(model, path, size)
    assert "torch.export exporter" not in caplog.text
    with torch.no_grad():
        scale = model(torch.randn(2, 3, *size)).abs().max().item()
    assert scale > 1e-3
    assert check_onnx(model, path, size, batch=3) < 1e-4 * max(1.0, scale)


class _PoolToAnotherSize(torch.nn.Module):
    """Lite-HRNet's cross-resolution pattern, small: one map pooled adaptively to the size of
    another (22x16 from 64x48, no whole kernel), which the TorchScript exporter refuses."""

    def __init__(self) -> None:
        super().__init__()
        self.fine = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.coarse = torch.nn.Conv2d(3, 4, 3, stride=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coarse = self.coarse(x)
        return torch.nn.functional.adaptive_avg_pool2d(self.fine(x), coarse.shape[-2:]) + coarse


def test_onnx_export_falls_back_to_torch_export(tmp_path, caplog):
    torch.manual_seed(0)
    model = _PoolToAnotherSize().eval()
    path = tmp_path / "pool.onnx"
    with caplog.at_level(logging.INFO, logger="trainers.deploy.onnx_graph"):
        export_onnx(model, path, (64, 48))
    assert "using the torch.export exporter" in caplog.text
    assert [p.name for p in tmp_path.iterdir()] == ["pool.onnx"]  # weights inside, no temporary
    with torch.no_grad():
        scale = model(torch.randn(2, 3, 64, 48)).abs().max().item()
    assert scale > 1e-3
    assert check_onnx(model, path, (64, 48), batch=3) < 1e-5 * max(1.0, scale)


def _peaks(points, size=(8, 6), value=0.2):
    """(1, K, H, W) heatmaps with one peak of ``value`` per joint at ``points`` [(x, y), …]."""
    import numpy as np

    heat = np.zeros((1, len(points), *size), dtype=np.float32)
    for k, (x, y) in enumerate(points):
        heat[0, k, y, x] = value
    return heat


def test_keypoint_agreement_by_hand():
    """A QAT graph's check (trainers.deploy.targets.keypoint_agreement): a keypoint agrees when
    its argmax moved ≤ 1 heatmap px on each axis and its confidence ≤ 5 % of the batch's
    highest; worked by hand on 4 joints."""
    from trainers.deploy.targets import keypoint_agreement

    expected = _peaks([(1, 1), (3, 4), (5, 7), (0, 0)])
    # joint 0 unchanged, joint 1 one px diagonally (agrees), joint 2 two px in x (does not),
    # joint 3 unchanged but its confidence 0.2 → 0.215 (0.015 > 5 % of 0.2 = 0.01: does not)
    got = _peaks([(1, 1), (4, 5), (3, 7), (0, 0)])
    got[0, 3, 0, 0] = 0.215
    r = keypoint_agreement(expected, got)
    assert r["keypoints"] == 4 and r["share"] == 0.5
    assert r["max_pixels"] == 2.0 and r["max_confidence"] == pytest.approx(0.015, abs=1e-6)
    # within the tolerances everywhere: confidence 0.2 → 0.209 (< 0.01), every peak ≤ 1 px off
    got = _peaks([(2, 2), (3, 3), (4, 6), (1, 0)], value=0.209)
    assert keypoint_agreement(expected, got)["share"] == 1.0
    # a scale error (every heatmap × 2) keeps every argmax but no confidence
    assert keypoint_agreement(expected, 2 * expected)["share"] == 0.0
