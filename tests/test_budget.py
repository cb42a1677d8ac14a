"""The hard GFLOPs budget of the Prune step (strategies.budget)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from search_space.counting import param_flop_report
from strategies.budget import fit_to_budget, frozen_gflops
from search_space.errors import UserInputError
from strategies.prune import prune_arch
from tests.test_strategies import CFG, _hand_built, tiny_cfg
from trainers.config.experiment import load_config
from trainers.network.arch_file import ArchFile
from trainers.network.build import build_network, spec_from_arch

# A hand-worked case. Cost (GFLOPs) = 1 + width term + one term per operation, additive:
WIDTH_COST = {16: 0.4, 12: 0.3}
OP_COST = {"Sep_Conv_3x3": 0.2, "max_pool_3x3": 0.05, "skip_connect": 0.0}
ALPHA = {"w": {"16": 0.7, "12": 0.3},
         "p0/edge0_op": {"Sep_Conv_3x3": 0.6, "max_pool_3x3": 0.3, "skip_connect": 0.1},
         "p1/edge0_op": {"Sep_Conv_3x3": 0.9, "max_pool_3x3": 0.05, "skip_connect": 0.05}}
START = {"w": 16, "p0/edge0_op": "Sep_Conv_3x3", "p1/edge0_op": "Sep_Conv_3x3"}  # 1.8 GFLOPs


def _cost(choices):
    return 1.0 + WIDTH_COST[choices["w"]] + sum(OP_COST[v] for k, v in choices.items()
                                                if k.endswith("_op"))


def _arch(coco_root, target, cap, hard=True, fill=False, alpha=ALPHA):
    cfg = tiny_cfg(coco_root)
    goal = replace(cfg.search.goal, objective="flops_constraint", target_gflops=target, hard=hard,
                   fill=fill)
    search = replace(cfg.search, goal=goal,
                     collapse=replace(cfg.search.collapse, max_param_free=cap))
    return ArchFile(replace(cfg, search=search), dict(START), "search", {"alpha": alpha})


@pytest.mark.parametrize("target, cap, changed, gflops, relaxed", [
    # per GFLOP saved, the moves cost (log p_old - log p_new) / saved:
    #   p0 Sep -> max_pool ln 2 / 0.15 = 4.62;  w 16 -> 12 ln(7/3) / 0.1 = 8.47;
    #   p0 Sep -> skip ln 6 / 0.2 = 8.96;  p1 Sep -> skip ln 18 / 0.2 = 14.5;  p1 -> pool 19.3
    (1.72, -1, {"p0/edge0_op": ["Sep_Conv_3x3", "max_pool_3x3"]}, 1.65, False),
    # the cap (no parameter-free operation) defers p0's move behind the width's
    (1.72, 0, {"w": [16, 12]}, 1.7, False),
    # both needed; the cap gives way to the budget and says so
    (1.6, 0, {"w": [16, 12], "p0/edge0_op": ["Sep_Conv_3x3", "max_pool_3x3"]}, 1.55, True),
    # already within: nothing changes
    (1.8, -1, {}, 1.8, False),
])
def test_hand_worked_greedy_fit(coco_root, target, cap, changed, gflops, relaxed):
    arch = _arch(coco_root, target, cap)
    choices = dict(START)
    fit = fit_to_budget(arch, choices, gflops=_cost)
    assert fit.changed == changed and fit.met
    assert fit.gflops == pytest.approx(gflops) and fit.gflops_before == pytest.approx(1.8)
    assert fit.cap_relaxed is relaxed
    assert choices == {**START, **{k: new for k, (_, new) in changed.items()}}


def test_unreachable_target_keeps_the_cheapest_and_says_so(coco_root, caplog):
    arch = _arch(coco_root, 1.0, -1)
    choices = dict(START)
    with caplog.at_level("WARNING", logger="strategies.budget"):
        fit = fit_to_budget(arch, choices, gflops=_cost)
    # every label at its cheapest: 1 + 0.3 + 0 + 0
    assert choices == {"w": 12, "p0/edge0_op": "skip_connect", "p1/edge0_op": "skip_connect"}
    assert fit.gflops == pytest.approx(1.3) and not fit.met
    assert "not reachable" in caplog.text


def test_no_budget_without_constraint_hard_or_weights(coco_root):
    assert fit_to_budget(_arch(coco_root, 1.6, -1, hard=False), dict(START), gflops=_cost) is None
    arch = _arch(coco_root, 1.6, -1)
    assert fit_to_budget(replace(arch, weights={}), dict(START), gflops=_cost) is None
    metric = replace(arch.config, search=replace(arch.config.search, goal=replace(
        arch.config.search.goal, objective="metric")))
    assert fit_to_budget(replace(arch, config=metric), dict(START), gflops=_cost) is None


def test_prune_meets_the_budget_on_the_real_space(coco_root):
    """The hand-built arch.json of the Prune tests, under a target just below its argmax's
    GFLOPs: the derived network (counted on CPU, with weights, apart from the meta-device
    count the fit uses) is within the target and the metrics say what changed."""
    plain = prune_arch(_hand_built(coco_root))
    size = plain.config.model.input_size
    before = param_flop_report(build_network(spec_from_arch(plain)), size)["gflops"]
    assert frozen_gflops(plain.config, plain.choices) == pytest.approx(before, rel=1e-9)
    arch = _hand_built(coco_root)
    goal = replace(arch.config.search.goal, objective="flops_constraint",
                   target_gflops=before * 0.97)
    arch = replace(arch, config=replace(arch.config, search=replace(arch.config.search,
                                                                     goal=goal)))
    derived = prune_arch(arch)
    after = param_flop_report(build_network(spec_from_arch(derived)), size)["gflops"]
    budget = derived.metrics["budget"]
    assert after <= before * 0.97 and budget["met"] and budget["changed"]
    assert budget["gflops"] == pytest.approx(after, abs=1e-6)
    assert {k for k, v in derived.choices.items() if v != plain.choices[k]} == set(budget["changed"])


# The fill (search.goal.fill): the costlier candidates hold 0.41-0.45 of the probability, so
# the argmax takes every cheap one: w 12, skip, skip = 1.3 GFLOPs.
ALPHA_CHEAP = {"w": {"16": 0.45, "12": 0.55},
               "p0/edge0_op": {"Sep_Conv_3x3": 0.4, "max_pool_3x3": 0.1, "skip_connect": 0.5},
               "p1/edge0_op": {"Sep_Conv_3x3": 0.3, "max_pool_3x3": 0.2, "skip_connect": 0.5}}
ARGMAX_CHEAP = {"w": 12, "p0/edge0_op": "skip_connect", "p1/edge0_op": "skip_connect"}


@pytest.mark.parametrize("target, fill, changed, gflops", [
    # per GFLOP gained, the growth moves cost (log p_old - log p_new) / gained:
    #   p0 skip -> Sep ln(5/4) / 0.2 = 1.12;  w 12 -> 16 ln(55/45) / 0.1 = 2.01;
    #   p1 skip -> Sep ln(5/3) / 0.2 = 2.55;  p1 -> pool ln 2.5 / 0.05 = 18.3;  p0 -> pool 32.2
    # 1.3 -> 1.5 -> 1.6: p1 -> Sep (1.8) and p1 -> pool (1.65) no longer fit
    (1.6, True, {"p0/edge0_op": ["skip_connect", "Sep_Conv_3x3"], "w": [12, 16]}, 1.6),
    # room for p1 -> pool after the first two (1.65), not for p1 -> Sep (1.8)
    (1.7, True, {"p0/edge0_op": ["skip_connect", "Sep_Conv_3x3"], "w": [12, 16],
                 "p1/edge0_op": ["skip_connect", "max_pool_3x3"]}, 1.65),
    # room for everything costlier: p1 -> Sep comes before p1 -> pool and takes its place
    (1.9, True, {"p0/edge0_op": ["skip_connect", "Sep_Conv_3x3"], "w": [12, 16],
                 "p1/edge0_op": ["skip_connect", "Sep_Conv_3x3"]}, 1.8),
    # no growth move fits
    (1.34, True, {}, 1.3),
    # fill off: the argmax stays, 0.77x the target
    (1.7, False, {}, 1.3),
])
def test_hand_worked_fill_grows_back_toward_the_target(coco_root, target, fill, changed, gflops):
    arch = _arch(coco_root, target, -1, fill=fill, alpha=ALPHA_CHEAP)
    choices = dict(ARGMAX_CHEAP)
    fit = fit_to_budget(arch, choices, gflops=_cost)
    assert fit.changed == changed and fit.met and fit.filled is fill
    assert fit.gflops == pytest.approx(gflops) and fit.gflops_before == pytest.approx(1.3)
    assert choices == {**ARGMAX_CHEAP, **{k: new for k, (_, new) in changed.items()}}


def test_fill_never_undoes_the_shrink_nor_passes_the_cap(coco_root):
    # the shrink of the first hand-worked case (p0 Sep -> pool, 1.65 under 1.72): the only
    # growth move left, p0 pool -> Sep, costs 1.8
    arch = _arch(coco_root, 1.72, -1, fill=True)
    choices = dict(START)
    fit = fit_to_budget(arch, choices, gflops=_cost)
    assert fit.changed == {"p0/edge0_op": ["Sep_Conv_3x3", "max_pool_3x3"]}
    assert fit.gflops == pytest.approx(1.65)
    # a growth move to a parameter-free operation: on p0 here max_pool costs 0.3 > Sep's 0.2.
    # p1 (skip, not searched) already holds the one parameter-free place of cap 1: the fill
    # takes w 12 -> 16 (1.5 -> 1.6) and leaves p0 on Sep; with no cap, p0 -> pool too (1.7)
    alpha = {"w": ALPHA_CHEAP["w"],
             "p0/edge0_op": {"Sep_Conv_3x3": 0.3, "max_pool_3x3": 0.1, "skip_connect": 0.6}}
    start = {"w": 12, "p0/edge0_op": "Sep_Conv_3x3", "p1/edge0_op": "skip_connect"}

    def cost(c):
        return _cost(c) + (0.25 if c["p0/edge0_op"] == "max_pool_3x3" else 0.0)

    for cap, p0, gflops in [(1, "Sep_Conv_3x3", 1.6), (-1, "max_pool_3x3", 1.7)]:
        choices = dict(start)
        fit = fit_to_budget(_arch(coco_root, 2.0, cap, fill=True, alpha=alpha), choices,
                            gflops=cost)
        assert choices == {**start, "w": 16, "p0/edge0_op": p0}
        assert fit.gflops == pytest.approx(gflops) and not fit.cap_relaxed


def test_fill_needs_a_hard_gflops_budget():
    with pytest.raises(UserInputError, match=r"search\.goal\.fill.*hard GFLOPs budget"):
        load_config(CFG, ["search.goal.fill", "true"])
    with pytest.raises(UserInputError, match=r"search\.goal\.fill"):
        load_config(CFG, ["search.goal.fill", "true", "search.goal.objective",
                          "flops_constraint", "search.goal.target_gflops", "1.0",
                          "search.goal.hard", "false"])
    cfg = load_config(CFG, ["search.goal.fill", "true", "search.goal.objective",
                            "flops_constraint", "search.goal.target_gflops", "1.0"])
    assert cfg.search.goal.fill
