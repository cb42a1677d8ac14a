import pytest
import torch

from search_space.models import build_model
from trainers.deploy.onnx_graph import check_onnx, export_onnx


@pytest.mark.parametrize("name", ["hrnet_tiny", pytest.param("litehrnet_18", marks=pytest.mark.e2e)])
def test_onnx_matches_pytorch(name, tmp_path):
    torch.manual_seed(0)
    model = build_model(name, "coco").eval()
    for m in model.modules():  # weights large enough that a wrong graph shows
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, std=0.2)
    path = tmp_path / f"{name}.onnx"
    export_onnx(model, path, (64, 48))
    with torch.no_grad():
        scale = model(torch.randn(2, 3, 64, 48)).abs().max().item()
    assert scale > 1e-3
    assert check_onnx(model, path, (64, 48), batch=3) < 1e-4 * max(1.0, scale)
