"""Released checkpoints: official HRNet (pose) and ImageNet HRNet key layouts, built from the
official structure (tests/official_layouts.py), saved as their tools save them, converted, and
compared output for output with our networks."""
import json

import pytest
import torch

from search_space.models import build_model
from tests.conftest import REPO, run_module
from tests.official_layouts import OfficialHRNet, OfficialLiteHRNet, randomize
from trainers.network.build import build_network, load_backbone, spec_from_model
from trainers.weights.checkpoint import read_weights
from search_space.errors import UserInputError
from trainers.weights.formats import convert_state, unwrap

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
    """The official file, converted by trainers.weights.convert and evaluated by test.py, and the same
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

    from search_space.supernet import build
    from tests.conftest import tiny_space
    from trainers.network.build import init_backbone

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


# ----------------------------------------------------------------------------------------------
# PoseNFS (yangsenius/PoseNFS)


def _pnfs_reference(seed=0, **kwargs):
    """A PoseNFS network with random weights (small enough that the squashed vector heads stay
    away from 0 and 1) and α/β far from uniform, so a part, slot or operation read into the
    wrong place changes the heatmaps."""
    from tests.official_layouts import OfficialPNFS, squash_to_half

    ref = randomize(OfficialPNFS(**kwargs), seed=seed, scale=0.1)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if name.endswith(("alphas", "betas")):
                p.copy_(torch.randn(p.shape, generator=gen) * 1.5)
    squash_to_half(ref, X)
    return ref


def _ours_in_pnfs_order(ours, dataset):
    """Our heatmaps with the channels in PoseNFS's joint order (its own for MPII)."""
    from search_space.joints import keypoint_spec
    from tests.official_layouts import PNFS_PARTS

    names = keypoint_spec(dataset).names
    order = PNFS_PARTS[1][0][1][dataset]
    return ours[:, [names.index(n) for n in order]]


def test_pnfs_hrnet_w32_cnf5_checkpoint_gives_posenfs_heatmaps(tmp_path):
    """PoseNFS's HRNet-W32-stem~stage3 + CNF×5 (COCO), saved as its train.py saves it (weights
    under "model"), read on the fly as pnfs_hrnet_w32_cnf5: the same heatmaps within 1e-5.
    Parameter counts from the issue's comparison: PoseNFS 14,873,590 = ours 14,652,680 + the
    per-part stems it never runs + 6,080 route biases (folded into BN means) + 110 α/β."""
    ref = _pnfs_reference()
    state = ref.state_dict()
    assert sum(p.numel() for p in ref.parameters()) == 14_873_590
    torch.save({"epoch": 200, "model": state, "perf": 0.7}, tmp_path / "hrnet_cnf5_ckpt.tar")
    conversion = read_weights(tmp_path / "hrnet_cnf5_ckpt.tar", field="--weights",
                              target=(build_model("pnfs_hrnet_w32_cnf5", "coco").space_config, "coco"))
    assert conversion.format == "pnfs"
    assert all(".stem." in k for k in conversion.skipped)
    net = build_network(spec_from_model("pnfs_hrnet_w32_cnf5", "coco"),
                        tmp_path / "hrnet_cnf5_ckpt.tar", field="--weights").eval()
    ours_params = sum(p.numel() for p in net.parameters())
    stems = sum(state[k].numel() for k in conversion.skipped if not k.endswith(
        ("running_mean", "running_var", "num_batches_tracked")))
    route_biases = sum(v.numel() for k, v in state.items()
                       if ".propress_list." in k and k.endswith(("operation.0.bias", "conv_1x1.bias")))
    assert (ours_params, route_biases) == (14_652_680, 6_080)
    assert ours_params + stems + route_biases + 110 == 14_873_590
    with torch.no_grad():
        theirs, ours = ref(X), net(X)
    diff = _max_diff(ours, theirs)
    print(f"pnfs_hrnet_w32_cnf5: max |posenas - PoseNFS| = {diff:.1e}, heatmap mean {float(theirs.mean()):.2f}")
    assert 0.05 < float(theirs.mean()) < 0.95 and diff <= 1e-5
    # α/β change the output: the same weights with uniform mixing are far from it
    with torch.no_grad():
        for m in net.modules():
            if hasattr(m, "input_weights"):
                m.input_weights.fill_(1 / 3)
        assert _max_diff(net(X), theirs) > 1e-2


@pytest.mark.parametrize("dataset, parts, hidden, depth", [("mpii", 1, 2, 5), ("mpii", 3, 1, 6),
                                                           ("coco", 3, 2, 6)])
def test_pnfs_parts_joints_and_cells_map_by_name(dataset, parts, hidden, depth):
    """PoseNFS lists parts in another order and numbers MPII's joints its own way; with two
    hidden nodes (three edges), pooling candidates, adapters (factor 8 ≠ backbone widths) and a
    fabric that reads 3 of the backbone's 4 levels (depth 5), each case matches PoseNFS."""
    from search_space.config import BackboneSpaceConfig, CellConfig, SpaceConfig
    from search_space.pose_space import freeze

    ops = ("Zero", "skip_connect", "Sep_Conv_3x3", "Atr_Conv_3x3", "max_pool_3x3", "avg_pool_3x3")
    ref = _pnfs_reference(seed=parts, dataset=dataset, parts_num=parts, names=ops, depth=depth,
                          factor=8, hidden=hidden, vector_dim=4, **TINY)
    space = SpaceConfig(backbone=BackboneSpaceConfig(name="hrnet_tiny", stages=3), parts_num=parts,
                        cell_config=CellConfig(search_alpha=False, search_beta=False, vector_dim=4,
                                               operators=ops, depth=depth, cut_layers_num=3,
                                               hidden_states_num=hidden, factor=8))
    conversion = convert_state(ref.state_dict(), target=(space, dataset))
    net = freeze(space, dataset, {}).eval()
    net.load_state_dict(conversion.state)  # strict
    with torch.no_grad():
        theirs, ours = ref(X), _ours_in_pnfs_order(net(X), dataset)
    diff = _max_diff(ours, theirs)
    print(f"{dataset} {parts} parts, hidden {hidden}, depth {depth}: max diff {diff:.1e}")
    assert 0.05 < float(theirs.mean()) < 0.95 and diff <= 1e-5
    if depth == 5:  # the 1/32 level: opened by transition3, read by no cell
        assert any(k.startswith("backbone.transition3.") for k in conversion.skipped)
        assert any(k.startswith("reduce.") and ".3." in k for k in conversion.skipped)


def test_pnfs_checkpoint_errors_name_the_misfit(tmp_path):
    from search_space.config import BackboneSpaceConfig, CellConfig, SpaceConfig

    ref = _pnfs_reference(parts_num=3, names=("Zero", "skip_connect", "Sep_Conv_3x3"), depth=5,
                          factor=4, vector_dim=4, **TINY)
    torch.save({"model": ref.state_dict()}, tmp_path / "cnf3_ckpt.tar")
    with pytest.raises(UserInputError, match="the checkpoint has 3 parts, the model 5"):
        build_network(spec_from_model("pnfs_hrnet_w32_cnf5", "coco"), tmp_path / "cnf3_ckpt.tar")
    space = SpaceConfig(backbone=BackboneSpaceConfig(name="hrnet_tiny", stages=3), parts_num=3,
                        cell_config=CellConfig(vector_dim=4, depth=5, factor=4,
                                               operators=("Zero", "skip_connect", "max_pool_3x3")))
    with pytest.raises(ValueError, match=r"candidate 2 is max_pool_3x3 in the model"):
        convert_state(ref.state_dict(), target=(space, "coco"))
    with pytest.raises(UserInputError, match="fabric heads"):
        build_network(spec_from_model("hrnet_tiny", "coco"), tmp_path / "cnf3_ckpt.tar")
    # without a target (a backbone initialisation) only the backbone is read
    conversion = read_weights(tmp_path / "cnf3_ckpt.tar", field="model.pretrained")
    assert conversion.backbone_only and all(k.startswith("backbone.") for k in conversion.state)


def test_imagenet_hrnet_w32_initialises_the_pnfs_backbone_with_its_1_32_branch():
    """PNFS CNF×5 reads four levels: HRNet-W32 stem~stage3 plus the transition opening the 1/32
    branch, which an ImageNet HRNet file holds as transition3 (it was reported missing)."""
    official = randomize(OfficialHRNet(imagenet=True))
    state = convert_state(official.state_dict()).state
    net = build_model("pnfs_hrnet_w32_cnf5", "coco")
    report = load_backbone(net, state, "hrnet_w32-36af842e.pth")
    own = [k for k in net.state_dict() if k.startswith("backbone.")]
    assert report.total(0) == len(own) and report.total(2) == 0
    assert report.rows["next_transition"][0] == 6  # conv + 5 BN tensors
    loaded = net.state_dict()
    assert torch.equal(loaded["backbone.next_transition.layers.3.0.0.weight"],
                       official.state_dict()["transition3.3.0.0.weight"])


@pytest.mark.e2e
def test_pnfs_convert_then_test_py_prune_and_train(coco_root, tmp_path):
    """trainers.weights.convert --from pnfs writes a checkpoint test.py takes (the same results as the
    PoseNFS file on the fly) and an arch.json whose choices are the argmax of α/β, which
    strategies.prune derives and train_derived.py trains."""
    ref = _pnfs_reference(parts_num=3, names=("Zero", "skip_connect", "Sep_Conv_3x3"), depth=5,
                          factor=4, vector_dim=4, **TINY)
    state = ref.state_dict()
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "cnf3_ckpt.tar")
    cfg = str(REPO / "configs" / "models" / "hrnet_tiny_synthetic.yaml")
    r = run_module("-m", "trainers.convert", "--from", "pnfs", "--model", "pnfs_hrnet_tiny_cnf3",
                   "--cfg", cfg, str(tmp_path / "cnf3_ckpt.tar"), str(tmp_path / "cnf3.ckpt"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "PoseNFS" in r.stdout and "missing 0" in r.stdout
    arch = json.loads((tmp_path / "cnf3.arch.json").read_text())
    # the argmax of PoseNFS's α/β, by our part order (head, upper limbs, lower limbs)
    ops = ("Zero", "skip_connect", "Sep_Conv_3x3")
    for q, pnfs_part in enumerate(["head_part", "upper_limb_part", "lower_limb_part"]):
        assert arch["choices"][f"part{q}/fabric/cell/edge0_op"] == ops[int(state[f"{pnfs_part}.alphas"][0].argmax())]
        betas = state[f"{pnfs_part}.betas"]
        assert [arch["choices"][f"part{q}/fabric/{c}/input"][0] for c in ("l3s0", "l3s1", "l4s0")] == \
            betas.argmax(1).tolist()
    common = ["--cfg", cfg, "--no-flip_test", "--json", "model.name", "pnfs_hrnet_tiny_cnf3",
              "dataset.root", str(coco_root), "model.input_size", "64x48", "train.num_workers", "0"]
    a = run_module("trainers/test.py", "--weights", str(tmp_path / "cnf3.ckpt"), "--out", str(tmp_path / "a"), *common)
    b = run_module("trainers/test.py", "--weights", str(tmp_path / "cnf3_ckpt.tar"), "--out", str(tmp_path / "b"), *common)
    assert a.returncode == 0 and b.returncode == 0, (a.stderr[-2000:], b.stderr[-2000:])
    assert "converted on the fly" in b.stdout
    ra = json.loads((tmp_path / "a" / "keypoints_val2017_results.json").read_text())
    rb = json.loads((tmp_path / "b" / "keypoints_val2017_results.json").read_text())
    assert ra == rb and len(ra) > 0
    r = run_module("-m", "strategies.prune", "--arch", str(tmp_path / "cnf3.arch.json"),
                   "--out", str(tmp_path / "derived.json"))
    assert r.returncode == 0, r.stderr[-3000:]
    r = run_module("trainers/train_derived.py", "--cfg", cfg, "--arch", str(tmp_path / "derived.json"),
                   "--out", str(tmp_path / "train"), "--no-progress", "dataset.root", str(coco_root),
                   "model.input_size", "64x48", "train.num_workers", "0", "train.epochs", "1",
                   "test.flip_test", "false")
    assert r.returncode == 0, r.stderr[-3000:]
