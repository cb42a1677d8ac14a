"""The head type per part as a choice (``space.search_head_type``, issue 27): each part keeps its
fabric or takes a plain 1×1 conv on the backbone's 1/4 level."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from nni.nas.strategy import DARTS
from torch.utils.flop_counter import FlopCounterMode

from search_space.errors import UserInputError
from search_space.config import SpaceConfig
from search_space.inherit import inherit_weights
from search_space.pose_space import ChosenHead, PlainPartHead, freeze, part_fabric
from search_space.supernet import build, space_labels
from strategies.budget import fit_to_budget, frozen_gflops
from strategies.cost import ExpectedCost
from strategies.prune import derive_choices
from tests.conftest import random_sample, run_module, supernet_under, tiny_space
from tests.test_strategies import CFG, search
from trainers.config.experiment import load_config
from trainers.network.arch_file import ArchFile, load_arch
from visualize.arch import arch_graph

X = torch.randn(2, 3, 64, 48, generator=torch.Generator().manual_seed(0))


def head_space(**kw) -> SpaceConfig:
    return replace(tiny_space(**kw), search_head_type=True)


def with_heads(sample: dict, kinds: list[str]) -> dict:
    return {**sample, **{f"part{p}/head": kind for p, kind in enumerate(kinds)}}


def test_the_head_type_is_a_label_per_part_only_when_asked():
    labels = space_labels(head_space(), "coco")
    assert {k: v for k, v in labels.items() if k.endswith("/head")} == {
        f"part{p}/head": ["fabric", "plain"] for p in range(3)}
    plain = space_labels(tiny_space(), "coco")
    assert not [k for k in plain if k.endswith("/head")]
    # the fabrics' labels stay: one architecture file describes every part either way
    assert set(labels) - set(plain) == {f"part{p}/head" for p in range(3)}


def test_a_config_that_cannot_search_the_head_type_names_the_field():
    with pytest.raises(UserInputError, match="search_head_type"):
        replace(tiny_space(), head="plain", search_head_type=True)
    with pytest.raises(UserInputError, match="space.search_head_type"):
        load_config(CFG, ["space.search_head_type", "true", "search.goal.objective",
                          "flops_penalty", "search.goal.cost", "latency", "search.goal.target_ms",
                          "1.0"])


@pytest.mark.parametrize("kinds", [["plain", "fabric", "fabric"], ["fabric", "plain", "plain"],
                                   ["plain", "plain", "plain"]])
def test_a_plain_part_is_a_1x1_conv_on_the_quarter_level(kinds):
    """Worked by hand: a plain part's maps are W·x + b of the backbone's 1/4 level, at the
    part's joints; the fabric parts are still their fabric."""
    space = head_space()
    sample = with_heads(random_sample(build(space, "coco"), 3), kinds)
    net = freeze(space, "coco", sample).eval()
    with torch.no_grad():
        for m in net.modules():  # non-zero heads (the pose init gives N(0, 0.001), biases 0)
            if isinstance(m, PlainPartHead):
                m.conv.weight.normal_(generator=torch.Generator().manual_seed(1))
                m.conv.bias.uniform_(-1, 1, generator=torch.Generator().manual_seed(2))
        out = net(X)
        quarter = net.backbone(X)[0]
        for p, (part, head) in enumerate(zip(net.parts, net.heads)):
            assert isinstance(head, ChosenHead) and list(head) == [kinds[p]]
            maps = out[:, list(part.joints)]
            if kinds[p] == "plain":
                conv = head["plain"].conv
                w = conv.weight[:, :, 0, 0]  # (J, C)
                expected = torch.einsum("jc,nchw->njhw", w, quarter) + conv.bias.view(1, -1, 1, 1)
                assert part_fabric(head) is None
                assert torch.allclose(maps, expected, atol=1e-5)
                assert maps.abs().max() > 0.1
            else:
                assert part_fabric(head) is not None
    if kinds == ["plain"] * 3:  # no fabric is built
        assert not [m for m in net.modules() if type(m).__name__ == "Fabric"]


@pytest.mark.parametrize("seed", range(3))
def test_frozen_network_equals_the_supernet_under_a_head_type_sample(seed):
    space = head_space()
    kinds = [["plain", "fabric", "plain"], ["fabric", "fabric", "plain"],
             ["plain", "plain", "fabric"]][seed]
    sample = with_heads(random_sample(build(space, "coco"), seed), kinds)
    if seed == 0:  # the narrower 1/4 level: a plain head reads its leading input channels
        labels = space_labels(space, "coco")
        sample.update({k: min(v) for k, v in labels.items() if k.endswith("/width")})
        assert sample["stage2/branch0/width"] == 8
    sup = supernet_under(space, "coco", sample, seed)
    net = freeze(space, "coco", sample).eval()
    inherit_weights(net, sup.state_dict())
    with torch.no_grad():
        y = net(X)
        assert torch.allclose(y, sup(X), atol=1e-5)
        assert y.abs().max() > 1e-3
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in sup.parameters())


def test_a_plain_part_checks_its_fabric_labels_all_the_same():
    space = head_space()
    sample = with_heads(random_sample(build(space, "coco"), 0), ["plain"] * 3)
    bad = {**sample, "part0/fabric/cell/edge0_op": "conv_9x9"}
    with pytest.raises(UserInputError, match="part0/fabric/cell/edge0_op"):
        freeze(space, "coco", bad)
    missing = {k: v for k, v in sample.items() if k != "part1/fabric/l3s0/input"}
    with pytest.raises(UserInputError, match="part1/fabric/l3s0/input"):
        freeze(space, "coco", missing)


def _macs(module, *args) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*args)
    return counter.get_total_flops() / 2.0 / 2.0 ** 30


def test_the_expected_cost_gates_a_fabric_by_its_head_type():
    """E(every part fabric) − E(every part plain), the nested choices counted in full, is
    Σ_p (the fabric candidate's GFLOPs, measured on its own) − (the plain head's, by hand:
    16·12 pixels × 16 channels × J_p joints); at softmax(α) = ½ the cost is their mean."""
    space = head_space()
    strategy = DARTS()
    sup = strategy.mutate_model(build(space, "coco"))
    alphas = dict(strategy._arch_parameters)
    cost = ExpectedCost(sup, (64, 48), alphas)
    heads = [f"part{p}/head" for p in range(3)]
    fabric = {lb: torch.tensor([1.0, 0.0]) for lb in heads}
    plain = {lb: torch.tensor([0.0, 1.0]) for lb in heads}
    sup.eval()
    with torch.no_grad():
        pyramid = sup.backbone(torch.zeros(1, 3, 64, 48))
    fabrics = sum(_macs(sup.heads[p]["fabric"], pyramid) for p in range(3))
    joints = [len(part.joints) for part in sup.parts]
    plains = sum(16 * 12 * 16 * j for j in joints) / 2.0 ** 30  # hrnet_tiny's 1/4 branch: 16
    assert cost.at(fabric) - cost.at(plain) == pytest.approx(fabrics - plains, rel=1e-6)
    assert cost.at(fabric) + plains == pytest.approx(cost.total, rel=1e-6)  # the relaxation
    with torch.no_grad():
        for lb in heads:
            alphas[lb].zero_()  # softmax ½ each: E is the mean of both head types
    now = {k: torch.softmax(v.detach(), -1) for k, v in alphas.items()}
    mean = (cost.at({**now, **fabric}) + cost.at({**now, **plain})) / 2
    assert float(cost().detach()) == pytest.approx(mean, rel=1e-6)
    cost().backward()  # a cheaper plain head: the cost's gradient favours it
    assert all(alphas[lb].grad[1] < 0 < alphas[lb].grad[0] for lb in heads)


def test_prune_takes_the_head_type_alpha_favours():
    cfg = load_config(CFG, ["space.search_head_type", "true", "model.input_size", "64x48"])
    sample = random_sample(build(cfg.space, cfg.dataset.name), 0)
    alpha = {"part0/head": {"fabric": 0.3, "plain": 0.7},
             "part1/head": {"fabric": 0.8, "plain": 0.2},
             "part2/head": {"fabric": 0.45, "plain": 0.55}}
    arch = ArchFile(cfg, with_heads(sample, ["fabric"] * 3), "search", {"alpha": alpha}, {})
    choices = derive_choices(arch)
    assert [choices[f"part{p}/head"] for p in range(3)] == ["plain", "fabric", "plain"]


def test_the_fill_spends_what_the_all_plain_argmax_leaves():
    """α gives every part's plain head 0.59-0.70 (a cost penalty's soft preference): the
    argmax makes them all plain. Under a target half-way to all fabric, the fill
    (search.goal.fill) turns parts back into fabrics while they fit: the result is within the
    target, above all plain, and no part left plain fits as a fabric (each checked by
    counting its network); with room for all three, all three are fabrics again."""
    base = ["space.search_head_type", "true", "model.input_size", "64x48",
            "search.goal.objective", "flops_constraint"]
    cfg = load_config(CFG, base + ["search.goal.target_gflops", "1.0"])
    sample = random_sample(build(cfg.space, cfg.dataset.name), 0)
    alpha = {f"part{p}/head": {"fabric": f, "plain": 1 - f}
             for p, f in enumerate([0.41, 0.35, 0.30])}

    def cost(kinds):
        return frozen_gflops(cfg, with_heads(sample, kinds))

    plain, fabric = cost(["plain"] * 3), cost(["fabric"] * 3)
    assert plain < fabric
    for target, fill in [((plain + fabric) / 2, True), ((plain + fabric) / 2, False),
                         (fabric, True)]:
        goal = ["search.goal.target_gflops", repr(target), "search.goal.fill", str(fill).lower()]
        arch = ArchFile(load_config(CFG, base + goal), with_heads(sample, ["fabric"] * 3),
                        "search", {"alpha": alpha}, {})
        choices = derive_choices(arch)
        assert [choices[f"part{p}/head"] for p in range(3)] == ["plain"] * 3
        fit = fit_to_budget(arch, choices)
        kinds = [choices[f"part{p}/head"] for p in range(3)]
        assert fit.met and fit.gflops == pytest.approx(cost(kinds), rel=1e-9)
        if not fill:
            assert kinds == ["plain"] * 3 and not fit.changed
        elif target == fabric:
            assert kinds == ["fabric"] * 3
        else:
            assert plain < fit.gflops <= target
            for p in (p for p, kind in enumerate(kinds) if kind == "plain"):
                assert cost([*kinds[:p], "fabric", *kinds[p + 1:]]) > target


@pytest.mark.e2e
def test_darts_under_an_unreachable_budget_gives_every_part_a_plain_head(coco_root, tmp_path):
    """With the head type searched and target_gflops 0.001 (nothing meets it), the cost term
    drives every part to its cheaper plain head; Prune derives it and the graph draws it."""
    out = tmp_path / "hw"
    r = search(coco_root, "darts", out, "space.search_head_type", "true",
               "search.goal.objective", "flops_constraint", "search.goal.target_gflops", "0.001",
               "search.arch_lr", "0.05", "search.epochs", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    arch = load_arch(out / "arch.json")
    alpha = arch.weights["alpha"]
    assert all(alpha[f"part{p}/head"]["plain"] > 0.5 for p in range(3))
    r = run_module("-m", "strategies.prune", "--arch", str(out / "arch.json"), "--out",
                   str(out / "derived.json"))
    assert r.returncode == 0, r.stderr[-3000:]
    derived = load_arch(out / "derived.json")
    assert [derived.choices[f"part{p}/head"] for p in range(3)] == ["plain"] * 3
    g = arch_graph(derived)
    assert {f"p{p}_plain" for p in range(3)} <= set(g.nodes)
    assert not [n for n in g.nodes if n.startswith("p0_l")]  # no fabric cell drawn
