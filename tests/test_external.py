"""Released checkpoints: official HRNet (pose) and ImageNet HRNet key layouts, built from the
official structure (tests/official_layouts.py), saved as their tools save them, converted, and
compared output for output with our networks."""
import json

import pytest
import torch

from search_space.models import build_model
from tests.conftest import REPO, run_module
from tests.official_layouts import OfficialHRNet, OfficialLiteHRNet, randomize
from trainers.build import build_network, load_backbone, spec_from_model
from trainers.checkpoint import read_weights
from trainers.errors import UserInputError
from trainers.external import convert_state, unwrap

TINY = dict(stem=32, stage1=(1, 16), stages=((1, 1, (16, 32)), (1, 1, (16, 32, 64)),
                                             (1, 1, (16, 32, 64, 128))))
X = torch.randn(2, 3, 128, 96, generator=torch.Generator().manual_seed(0))


def _max_diff(a, b):
    return float((a - b).abs().max())


@pytest.mark.parametrize("name, kwargs", [("hrnet_tiny", TINY), ("hrnet_w32", {})])
def test_official_pose_hrnet_converts_bit_for_bit(name, kwargs):
    official = randomize(OfficialHRNet(**kwargs))
    conversion = convert_state(official.state_dict())
    assert conversion.format == "hrnet" and not conversion.skipped
    net = build_model(name, "coco").eval()
    net.load_state_dict(conversion.state)  # strict: every tensor, no other
    with torch.no_grad():
        diff = _max_diff(net(X), official(X))
    print(f"{name}: max |posenas - official| = {diff:.1e}")
    assert diff == 0.0


@pytest.mark.parametrize("name, kwargs", [
    ("litehrnet_18", {}),
    ("litehrnet_30", {"modules": (3, 8, 3)}),
    ("naive_litehrnet_18", {"naive": True, "widths": ((30, 60), (30, 60, 120), (30, 60, 120, 240))}),
    ("litehrnet_18", {"head_name": "head"}),  # mmpose 1.x
])
def test_lite_hrnet_of_mmpose_converts_bit_for_bit(tmp_path, name, kwargs):
    """Saved as the official repo / mmpose 0.x save it ({"state_dict", "meta"})."""
    official = randomize(OfficialLiteHRNet(**kwargs))
    torch.save({"state_dict": official.state_dict(), "meta": {"epoch": 210}}, tmp_path / "lite.pth")
    conversion = read_weights(tmp_path / "lite.pth", field="model.pretrained")
    assert conversion.format == "litehrnet" and not conversion.skipped
    net = build_network(spec_from_model(name, "coco"), tmp_path / "lite.pth").eval()
    with torch.no_grad():
        diff = _max_diff(net(X), official(X))
    print(f"{name} ({kwargs}): max |posenas - official| = {diff:.1e}")
    assert diff == 0.0


@pytest.mark.parametrize("head", ["keypoint_head", "head"])
def test_mmpose_hrnet_converts_bit_for_bit(head):
    official = randomize(OfficialHRNet(**TINY))
    state = {f"backbone.{k}": v for k, v in official.state_dict().items() if not k.startswith("final_layer.")}
    state.update({f"{head}.final_layer.{k}": v for k, v in official.final_layer.state_dict().items()})
    conversion = convert_state(state, "mmpose")
    assert conversion.format == "mmpose_hrnet" and convert_state(state).format == "mmpose_hrnet"
    net = build_model("hrnet_tiny", "coco").eval()
    net.load_state_dict(conversion.state)
    with torch.no_grad():
        assert _max_diff(net(X), official(X)) == 0.0


@pytest.mark.parametrize("wrap", ["plain", "module", "state_dict", "model"])
def test_containers_and_ddp_prefixes_are_unwrapped(tmp_path, wrap):
    state = randomize(OfficialHRNet(**TINY)).state_dict()
    obj = {"plain": state, "module": {f"module.{k}": v for k, v in state.items()},
           "state_dict": {"state_dict": state, "meta": {"epoch": 3}},
           "model": {"model": state, "epoch": 3}}[wrap]
    torch.save(obj, tmp_path / "w.pth")
    conversion = read_weights(tmp_path / "w.pth", field="model.pretrained")
    assert conversion.format == "hrnet" and set(conversion.state) == set(build_model("hrnet_tiny", "coco").state_dict())


def test_imagenet_hrnet_initialises_the_backbone_and_skips_the_classifier(tmp_path):
    official = randomize(OfficialHRNet(**TINY, imagenet=True))
    state = official.state_dict()
    path = tmp_path / "hrnet_tiny_imagenet.pth"
    torch.save(state, path)
    conversion = read_weights(path, field="model.pretrained")
    assert conversion.format == "hrnet_imagenet" and conversion.backbone_only
    # skipped: the classification head and stage 4's extra fuse rows (the pose network's last
    # module outputs only the highest resolution)
    head = [k for k in state if k.startswith(("incre_modules.", "downsamp_modules.", "final_layer.", "classifier."))]
    assert set(head) <= set(conversion.skipped)
    net = build_network(spec_from_model("hrnet_tiny", "coco"), path, field="model.pretrained")
    own = {k for k in net.state_dict() if k.startswith("backbone.")}
    assert own <= set(conversion.state)
    loaded = net.state_dict()
    for key in own:
        assert torch.equal(loaded[key], conversion.state[key]), key
    net.eval()
    with torch.no_grad():
        ours = net.backbone(X)
        theirs = official.features(X)
    ours = ours[0] if isinstance(ours, (list, tuple)) else ours
    assert _max_diff(ours, theirs[0]) == 0.0


def test_backbone_report_counts_and_a_wrong_network_names_the_key(tmp_path):
    state = convert_state(randomize(OfficialHRNet(**TINY)).state_dict()).state
    net = build_model("hrnet_tiny", "coco")
    report = load_backbone(net, state, "w.pth")
    n_backbone = sum(1 for k in net.state_dict() if k.startswith("backbone."))
    assert report.total(0) == n_backbone and report.total(2) == 0
    assert report.total(1) == 2  # head.weight, head.bias: in the file, not loaded as backbone
    assert "stage4" in report.table()
    with pytest.raises(UserInputError, match="missing .*backbone.stem.0.0.weight"):
        load_backbone(net, {k: v for k, v in state.items() if "stem.0.0" not in k}, "w.pth")
    w32 = convert_state(randomize(OfficialHRNet()).state_dict()).state
    with pytest.raises(UserInputError, match="weights do not fit"):
        build_network(spec_from_model("hrnet_tiny", "coco"), w32)


def test_unknown_layout_is_a_clear_error(tmp_path):
    torch.save({"foo.weight": torch.zeros(2)}, tmp_path / "x.pth")
    with pytest.raises(UserInputError, match="unrecognised checkpoint layout.*foo.weight"):
        read_weights(tmp_path / "x.pth", field="model.pretrained")
    assert unwrap({"epoch": 3}) is None


@pytest.mark.e2e
def test_convert_then_test_py_and_on_the_fly_give_the_same_ap(coco_root, tmp_path):
    """The official file, converted by trainers.convert and evaluated by test.py, and the same
    file given to test.py directly: one AP, and the converted checkpoint holds the same tensors."""
    official = randomize(OfficialHRNet(**TINY))
    torch.save({"state_dict": {f"module.{k}": v for k, v in official.state_dict().items()}},
               tmp_path / "pose_hrnet_tiny.pth")
    cfg = str(REPO / "configs" / "models" / "hrnet_tiny_synthetic.yaml")
    r = run_module("-m", "trainers.convert", "--model", "hrnet_tiny", "--cfg", cfg,
                   str(tmp_path / "pose_hrnet_tiny.pth"), str(tmp_path / "converted.ckpt"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "official pose HRNet" in r.stdout and "mapped 242, skipped 0, missing 0" in r.stdout
    common = ["--cfg", cfg, "--no-flip_test", "--json", "dataset.root", str(coco_root),
              "model.input_size", "64x48", "train.num_workers", "0"]
    a = run_module("trainers/test.py", "--weights", str(tmp_path / "converted.ckpt"),
                   "--out", str(tmp_path / "a"), *common)
    b = run_module("trainers/test.py", "--weights", str(tmp_path / "pose_hrnet_tiny.pth"),
                   "--out", str(tmp_path / "b"), *common)
    assert a.returncode == 0 and b.returncode == 0, (a.stderr[-2000:], b.stderr[-2000:])
    assert "converted on the fly" in b.stdout
    ra = json.loads((tmp_path / "a" / "keypoints_val2017_results.json").read_text())
    rb = json.loads((tmp_path / "b" / "keypoints_val2017_results.json").read_text())
    assert ra == rb and len(ra) > 0


def test_a_search_supernet_starts_from_an_imagenet_backbone(tmp_path):
    """PNFS initialises HRNet stem~stage3 from ImageNet: the one-shot supernet (width choices
    included: its tensors are at full width) takes every backbone tensor it has from the file;
    stage 4 and the classifier are skipped."""
    from nni.nas.strategy import DARTS

    from search_space.pose_space import build
    from tests.conftest import tiny_space
    from trainers.build import init_backbone

    official = randomize(OfficialHRNet(**TINY, imagenet=True))
    torch.save({"state_dict": official.state_dict()}, tmp_path / "imagenet.pth")
    expected = convert_state(official.state_dict()).state
    supernet = DARTS().mutate_model(build(tiny_space(widths=(0.5, 1.0)), "coco"))
    report = init_backbone(supernet, tmp_path / "imagenet.pth")
    own = {k: v for k, v in supernet.state_dict().items()
           if k.startswith("backbone.") and "._arch_" not in k}
    assert report.total(0) == len(own) and report.total(2) == 0 and report.sliced == 0
    assert report.rows["stage4"][0] == 0 and report.rows["stage4"][1] > 0
    assert all(torch.equal(v, expected[k]) for k, v in own.items())


@pytest.mark.e2e
def test_demo_and_export_take_a_released_file_with_model(coco_root, tmp_path):
    official = randomize(OfficialHRNet(**TINY))
    torch.save(official.state_dict(), tmp_path / "pose_hrnet_tiny.pth")
    image = next((coco_root / "images" / "val2017").glob("*.jpg"))
    r = run_module("-m", "visualize.demo", "--weights", str(tmp_path / "pose_hrnet_tiny.pth"),
                   "--image", str(image), "--out", str(tmp_path / "vis.png"))
    assert r.returncode == 2 and "--model NAME" in r.stderr  # which network is it?
    r = run_module("-m", "visualize.demo", "--weights", str(tmp_path / "pose_hrnet_tiny.pth"),
                   "--model", "hrnet_tiny", "--image", str(image), "--out", str(tmp_path / "vis.png"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "converted on the fly" in r.stdout and (tmp_path / "vis.png").is_file()
    r = run_module("-m", "trainers.export", "--weights", str(tmp_path / "pose_hrnet_tiny.pth"),
                   "--model", "hrnet_tiny", "--onnx", str(tmp_path / "m.onnx"), "--input-size", "128x96")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "max |torch - onnxruntime|" in r.stdout
