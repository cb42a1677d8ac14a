"""The unified search space: labels, freezing, exactness against the supernet, NNI strategies."""
from __future__ import annotations

import json

import pytest
import torch
from nni.nas.oneshot.pytorch.supermodule.base import BaseSuperNetModule

from search_space.config import BackboneSpaceConfig, CellConfig, SpaceConfig
from search_space.fabric import slot_routes
from search_space.inherit import inherit_weights
from search_space.models import build_model
from search_space.parts import body_parts
from search_space.pose_space import freeze
from search_space.supernet import build
from tests.conftest import random_sample, supernet_under, tiny_space
from tests.reference_hrnet import ReferenceHRNet
from trainers.network.arch_file import ArchFile, load_arch, save_arch
from trainers.network.build import build_network, spec_from_arch
from trainers.config.experiment import config_from_dict, load_config
from search_space.errors import UserInputError

X = torch.randn(2, 3, 64, 48)

# --------------------------------------------------------------------------------------------
# labels and arch files


def test_labels_are_readable_and_complete():
    model = build(tiny_space(), "coco")
    labels = set(model.simplify())
    assert labels == set(model.decisions)
    assert "stage2/branch1/width" in labels and "stage3/branch2/width" in labels
    # depth 5, cut 3: the fabrics read 3 levels, so the 1/32 branch is not opened
    assert "stage4/branch3/width" not in labels
    deep = build(tiny_space(depth=6), "coco").simplify()
    assert "stage4/branch3/width" in deep
    assert "stage3/module0/branch2/block0/inner0" in labels
    assert "stage1/module0/branch0/block0/inner1" in labels
    assert {"part0/fabric/l3s0/input", "part2/fabric/l4s0/input", "part1/fabric/cell/edge0_op"} <= labels
    per_cell = build(tiny_space(shared=False), "coco").simplify()
    assert "part2/fabric/l3s1/cell/edge0_op" in per_cell
    assert not any(label.startswith("part3/") for label in labels)  # 3 parts


def test_sample_round_trips_through_arch_json(tmp_path):
    cfg = config_from_dict({"dataset": {"name": "coco", "root": "data"},
                            "space": {"backbone": {"name": "hrnet_tiny", "stages": 3,
                                                   "width_multipliers": [0.5, 1.0]},
                                      "parts_num": 3,
                                      "cell_config": {"depth": 5, "factor": 4, "vector_dim": 4}}})
    model = build(cfg.space, "coco")
    sample = random_sample(model, 0)
    save_arch(tmp_path / "arch.json", ArchFile(cfg, sample, metrics={"AP": 0.5}))
    loaded = load_arch(tmp_path / "arch.json")
    assert loaded.choices == sample and loaded.config == cfg and loaded.metrics == {"AP": 0.5}
    assert set(loaded.choices) == set(model.simplify())
    torch.manual_seed(0)
    a = build_network(spec_from_arch(loaded))
    assert a(X).shape == (2, 17, 16, 12)


@pytest.mark.parametrize("edit, field", [
    (lambda d: d["choices"].update({"part9/fabric/l3s0/input": [0]}), "choices.part9/fabric/l3s0/input"),
    (lambda d: d["choices"].update({"stage2/branch1/width": 33}), "choices.stage2/branch1/width"),
    (lambda d: d["choices"].pop("part0/fabric/cell/edge0_op"), "choices.part0/fabric/cell/edge0_op"),
    (lambda d: d["choices"].update({"part1/fabric/cell/edge0_op": "conv_9x9"}), "choices.part1/fabric/cell/edge0_op"),
    (lambda d: d["choices"].update({"part1/fabric/l3s0/input": [3]}), "choices.part1/fabric/l3s0/input"),
    (lambda d: d.update({"version": 7}), "version"),
    (lambda d: d.update({"format": "other"}), "format"),
    (lambda d: d["config"]["space"]["cell_config"].update({"operators": ["Zero", "nope"]}),
     "config.space.cell_config.operators"),
    (lambda d: d.update({"weights": {"alpha": {"x": [float("nan")]}}}), "weights.alpha.x"),
])
def test_bad_arch_files_name_the_field(tmp_path, edit, field):
    cfg = config_from_dict({"dataset": {"name": "coco", "root": "data"},
                            "space": {"backbone": {"name": "hrnet_tiny", "stages": 3,
                                                   "width_multipliers": [0.5, 1.0]},
                                      "parts_num": 3,
                                      "cell_config": {"depth": 5, "factor": 4, "vector_dim": 4}}})
    data = ArchFile(cfg, random_sample(build(cfg.space, "coco"), 1)).to_dict()
    edit(data)
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserInputError) as err:
        load_arch(path)
    assert err.value.field == field and str(path) in str(err.value)


def test_unreadable_arch_file(tmp_path):
    path = tmp_path / "arch.json"
    path.write_text("{not json")
    with pytest.raises(UserInputError, match="invalid JSON"):
        load_arch(path)
    with pytest.raises(UserInputError, match="cannot read"):
        load_arch(tmp_path / "missing.json")


# --------------------------------------------------------------------------------------------
# freezing


@pytest.mark.parametrize("dataset, joints", [("coco", 17), ("mpii", 16)])
@pytest.mark.parametrize("parts_num", [1, 3, 5, 8])
@pytest.mark.parametrize("mode", ["2D", "3D"])
def test_random_samples_freeze_and_run(dataset, joints, parts_num, mode):
    space = tiny_space(parts_num=parts_num, mode=mode, depth=4, cut=2)
    model = build(space, dataset)
    assert model(X).shape == (2, joints, 16, 12)
    for seed in range(2):
        net = freeze(space, dataset, random_sample(model, seed))
        out = net(X)
        assert out.shape == (2, joints, 16, 12) and torch.isfinite(out).all()
        assert not any("nni" in type(m).__module__ for m in net.modules())
        assert not any(type(m).__name__ == "Zero" for m in net.modules())


def test_every_joint_has_a_part_and_shared_joints_are_summed():
    for dataset, k in (("coco", 17), ("mpii", 16)):
        for n in (1, 3, 5, 8):
            parts = body_parts(dataset, n)
            assert len(parts) == n
            assert set().union(*(p.joints for p in parts)) == set(range(k))
    space = tiny_space(parts_num=8, depth=4, cut=2)
    net = freeze(space, "coco", random_sample(build(space, "coco"), 0)).eval()
    pyramid = net.backbone(X)
    expected = torch.zeros(2, 17, 16, 12)
    for part, head in zip(net.parts, net.heads):
        expected[:, list(part.joints)] += head(pyramid)
    assert torch.allclose(net(X), expected)  # left elbow: left upper arm + left lower arm


@pytest.mark.parametrize("parts_num", [3, 5])
def test_parts_that_partition_the_joints_are_reordered_not_summed(parts_num, tmp_path):
    # each joint in exactly one part: the network's maps are each part head's own maps, put at
    # their joints' places (no sum, so exactly equal), and the ONNX graph assembles them without
    # ScatterElements (index_add's export, 115 µs of a 1.3 ms network in onnxruntime)
    import onnx

    from trainers.deploy.onnx_graph import export_onnx, onnx_difference

    space = tiny_space(parts_num=parts_num, depth=4, cut=2)
    net = freeze(space, "coco", random_sample(build(space, "coco"), 1)).eval()
    with torch.no_grad():
        pyramid = net.backbone(X)
        out = net(X)
        for part, head in zip(net.parts, net.heads):
            assert torch.equal(out[:, list(part.joints)], head(pyramid))
    export_onnx(net, tmp_path / "net.onnx", (64, 48))
    ops = {n.op_type for n in onnx.load(str(tmp_path / "net.onnx")).graph.node}
    assert "ScatterElements" not in ops
    assert onnx_difference(net, tmp_path / "net.onnx", (64, 48)).max() < 1e-5


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("hidden, shared, train", [(1, True, False), (1, True, True),
                                                   (2, False, True)])
def test_frozen_network_equals_supernet_under_its_sample(seed, hidden, shared, train):
    # With 2 hidden nodes a node can receive only Zero edges: the frozen cell drops it and the
    # operations reading it. The supernet runs them on zeros, which gives exactly 0 with batch
    # statistics (training mode) but a BN running-statistics constant in eval mode — an artefact
    # of the relaxation, so that case is compared in training mode.
    space = tiny_space(hidden=hidden, shared=shared)
    sample = random_sample(build(space, "coco"), seed)
    sup = supernet_under(space, "coco", sample, seed)
    net = freeze(space, "coco", sample).eval()
    inherit_weights(net, sup.state_dict())
    net.train(train), sup.train(train)
    with torch.no_grad():
        assert torch.allclose(net(X), sup(X), atol=1e-5)
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in sup.parameters())


@pytest.mark.parametrize("op", ["Sep_Conv_3x3", "Sep_Conv_5x5", "Atr_Conv_3x3", "Atr_Conv_5x5",
                                "avg_pool_3x3", "max_pool_3x3", "conv_3x3", "skip_connect"])
@pytest.mark.parametrize("mode", ["2D", "3D"])
def test_frozen_equals_supernet_for_every_operator(op, mode):
    """Every cell on one operator (and the 2D or 3D vector head): the frozen network with the
    supernet's weights computes what the supernet computes under that sample."""
    from search_space.operations import OPERATIONS

    assert op in OPERATIONS
    space = tiny_space(mode=mode, operators=("Zero", op))
    model = build(space, "coco")
    sample = _all_ops(space, model, op, 0)
    sup = supernet_under(space, "coco", sample, 5)
    net = freeze(space, "coco", sample).eval()
    inherit_weights(net, sup.state_dict())
    with torch.no_grad():
        assert torch.allclose(net(X), sup(X), atol=1e-5)
    ops = {type(m).__name__ for m in net.modules()}
    assert ("Conv3d" in ops) == (mode == "3D")


def _all_ops(space: SpaceConfig, model, op: str, beta: int) -> dict:
    sample = {}
    for label, mutable in model.simplify().items():
        if label.endswith("_op"):
            sample[label] = op
        elif label.endswith("/input"):
            sample[label] = [beta]
        else:
            sample[label] = max(mutable.values)
    return sample


def test_border_cell_reached_through_its_stand_in_is_kept():
    space = tiny_space(depth=5, cut=3)
    model = build(space, "coco")
    sample = _all_ops(space, model, "Sep_Conv_3x3", 1)  # every cell: slot "from_higher"
    # the output cell (layer 4, scale 0) has no higher resolution: the same-scale cell stands in
    assert slot_routes(0, 2)[1] == ("same", 0)
    net = freeze(space, "coco", sample)
    cells = set(net.heads[0].fabric.cells)
    assert cells == {"l4s0", "l3s0"}  # the stand-in's source is kept, l3s1 is not read
    assert list(net.heads[0].fabric.adapters) == ["s0"]
    # every part reads only the 1/4 level: no fuse layers for the other outputs
    assert list(net.backbone.stages[-1].modules_[-1].fuse) == ["0"]
    assert net.backbone.next_transition is None
    sup = supernet_under(space, "coco", sample, 0)
    inherit_weights(net.eval(), sup.state_dict())
    with torch.no_grad():
        assert torch.allclose(net(X), sup(X), atol=1e-6)


def test_all_zero_cell_becomes_its_bias_and_prunes_what_feeds_it():
    space = tiny_space()
    model = build(space, "coco")
    sample = _all_ops(space, model, "Zero", 0)
    net = freeze(space, "coco", sample)
    fabric = net.heads[0].fabric
    assert set(fabric.cells) == {"l4s0"} and len(fabric.adapters) == 0
    sup = supernet_under(space, "coco", sample, 3)
    inherit_weights(net.eval(), sup.state_dict())
    with torch.no_grad():
        assert torch.allclose(net(X), sup(X), atol=1e-6)


def test_search_off_is_a_fixed_network_without_choices():
    space = SpaceConfig(backbone=BackboneSpaceConfig(name="hrnet_tiny", stages=3), parts_num=3,
                        cell_config=CellConfig(search_alpha=False, search_beta=False, depth=5,
                                               factor=4, vector_dim=4))
    model = build(space, "coco")
    assert model.simplify() == {}
    net = freeze(space, "coco", {})
    inherit_weights(net, model.state_dict())
    model.eval(), net.eval()
    with torch.no_grad():
        assert torch.equal(net(X), model(X))
    with pytest.raises(ValueError, match="unknown label"):
        freeze(space, "coco", {"part0/fabric/cell/edge0_op": "skip_connect"})


def test_lite_hrnet_backbone_feeds_fabrics():
    space = SpaceConfig(backbone=BackboneSpaceConfig(name="litehrnet_18"), parts_num=3,
                        cell_config=CellConfig(depth=5, factor=4, vector_dim=4))
    model = build(space, "mpii")
    sample = random_sample(model, 0)
    net = freeze(space, "mpii", sample)
    assert net(X).shape == (2, 16, 16, 12)
    sup = supernet_under(space, "mpii", sample, 1)
    inherit_weights(net.eval(), sup.state_dict())
    with torch.no_grad():
        assert torch.allclose(net(X), sup(X), atol=1e-5)


# --------------------------------------------------------------------------------------------
# baselines are points of the space


@pytest.mark.parametrize("width", [32, 48])
def test_plain_head_hrnet_equals_an_independent_reference(width):
    """``head: plain`` on hrnet_w32/w48 (what the registered models are) computes the same
    heatmaps as an HRNet written apart from search_space, given the same weights."""
    ref = ReferenceHRNet(width).eval()
    gen = torch.Generator().manual_seed(width)
    with torch.no_grad():
        for name, t in ref.state_dict().items():  # weights, BN affine and statistics all matter
            if t.dim() == 4:  # conv weights, scaled by fan-in so activations stay finite
                t.copy_(torch.randn(t.shape, generator=gen) / t[0].numel() ** 0.5)
            elif t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=gen) * 0.2 + (0.5 if "running_var" in name
                                                                     or name.endswith("weight")
                                                                     else -0.1))
    space = SpaceConfig(backbone=BackboneSpaceConfig(name=f"hrnet_w{width}"), head="plain")
    net = freeze(space, "coco", {}).eval()
    ours, theirs = net.state_dict(), list(ref.state_dict().values())
    assert [tuple(v.shape) for v in ours.values()] == [tuple(v.shape) for v in theirs]
    net.load_state_dict(dict(zip(ours, theirs)))  # the official tensor order is ours
    x = torch.randn(1, 3, 128, 96, generator=gen)  # divisible by 32, as the official code needs
    with torch.no_grad():
        expected, got = ref(x), net(x)
    assert got.shape == (1, 17, 32, 24)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_pnfs_config_builds_the_registered_fixed_model():
    cfg = load_config("configs/models/pnfs_hrnet_w32_cnf5_coco_384x288.yaml")
    from_config = freeze(cfg.space, "coco", {})
    registered = build_model(cfg.model.name, "coco")
    assert {k: v.shape for k, v in from_config.state_dict().items()} == \
        {k: v.shape for k, v in registered.state_dict().items()}
    # the reference code builds 14.87M: the same plus an unused stem in each of the 5 parts
    assert sum(p.numel() for p in registered.parameters()) == 14_652_680


# --------------------------------------------------------------------------------------------
# NNI's one-shot strategies accept the space


@pytest.mark.parametrize("strategy", ["DARTS", "GumbelDARTS", "RandomOneShot", "ENAS", "Proxyless"])
def test_nni_one_shot_strategies_take_a_training_step(strategy):
    import nni.nas.strategy as strategies

    # NNI 3.0's Proxyless has no one-shot version of width choices: operations only
    space = tiny_space(widths=()) if strategy == "Proxyless" else tiny_space()
    st = getattr(strategies, strategy)()
    sup = st.mutate_model(build(space, "coco"))
    supernet_modules = [m for m in sup.modules() if isinstance(m, BaseSuperNetModule)]
    assert supernet_modules
    memo: dict = {}
    for module in supernet_modules:
        memo.update(module.resample(memo=memo))
    arch = list(getattr(st, "_arch_parameters", {}).values())
    weights = [p for p in sup.parameters() if all(p is not a for a in arch)]
    opt = torch.optim.SGD(weights, lr=0.1)
    before = [p.detach().clone() for p in weights]
    loss = sup(X).square().mean()
    loss.backward()
    opt.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, weights))
    if strategy in ("DARTS", "GumbelDARTS"):
        assert arch and all(a.grad is not None and torch.isfinite(a.grad).all() for a in arch)
        assert any(a.grad.abs().sum() > 0 for a in arch)
