"""Every registered model: shapes, gradients, exact parameter counts, FLOPs as published."""
import subprocess
import sys

import pytest
import torch

from search_space.hrnet import HRNetBackbone
from search_space.layouts import hrnet_layout
from search_space.models import build_model, model_names
from search_space.counting import param_flop_report
from tests.conftest import REPO


@pytest.mark.parametrize("name", model_names())
def test_forward_shape_and_finite(name):
    torch.manual_seed(0)
    model = build_model(name, "coco").eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 48))
    assert out.shape == (2, 17, 16, 12)
    assert torch.isfinite(out).all()


def test_tiny_backward_reaches_every_parameter():
    model = build_model("hrnet_tiny", "mpii")
    out = model(torch.randn(2, 3, 64, 64))
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


@pytest.mark.parametrize("name, params", [("hrnet_w32", 28_536_113), ("hrnet_w48", 63_595_745),
                                          ("litehrnet_18", 1_130_769), ("litehrnet_30", 1_763_717)])
def test_exact_param_counts_of_the_official_constructor(name, params):
    assert sum(p.numel() for p in build_model(name, "coco").parameters()) == params


@pytest.mark.parametrize("name, size, gflops", [("hrnet_w32", (256, 192), 7.1),
                                                ("hrnet_w48", (384, 288), 32.9)])
def test_gflops_match_published(name, size, gflops):
    report = param_flop_report(build_model(name, "coco"), size)
    assert round(report["gflops"], 1) == gflops
    assert sum(c["params"] for c in report["components"]) == report["params"]
    assert sum(c["macs"] for c in report["components"]) == report["macs"]
    assert [c["name"] for c in report["components"]] == ["stem", "stage1", "stage2", "stage3",
                                                          "stage4", "head"]


def test_truncated_backbone_gives_a_pyramid():
    backbone = HRNetBackbone(hrnet_layout(32).truncated(3))
    feats = backbone(torch.randn(1, 3, 256, 192))
    # stages 1-3 plus the transition opening the 1/32 branch: PNFS's 8.1M "stem~stage3"
    assert [f.shape[1] for f in feats] == [32, 64, 128, 256]
    assert [tuple(f.shape[2:]) for f in feats] == [(64, 48), (32, 24), (16, 12), (8, 6)]
    assert round(sum(p.numel() for p in backbone.parameters()) / 1e6, 1) == 8.1


def test_inner_widths_change_only_their_block():
    from dataclasses import replace

    base = hrnet_layout(32)
    pruned = replace(base, inner_widths={**base.inner_widths, "stage3/module1/branch2/block0": (40,)})
    m0, m1 = HRNetBackbone(base), HRNetBackbone(pruned)
    b0 = m0.stages[2].modules_[1].branches[2][0]
    b1 = m1.stages[2].modules_[1].branches[2][0]
    assert b0.conv1.out_channels == 128 and b1.conv1.out_channels == 40
    assert b1.conv2.in_channels == 40 and b1.conv2.out_channels == 128
    diff = sum(p.numel() for p in m0.parameters()) - sum(p.numel() for p in m1.parameters())
    # conv1 and conv2 lose (128 - 40)·128·9 weights each, bn1 loses 2·88
    assert diff == 2 * 88 * 128 * 9 + 2 * 88
    out = m1(torch.randn(1, 3, 64, 48))
    assert out[0].shape == (1, 32, 16, 12)


def test_unknown_model_lists_known_ones():
    with pytest.raises(KeyError, match="hrnet_w32"):
        build_model("hrnet_w33", "coco")


@pytest.mark.parametrize("name, published_m", [("litehrnet_18", 1.1), ("litehrnet_30", 1.8)])
def test_lite_hrnet_params_as_published(name, published_m):
    """HRNet/Lite-HRNet's README (configs/top_down/lite_hrnet/README.md) gives #Params to 0.1M."""
    params = sum(p.numel() for p in build_model(name, "coco").parameters())
    assert round(params / 1e6, 1) == published_m


@pytest.mark.parametrize("name, published_m", [
    pytest.param("naive_litehrnet_18", 0.7, marks=pytest.mark.xfail(
        strict=True, reason="ours has 0.76M, which rounds to 0.8M, not the paper's 0.7M: no "
        "checkpoint or exact structure of the naive variant was released")),
    ("wider_naive_litehrnet_18", 1.3)])
def test_naive_lite_hrnet_sizes_as_published(name, published_m):
    """The paper gives 0.7M and 1.3M (to 0.1M) and released neither checkpoint nor exact count
    for the naive variants: the wider one matches to the published rounding, the naive one does
    not (an honest miss, kept visible as a strict xfail)."""
    params = sum(p.numel() for p in build_model(name, "coco").parameters())
    assert round(params / 1e6, 1) == published_m


@pytest.mark.parametrize("name, published_m", [("naive_litehrnet_18", 0.7), ("wider_naive_litehrnet_18", 1.3)])
def test_naive_lite_hrnet_sizes_within_a_tenth_of_a_million(name, published_m):
    """What holds for both: within 0.1M of the published figure."""
    params = sum(p.numel() for p in build_model(name, "coco").parameters())
    assert abs(params / 1e6 - published_m) < 0.1


def test_lite_fuse_keeps_the_official_double_count():
    """Output 0 = ReLU(2·x0 + up(x1)); output 1 = ReLU(2·down(fused0) + x1), as released."""
    from search_space.litehrnet import LiteFuse

    torch.manual_seed(0)
    fuse = LiteFuse([4, 8]).eval()
    x0, x1 = torch.randn(1, 4, 8, 8), torch.randn(1, 8, 4, 4)
    out0, out1 = fuse([x0, x1])
    up = torch.nn.functional.interpolate(fuse.paths[0][1](x1), size=(8, 8), mode="nearest")
    fused0 = 2 * x0 + up
    torch.testing.assert_close(out0, torch.relu(fused0))
    torch.testing.assert_close(out1, torch.relu(2 * fuse.paths[1][0](fused0) + x1))


def test_a_frozen_network_trains_without_importing_nni():
    # NNI (and, through its evaluators, Lightning's torch._dynamo-heavy fabric: ~220 MB at
    # import) is for supernets only: building, training-module setup and the trainer of a
    # frozen network must not load it; building a supernet does
    code = ("import sys\n"
            "from search_space.models import build_model\n"
            "import trainers.engine.fit, trainers.train_derived\n"
            "build_model('hrnet_tiny', 'coco')\n"
            "assert 'nni' not in sys.modules, 'nni imported'\n"
            "from search_space.supernet import build\n"
            "assert 'nni' in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
