"""The ResNet and MobileNet-V2 backbone families (issue: every backbone of the seeds): networks
equal to references written from torchvision's and the official structures, parameter counts
against published figures, width choices in the space, and the released files of SimpleBaseline,
mmpose, torchvision, tonylins and PoseNFS read into them."""
from __future__ import annotations

import pytest
import torch

from search_space.config import BackboneSpaceConfig, CellConfig, SpaceConfig
from search_space.counting import param_flop_report
from search_space.inherit import inherit_weights
from search_space.models import build_model
from search_space.pose_space import freeze
from search_space.supernet import build
from tests.conftest import random_sample
from tests.official_backbones import (TORCHVISION_PARAMS, OfficialPoseResNet,
                                      PNFSMobileNetV2Backbone, PNFSResNetBackbone,
                                      TonylinsMobileNetV2, TorchvisionMobileNetV2,
                                      TorchvisionResNet, calibrated)
from trainers.network.build import build_network, spec_from_model
from trainers.weights.checkpoint import read_weights
from trainers.weights.formats import convert_state

X = torch.randn(2, 3, 64, 48, generator=torch.Generator().manual_seed(0))
#: PoseNFS's fabrics resample by factors of 2: inputs divisible by 32
X32 = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def _max_diff(a, b):
    return float((a - b).abs().max())


def _full_width(space: SpaceConfig, dataset: str = "coco") -> dict:
    """Every width choice of the space at its largest value."""
    from search_space.supernet import space_labels

    return {label: values[0] for label, values in space_labels(space, dataset).items()}


# --------------------------------------------------------------------------------------------
# the references are what they claim to be


def test_references_have_torchvisions_published_parameter_counts():
    for depth in (18, 34, 50, 101, 152):
        with torch.device("meta"):
            net = TorchvisionResNet(depth)
        assert sum(p.numel() for p in net.parameters()) == TORCHVISION_PARAMS[f"resnet{depth}"]
    for ref in (TorchvisionMobileNetV2, TonylinsMobileNetV2):
        assert sum(p.numel() for p in ref().parameters()) == TORCHVISION_PARAMS["mobilenet_v2"]


# --------------------------------------------------------------------------------------------
# networks


@pytest.mark.parametrize("depth, params", [(50, 33_999_697), (101, 52_991_825),
                                           (152, 68_635_473), (18, 15_376_721)])
def test_pose_resnet_parameters_equal_the_official_structure(depth, params):
    """SimpleBaseline's counts to the unit: ResNet-50 33,999,697 (the issue's figure from the
    official code); all equal the official-structure reference (HRNet paper: 34.0M / 53.0M /
    68.6M for 50 / 101 / 152)."""
    with torch.device("meta"):
        ours = build_model(f"pose_resnet_{depth}", "coco")
        ref = OfficialPoseResNet(depth)
    count = sum(p.numel() for p in ours.parameters())
    assert count == sum(p.numel() for p in ref.parameters()) == params


def test_pose_resnet_50_gflops_are_true_multiply_adds():
    """5.05 GFLOPs at 256×192: conv + deconv multiply-adds / 2^30 (the issue's measurement of
    the official network; HRNet's get_model_summary reports 8.9 because it counts a transposed
    convolution over its output grid, 4× its multiply-adds at stride 2)."""
    report = param_flop_report(build_model("pose_resnet_50", "coco"), (256, 192))
    assert round(report["gflops"], 2) == 5.05
    # each 4×4 transposed conv: C_in·C_out·16 per *input* pixel (8×6, 16×12, 32×24)
    deconv = 2048 * 256 * 16 * 8 * 6 + 256 * 256 * 16 * (16 * 12 + 32 * 24)
    head = next(c for c in report["components"] if c["name"] == "head")
    assert head["macs"] == deconv + 256 * 17 * 64 * 48
    # get_model_summary's count: each transposed conv over its output grid (4× at stride 2)
    assert round((report["macs"] + 3 * deconv) / 2 ** 30, 2) == 8.99


@pytest.mark.parametrize("depth", [18, 50])
@pytest.mark.parametrize("searched", [False, True])
def test_resnet_equals_torchvision_structure(depth, searched):
    """Our ResNet — the fixed one, and the searchable one at full width — computes torchvision's
    four stages from its ImageNet file (renamed, ``fc`` skipped)."""
    ref = calibrated(TorchvisionResNet(depth), X)
    conversion = convert_state(ref.state_dict())
    assert conversion.format == "resnet_imagenet" and conversion.backbone_only
    assert conversion.skipped == ["fc.weight", "fc.bias"]
    space = SpaceConfig(backbone=BackboneSpaceConfig(
        name=f"resnet_{depth}", width_multipliers=(0.5, 1.0) if searched else ()), head="plain")
    choices = _full_width(space) if searched else {}
    assert bool(choices) == searched
    net = freeze(space, "coco", choices).eval()
    net.load_state_dict({**net.state_dict(), **conversion.state})
    with torch.no_grad():
        ours, theirs = net.backbone(X), ref.stages(X)
    assert [o.shape[1] for o in ours] == [64 * 2 ** s * (4 if depth == 50 else 1) for s in range(4)]
    diffs = [_max_diff(a, b) for a, b in zip(ours, theirs)]
    print(f"resnet{depth} searched={searched}: max diffs {diffs}")
    assert max(diffs) <= 1e-5 and float(theirs[-1].abs().mean()) > 0.01


@pytest.mark.parametrize("searched", [False, True])
@pytest.mark.parametrize("source", ["torchvision", "tonylins"])
def test_mobilenet_v2_equals_torchvision_and_tonylins(searched, source):
    """The MobileNet-V2 pyramid (PoseNFS's taps after blocks 3, 6, 13, 16) from torchvision's and
    tonylins' ImageNet files: the fixed network and the searchable one at full width."""
    ref = calibrated(TorchvisionMobileNetV2() if source == "torchvision" else TonylinsMobileNetV2(), X)
    conversion = convert_state(ref.state_dict())
    assert conversion.format == ("mobilenet_v2_imagenet" if source == "torchvision"
                                 else "tonylins_mobilenet_v2") and conversion.backbone_only
    space = SpaceConfig(backbone=BackboneSpaceConfig(
        name="mobilenet_v2", width_multipliers=(0.5, 0.75, 1.0) if searched else ()), head="plain")
    net = freeze(space, "coco", _full_width(space) if searched else {}).eval()
    state = {k: v for k, v in conversion.state.items() if k in net.state_dict()}
    skipped = set(conversion.state) - set(state)
    assert {k.split(".")[2] for k in skipped} == {"17", "18"}  # 320 ch, and the 1x1 to 1280
    net.load_state_dict({**net.state_dict(), **state})
    with torch.no_grad():
        ours, theirs = net.backbone(X), ref.taps(X)
    assert [o.shape[1] for o in ours] == [24, 32, 96, 160]
    diffs = [_max_diff(a, b) for a, b in zip(ours, theirs)]
    print(f"mobilenet_v2 {source} searched={searched}: max diffs {diffs}")
    assert max(diffs) <= 1e-5 and float(theirs[-1].abs().mean()) > 0.01


@pytest.mark.parametrize("backbone, labels", [
    ("resnet_18", {"layer1/width", "layer4/inner"}),
    ("resnet_50", {"layer2/width", "layer3/inner"}),
    ("mobilenet_v2", {"stage0/width", "stage5/width", "features2/hidden", "features16/hidden"})])
@pytest.mark.parametrize("head", ["plain", "fabric"])
def test_width_choices_freeze_equal_to_the_supernet(backbone, labels, head):
    """Width choices of the new families are decisions of the space; a frozen sample with the
    supernet's weights computes what the supernet computes under it (plain deconvolution head
    or PNFS fabrics)."""
    cell = CellConfig(depth=4, cut_layers_num=2, factor=2, vector_dim=2,
                      operators=("Zero", "skip_connect", "Sep_Conv_3x3"))
    space = SpaceConfig(backbone=BackboneSpaceConfig(name=backbone, width_multipliers=(0.5, 1.0)),
                        head=head, parts_num=3, cell_config=cell)
    sup = build(space, "coco")
    assert labels <= set(sup.decisions)
    from nni.nas.oneshot.pytorch.strategy import RandomOneShot
    from nni.nas.oneshot.pytorch.supermodule.base import BaseSuperNetModule

    def narrowed(sample):
        return [k for k, d in sup.decisions.items() if d.kind == "width" and sample[k] != d.values[0]]

    sample = next(s for s in (random_sample(sup, seed) for seed in range(20)) if len(narrowed(s)) >= 3)
    sup = RandomOneShot().mutate_model(sup)
    for module in sup.modules():
        if isinstance(module, BaseSuperNetModule):
            module.resample(memo=dict(sample))
    calibrated(sup, X)
    net = freeze(space, "coco", sample).eval()
    inherit_weights(net, sup.state_dict())
    with torch.no_grad():
        ours, theirs = net(X), sup(X)
    assert float(theirs.abs().mean()) > 1e-3
    assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-5), _max_diff(ours, theirs)
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in sup.parameters())


def test_pnfs_models_of_the_new_backbones():
    """PNFS's MobileNet-V2 + CNF×3 at 384×288: the backbone is PNFS's "MobileNet-V2 (1.3M)"
    and the GFLOPs its published 4.0 (the 6.1M published parameters also count parts PoseNFS
    builds and never runs; see README)."""
    net = build_model("pnfs_mobilenet_v2_cnf3", "coco")
    report = param_flop_report(net, (384, 288))
    backbone = next(c for c in report["components"] if c["name"] == "backbone")
    assert round(backbone["params"] / 1e6, 1) == 1.3
    assert round(report["gflops"], 1) == 4.0
    assert net(torch.zeros(1, 3, 64, 48)).shape == (1, 17, 16, 12)
    with torch.device("meta"):
        r50 = build_model("pnfs_resnet_50_cnf5", "coco")
    assert sum(p.numel() for p in r50.backbone.parameters()) == TORCHVISION_PARAMS["resnet50"] - 2049 * 1000


# --------------------------------------------------------------------------------------------
# released pose files


def _pose_resnet_state(depth, wrap):
    ref = calibrated(OfficialPoseResNet(depth), X32)
    state = ref.state_dict()
    if wrap == "mmpose0":
        state = {("keypoint_head." if k.startswith(("deconv_layers", "final_layer"))
                  else "backbone.") + k: v for k, v in state.items()}
    elif wrap == "mmpose1":
        state = {("head." if k.startswith(("deconv_layers", "final_layer"))
                  else "backbone.") + k: v for k, v in state.items()}
    return ref, state


@pytest.mark.parametrize("wrap, fmt", [("official", "pose_resnet"), ("mmpose0", "mmpose_resnet"),
                                       ("mmpose1", "posenas")])
def test_simplebaseline_files_give_the_official_heatmaps(tmp_path, wrap, fmt):
    """The official ``pose_resnet_*.pth`` and mmpose's SimpleBaseline (0.x ``keypoint_head``,
    1.x ``head``: posenas's own names) load through ``build_network`` — the path of
    ``test.py --weights`` and ``model.pretrained`` — with the official heatmaps."""
    ref, state = _pose_resnet_state(18, wrap)
    path = tmp_path / "pose_resnet_18.pth"
    torch.save({"state_dict": state, "meta": {}} if wrap != "official" else state, path)
    conversion = read_weights(path, field="--weights")
    assert conversion.format == fmt and not conversion.skipped
    net = build_network(spec_from_model("pose_resnet_18", "coco"), path, field="--weights").eval()
    with torch.no_grad():
        diff = _max_diff(net(X32), ref(X32))
        # 64×48 is not divisible by 32: the official network gives 16×16, of which the
        # top-left 16×12 lie on the image (the strided convs pad bottom/right)
        cropped = _max_diff(net(X), ref(X)[..., :16, :12])
    print(f"pose_resnet_18 {wrap}: max diff {diff:.1e} (64×64), {cropped:.1e} (64×48)")
    assert diff <= 1e-5 and cropped <= 1e-5


def _pnfs_reference(backbone, widths, seed=0, **kwargs):
    from tests.official_layouts import OfficialPNFS, squash_to_half

    ref = OfficialPNFS(backbone=backbone, backbone_widths=widths, **kwargs)
    calibrated(ref, X32, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if name.endswith(("alphas", "betas")):
                p.copy_(torch.randn(p.shape, generator=gen) * 1.5)
    squash_to_half(ref, X32)
    return ref


@pytest.mark.parametrize("family", ["mobilenet_v2", "resnet_18"])
def test_posenfs_checkpoints_of_the_other_backbones(tmp_path, family):
    """PoseNFS's MobileNet-V2 + CNF×3 (its test example's network: 3 parts, skip / sep / atrous
    operations, factor 16) and its ResNet backbone with fabrics, saved as PoseNFS saves them,
    give PoseNFS's heatmaps through the fixed-mixture network; ``features.17`` (built by
    PoseNFS, never run) is skipped."""
    ops = ("skip_connect", "Sep_Conv_3x3", "Atr_Conv_3x3")
    if family == "mobilenet_v2":
        ref = _pnfs_reference(PNFSMobileNetV2Backbone(), (24, 32, 96, 160), parts_num=3,
                              names=ops, factor=16)
        model = "pnfs_mobilenet_v2_cnf3"
        space = build_model(model, "coco").space_config
    else:
        ref = _pnfs_reference(PNFSResNetBackbone(18), (64, 128, 256, 512), parts_num=3,
                              names=ops, factor=4, vector_dim=4)
        space = SpaceConfig(backbone=BackboneSpaceConfig(name="resnet_18"), parts_num=3,
                            cell_config=CellConfig(search_alpha=False, search_beta=False,
                                                   operators=ops, factor=4, vector_dim=4))
    torch.save({"epoch": 1, "model": ref.state_dict()}, tmp_path / "ckpt.tar")
    conversion = read_weights(tmp_path / "ckpt.tar", field="--weights", target=(space, "coco"))
    assert conversion.format == "pnfs"
    backbone_skipped = {k for k in conversion.skipped if k.startswith("backbone.")}
    assert backbone_skipped == ({k for k in ref.state_dict() if k.startswith("backbone.features.17.")}
                                if family == "mobilenet_v2" else set())
    net = freeze(space, "coco", {}).eval()
    net.load_state_dict(conversion.state)  # strict
    if family == "mobilenet_v2":  # where PoseNFS's 5.68M go: ours + what it builds and never runs
        state = ref.state_dict()
        unused = sum(state[k].numel() for k in conversion.skipped
                     if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
        route_biases = sum(v.numel() for k, v in state.items() if ".propress_list." in k
                           and k.endswith(("operation.0.bias", "conv_1x1.bias")))
        arch = sum(v.numel() for k, v in state.items() if k.endswith(("alphas", "betas")))
        ours_params = sum(p.numel() for p in net.parameters())
        assert (ours_params, unused) == (5_070_088, 128_832 + 473_920)  # stems, features.17
        assert ours_params + unused + route_biases + arch == sum(p.numel() for p in ref.parameters())
    with torch.no_grad():
        ours, theirs = net(X32), ref(X32)
    diff = _max_diff(ours, theirs)
    print(f"PoseNFS {family}: max diff {diff:.1e}, mean {float(theirs.mean()):.2f}")
    assert diff <= 1e-5 and 0.05 < float(theirs.mean()) < 0.95


# --------------------------------------------------------------------------------------------
# PaddlePaddle .pdparams


def test_paddle_hrnet_w32_pdparams_gives_paddles_heatmaps(tmp_path):
    """The PaddlePaddle seed's ``hrnet_w32_256x192.pdparams`` layout (PaddleDetection's
    TopDownHRNet names, Paddle's BN statistics names, NumPy arrays in a pickle), read without
    Paddle through ``build_network`` (``test.py --weights``): every tensor used, the heatmaps of
    a PyTorch rewrite of PaddleDetection's forward."""
    from tests.official_paddle import PaddleTopDownHRNet, save_pdparams

    ref = calibrated(PaddleTopDownHRNet(32), X32)  # scale_factor upsampling: a multiple of 32
    with torch.no_grad():  # heatmaps of a trained network's magnitude (peaks about 1)
        scale = 1 / float(ref(X32).abs().max())
        ref.final_conv.weight.mul_(scale), ref.final_conv.bias.mul_(scale)
    path = tmp_path / "hrnet_w32_256x192.pdparams"
    saved = save_pdparams(ref, path)
    conversion = read_weights(path, field="--weights")
    assert conversion.format == "paddle_hrnet" and not conversion.skipped
    read = [k for k in conversion.state if not k.endswith("num_batches_tracked")]
    assert len(read) == len(saved) - 1  # every array but the structure table
    net = build_network(spec_from_model("hrnet_w32", "coco"), path, field="--weights").eval()
    with torch.no_grad():
        diff = _max_diff(net(X32), ref(X32))
    print(f"Paddle HRNet-W32: max diff {diff:.1e}")
    # not 0: Paddle's fuse adds branch i's own term first, the official HRNet (ours) in order
    assert diff <= 1e-5


def test_a_pdparams_file_with_an_object_is_refused_without_running_it(tmp_path):
    """An arbitrary object in a .pdparams file is one clear error, and its code never runs."""
    import os
    import pickle

    from search_space.errors import UserInputError
    from trainers.weights.checkpoint import read_torch_file

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pdparams"
    path.write_bytes(pickle.dumps({"backbone.conv_layer1_1.conv.weight": Payload()}))
    with pytest.raises(UserInputError, match=r"evil\.pdparams.*(posix|os)\.system.*refused"):
        read_torch_file(path, "--weights")
    assert not marker.exists()
    path.write_bytes(pickle.dumps({"w": [1, 2]}))
    with pytest.raises(UserInputError, match="'w' is a list, not an array"):
        read_torch_file(path, "--weights")
    path.write_bytes(b"not a pickle")
    with pytest.raises(UserInputError, match="not a readable .pdparams"):
        read_torch_file(path, "--weights")


def test_paddle_lite_hrnet_30_pdparams_gives_the_official_heatmaps(tmp_path):
    """The seed's ``lite_hrnet_30_256x192_coco.pdparams`` layout read without Paddle: every
    tensor used, bit-identical heatmaps."""
    from tests.official_layouts import OfficialLiteHRNet, randomize
    from tests.official_paddle import save_paddle_litehrnet

    official = randomize(OfficialLiteHRNet(modules=(3, 8, 3)))
    path = tmp_path / "lite_hrnet_30_256x192_coco.pdparams"
    saved = save_paddle_litehrnet(official, path)
    conversion = read_weights(path, field="model.pretrained")
    assert conversion.format == "paddle_litehrnet" and not conversion.skipped
    assert len([k for k in conversion.state if not k.endswith("num_batches_tracked")]) == len(saved) - 1
    net = build_network(spec_from_model("litehrnet_30", "coco"), path).eval()
    with torch.no_grad():
        diff = _max_diff(net(X32), official(X32))
    print(f"Paddle Lite-HRNet-30: max diff {diff:.1e}")
    assert diff == 0.0


# --------------------------------------------------------------------------------------------
# APRCP pruned HRNets


def _aprcp_prune(net, seed=0):
    """APRCP's surgery on an official pose HRNet: each residual block keeps a random subset of
    its inner channels (Bottleneck bn1/bn2, BasicBlock bn1), the convs around them sliced; the
    widths in module order, as ``normal_regular_select.py`` lists them."""
    from tests.official_layouts import BasicBlock, Bottleneck

    gen = torch.Generator().manual_seed(seed)
    widths = []

    def keep(n):
        k = int(torch.randint(max(1, n // 4), n, (1,), generator=gen))
        return torch.randperm(n, generator=gen)[:k].sort().values

    def cut_out(conv, bn, idx):
        conv.weight = torch.nn.Parameter(conv.weight[idx].clone())
        conv.out_channels = len(idx)
        for name in ("weight", "bias"):
            setattr(bn, name, torch.nn.Parameter(getattr(bn, name)[idx].clone()))
        bn.running_mean, bn.running_var = bn.running_mean[idx].clone(), bn.running_var[idx].clone()
        bn.num_features = len(idx)

    def cut_in(conv, idx):
        conv.weight = torch.nn.Parameter(conv.weight[:, idx].clone())
        conv.in_channels = len(idx)

    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, Bottleneck):
                a, b = keep(m.conv1.out_channels), keep(m.conv2.out_channels)
                cut_out(m.conv1, m.bn1, a), cut_in(m.conv2, a)
                cut_out(m.conv2, m.bn2, b), cut_in(m.conv3, b)
                widths += [len(a), len(b)]
            elif isinstance(m, BasicBlock):
                a = keep(m.conv1.out_channels)
                cut_out(m.conv1, m.bn1, a), cut_in(m.conv2, a)
                widths.append(len(a))
    return widths


def test_aprcp_pruned_hrnet_w32_loads_with_its_widths(tmp_path, capsys):
    """An APRCP pair — ``prune.txt`` as its tool writes it and the pruned network's state dict —
    converts into posenas's pruned HRNet-W32 (its widths as inner-width choices), checked
    against the txt, with the pruned network's heatmaps; ``test.py --weights`` builds the pruned
    widths from the file alone; a txt that disagrees is one error."""
    from tests.official_layouts import OfficialHRNet, randomize
    from trainers.weights.convert import main as convert

    ref = randomize(OfficialHRNet(), scale=0.05)
    widths = _aprcp_prune(ref)
    assert len(widths) == 8 + 8 + 48 + 48  # layer1 4×2, stage 2/3/4 blocks
    params = sum(p.numel() for p in ref.parameters())
    (tmp_path / "prune036.txt").write_text(
        f"Configuration: \n{widths}\nNumber of parameters: \n{params}\n")
    torch.save(ref.state_dict(), tmp_path / "w32_best.pth")
    summary = convert(["--model", "hrnet_w32", "--structure", str(tmp_path / "prune036.txt"),
                       str(tmp_path / "w32_best.pth"), str(tmp_path / "pruned.ckpt")])
    assert summary["params"] == params and summary["format"] == "hrnet"
    with torch.no_grad():
        theirs = ref(X32)
        from trainers.network.build import load_any_network

        for weights in (tmp_path / "pruned.ckpt", tmp_path / "w32_best.pth"):  # test.py's loader
            _, spec, net = load_any_network(weights, model="hrnet_w32")
            net.eval()
            assert spec.choices and set(spec.space.backbone.width_multipliers) > {1.0}
            assert sum(p.numel() for p in net.parameters()) == params
            diff = _max_diff(net(X32), theirs)
            print(f"APRCP {weights.name}: max diff {diff:.1e}")
            assert diff <= 1e-5 and float(theirs.abs().mean()) > 1e-3
    from trainers.network.arch_file import load_arch

    arch = load_arch(summary["arch"])
    assert list(arch.choices.values()) == widths
    wrong = list(widths)
    wrong[17] += 1
    (tmp_path / "wrong.txt").write_text(f"Configuration: \n{wrong}\n")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        convert(["--model", "hrnet_w32", "--structure", str(tmp_path / "wrong.txt"),
                 str(tmp_path / "w32_best.pth"), str(tmp_path / "other.ckpt")])
    assert exit_.value.code == 2 and not (tmp_path / "other.ckpt").exists()
    assert (f"wrong.txt: --structure: line 2, width 18: {wrong[17]}, but the weights have "
            f"{widths[17]}") in capsys.readouterr().err


@pytest.mark.parametrize("name", ["pose_resnet_18", "pose_mobilenet_v2", "pnfs_mobilenet_v2_cnf3"])
def test_param_flop_components_add_up_to_the_total(name):
    """Each row of the --param_flop table counts its part (the stem and the MobileNet-V2 level
    groups are containers made for the report): rows sum to the totals."""
    report = param_flop_report(build_model(name, "coco"), (128, 96))
    rows = report["components"]
    assert sum(r["params"] for r in rows) == report["params"]
    assert sum(r["macs"] for r in rows) == report["macs"] and all(r["macs"] > 0 for r in rows)


@pytest.mark.e2e
def test_an_aprcp_file_as_model_pretrained_fine_tunes_the_pruned_network(coco_root, tmp_path):
    """``train_derived.py model.pretrained pruned.pth``: the pruned widths are trained and recorded,
    so ``test.py --weights best.ckpt`` rebuilds the pruned network; the distillation teacher's
    path (which records nothing) says to convert first."""
    from tests.conftest import run_module
    from tests.official_layouts import OfficialHRNet, randomize
    from tests.test_external import TINY
    from trainers.network.build import load_trained_network

    ref = randomize(OfficialHRNet(**TINY), scale=0.05)
    widths = _aprcp_prune(ref, seed=1)
    torch.save(ref.state_dict(), tmp_path / "pruned.pth")
    out = tmp_path / "run"
    r = run_module("trainers/train_derived.py", "--cfg", "configs/models/hrnet_tiny_synthetic.yaml",
                   "--out", str(out), "--no-progress", "dataset.root", str(coco_root),
                   "model.input_size", "64x48", "train.epochs", "1", "train.limit_train_batches", "2",
                   "train.num_workers", "0", "train.batch_size", "4", "test.flip_test", "false",
                   "model.pretrained", str(tmp_path / "pruned.pth"))
    assert r.returncode == 0, r.stderr[-2000:]
    _, spec, net = load_trained_network(out / "best.ckpt")
    assert list(spec.choices.values()) == widths
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in ref.parameters())
    r = run_module("trainers/test.py", "--cfg", "configs/models/hrnet_tiny_synthetic.yaml",
                   "--weights", str(out / "best.ckpt"), "dataset.root", str(coco_root),
                   "model.input_size", "64x48", "test.flip_test", "false")
    assert r.returncode == 0 and "AP" in r.stdout, r.stderr[-2000:]
    from search_space.errors import UserInputError

    with pytest.raises(UserInputError, match=r"pruned\.pth: distill\.weights: a channel-pruned "
                                             r"HRNet \(APRCP\)"):
        build_network(spec_from_model("hrnet_tiny", "coco"), tmp_path / "pruned.pth",
                      field="distill.weights")
