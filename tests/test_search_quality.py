"""Search quality: the collapse signal, P-DARTS's cap on parameter-free operations, and the
search-quality benchmark end to end (``--budget smoke``)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from search_space.supernet import build
from strategies.collapse import arch_collapse
from strategies.prune import derive_choices
from tests.conftest import REPO, random_sample, run_module
from trainers.network.arch_file import ArchFile
from trainers.config.experiment import load_config

CFG = str(REPO / "configs" / "search" / "synthetic_tiny.yaml")
OPS = ["Zero", "skip_connect", "Sep_Conv_3x3", "max_pool_3x3"]


def _cfg(*overrides: str):
    return load_config(CFG, ["model.input_size", "64x48", *overrides])


def _alpha(favoured: dict[str, str]) -> dict[str, dict[str, float]]:
    """One softmax per part's shared operation label, 0.7 on the favoured operation."""
    return {f"part{p}/fabric/cell/edge0_op": {op: (0.7 if op == name else 0.1) for op in OPS}
            for p, name in favoured.items()}


def _choices(cfg) -> dict:
    """First candidates, each cell reading its first slot (β comes from these choices)."""
    labels = build(cfg.space, cfg.dataset.name).simplify()
    return {k: (m.values[0] if not k.endswith("/input") else [0]) for k, m in labels.items()}


def test_collapse_signal_of_hand_built_alpha():
    # the demo's fabric: depth 5, cut 3, 4 scales -> cells l3s0, l3s1, l4s0 per part (9 in all);
    # with one input route per cell (β argmax) two of a part's three cells reach its output.
    # part 0 max_pool, part 1 Sep_Conv, part 2 Zero (its output cell computes nothing):
    # kept 2 + 2 + 0 of 9 cells; of their 4 edges, part 0's 2 are parameter-free.
    cfg = _cfg()
    choices = _choices(cfg)
    weights = {"alpha": _alpha({0: "max_pool_3x3", 1: "Sep_Conv_3x3", 2: "Zero"}), "beta": {}}
    signal = arch_collapse(cfg, choices, weights)
    assert signal == {"param_free_share": 0.5, "cells_kept": round(4 / 9, 4)}

    all_pools = {"alpha": _alpha({0: "max_pool_3x3", 1: "skip_connect", 2: "max_pool_3x3"}),
                 "beta": {}}
    assert arch_collapse(cfg, choices, all_pools) == {"param_free_share": 1.0,
                                                      "cells_kept": round(6 / 9, 4)}
    convs = {"alpha": _alpha({0: "Sep_Conv_3x3", 1: "Sep_Conv_3x3", 2: "Sep_Conv_3x3"}),
             "beta": {}}
    assert arch_collapse(cfg, choices, convs) == {"param_free_share": 0.0,
                                                  "cells_kept": round(6 / 9, 4)}


def test_the_signal_ignores_the_cap():
    cfg = _cfg("search.collapse.max_param_free", "0")
    weights = {"alpha": _alpha({0: "max_pool_3x3", 1: "max_pool_3x3", 2: "max_pool_3x3"}),
               "beta": {}}
    assert arch_collapse(cfg, _choices(cfg), weights)["param_free_share"] == 1.0


def test_pdarts_cap_keeps_the_strongest_parameter_free_choices():
    alpha = _alpha({0: "max_pool_3x3", 1: "skip_connect", 2: "max_pool_3x3"})
    alpha["part1/fabric/cell/edge0_op"] = {"Zero": 0.05, "skip_connect": 0.8,
                                           "Sep_Conv_3x3": 0.1, "max_pool_3x3": 0.05}
    alpha["part2/fabric/cell/edge0_op"] = {"Zero": 0.3, "skip_connect": 0.0,
                                           "Sep_Conv_3x3": 0.05, "max_pool_3x3": 0.65}
    for limit, expected in [(-1, ["max_pool_3x3", "skip_connect", "max_pool_3x3"]),
                            (2, ["max_pool_3x3", "skip_connect", "Sep_Conv_3x3"]),
                            (1, ["Sep_Conv_3x3", "skip_connect", "Sep_Conv_3x3"]),
                            (0, ["Sep_Conv_3x3"] * 3)]:
        cfg = _cfg("search.collapse.max_param_free", str(limit))
        arch = ArchFile(cfg, _choices(cfg), "search", {"alpha": alpha, "beta": {}})
        derived = derive_choices(arch)
        assert [derived[f"part{p}/fabric/cell/edge0_op"] for p in range(3)] == expected, limit


@pytest.mark.e2e
def test_collapse_stop_ends_the_search_and_keeps_the_epoch_before(coco_root, tmp_path):
    # only parameter-free candidates: every architecture after the warm-up has share 1.0 ≥ 0.5,
    # so the search stops after its first architecture epoch (epoch 1 of 4) and arch.json is
    # the warm-up epoch's
    out = tmp_path / "search"
    r = run_module("-m", "strategies.search", "--cfg", CFG, "--strategy", "darts", "--out",
                   str(out), "--no-progress", "dataset.root", str(coco_root),
                   "model.input_size", "64x48", "search.epochs", "4", "search.warmup_epochs",
                   "1", "search.batch_size", "8", "train.num_workers", "0",
                   "test.flip_test", "false", "space.cell_config.operators",
                   "[Zero, skip_connect, max_pool_3x3]", "search.collapse.stop", "0.5")
    assert r.returncode == 0, r.stderr[-3000:]
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [0, 1]
    assert history[1]["collapse_stop"] is True and history[1]["param_free_share"] == 1.0
    assert "collapse_stop" not in history[0]
    assert json.loads((out / "arch.json").read_text())["metrics"]["epoch"] == 0


def test_welch_difference_matches_scipys_welch_interval():
    from scipy import stats

    from benchmarks.search_quality import welch_difference

    a, b = [0.40, 0.42, 0.47, 0.44, 0.41], [0.30, 0.31, 0.38]
    d = welch_difference(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert d["diff"] == pytest.approx(sum(a) / 5 - sum(b) / 3)
    assert (d["low"], d["high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert d["verdict"] == "better" and welch_difference(b, a)["verdict"] == "worse"
    # overlapping samples: the interval contains 0
    assert welch_difference([0.40, 0.30, 0.50], [0.42, 0.35, 0.45])["verdict"] == \
        "no difference resolved"
    # two constant samples: a zero-width interval at the difference; one value: no interval
    assert welch_difference([0.0, 0.0], [0.0, 0.0])["verdict"] == "no difference resolved"
    c = welch_difference([0.2, 0.2], [0.1, 0.1])
    assert (c["low"], c["high"], c["verdict"]) == (pytest.approx(0.1), pytest.approx(0.1), "better")
    assert welch_difference([0.2], [0.1, 0.3])["low"] is None


def test_kendall_tau_by_hand():
    from benchmarks.search_quality import kendall_tau

    # pairs (1,2) and (1,3) concordant, (2,3) discordant: τ = (2 − 1) / 3
    assert kendall_tau([1.0, 2.0, 3.0], [0.1, 0.3, 0.2]) == pytest.approx(1 / 3)
    assert kendall_tau([3.0, 2.0, 1.0], [0.1, 0.2, 0.3]) == pytest.approx(-1.0)
    # a constant or nan score ranks nothing
    assert math.isnan(kendall_tau([1.0, 1.0, 1.0], [0.1, 0.2, 0.3]))
    assert math.isnan(kendall_tau([1.0, float("nan"), 2.0], [0.1, 0.2, 0.3]))
    # −inf (log synflow of a dead path) is the lowest score: (1,2) discordant, (1,3) and (2,3)
    # concordant, τ = (2 − 1) / 3
    assert kendall_tau([1.0, float("-inf"), 2.0], [0.1, 0.2, 0.3]) == pytest.approx(1 / 3)
    # the bootstrap interval: a perfect ranking stays perfect in every resample (duplicated
    # architectures tie in both), a constant score has none, a reversed one sits at −1
    from benchmarks.search_quality import tau_interval

    truth = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert tau_interval([1, 2, 3, 4, 5, 6], truth) == pytest.approx((1.0, 1.0))
    assert tau_interval([6, 5, 4, 3, 2, 1], truth) == pytest.approx((-1.0, -1.0))
    assert tau_interval([1, 1, 1, 1, 1, 1], truth) == (None, None)


def test_random_at_cost_takes_over_the_defaults_goal_and_space_only():
    from benchmarks.search_quality import VARIANTS, goal_overrides

    assert goal_overrides(VARIANTS["darts@plain"][1]) == [
        "search.goal.objective", "flops_constraint", "search.goal.target_gflops", "PLAIN"]
    assert goal_overrides(["search.collapse.max_param_free", "1", "search.goal.cost",
                           "latency", "search.epochs", "2"]) == ["search.goal.cost", "latency"]
    assert goal_overrides(VARIANTS["darts"][1]) == []
    # the same space too: a default that searches the head type is compared in that space
    assert goal_overrides(VARIANTS["darts-heads@plain"][1]) == [
        "space.search_head_type", "true", "search.goal.objective", "flops_constraint",
        "search.goal.target_gflops", "PLAIN"]


def test_the_demos_search_is_the_benchmarks_default():
    """make demo searches what the benchmark judges as its default (darts@plain): DARTS on
    synthetic_tiny.yaml's space with a hard budget of the plain head's GFLOPs at the demo's
    128x96. The demo's config names the plain head (search.goal.target_reference); the
    benchmark measures it on its own plain-head baseline, built here the benchmark's way."""
    from benchmarks.search_quality import DEFAULT_VARIANT, SEARCH_CFG, VARIANTS
    from search_space.counting import param_flop_report
    from strategies.goal_target import resolve_goal_target
    from trainers.config.experiment import load_config
    from trainers.network.build import build_network, spec_from_choices
    from visualize.loop import SEARCH_CONFIG, SEARCH_STRATEGY

    strategy, extra = VARIANTS[DEFAULT_VARIANT]
    assert strategy == SEARCH_STRATEGY == "darts"
    demo = resolve_goal_target(load_config(SEARCH_CONFIG, []), SEARCH_CONFIG)
    plain = load_config(SEARCH_CFG, ["space.head", "plain", "space.backbone.width_multipliers",
                                     "[]"])
    gflops = param_flop_report(build_network(spec_from_choices(plain, {})),
                               demo.model.input_size)["gflops"]
    assert demo.model.input_size == (128, 96)
    # the README's figure for the plain head at 128x96, and the network measured here
    assert demo.search.goal.target_gflops == pytest.approx(0.04171, abs=5e-6)
    assert demo.search.goal.target_gflops == pytest.approx(gflops, abs=5e-6)
    target = str(demo.search.goal.target_gflops)
    variant = load_config(SEARCH_CFG, [target if v == "PLAIN" else v for v in extra])
    assert variant.search == demo.search and variant.space == demo.space
    assert demo.search.goal.hard and demo.search.goal.objective == "flops_constraint"


@pytest.mark.parametrize("budget", ["smoke", "small"])
def test_every_variant_is_a_valid_config_of_the_search(budget, tmp_path):
    """Each variant's overrides, placeholders filled as a run fills them, load into the search
    config; the weight-inheritance variants train half the budget's trial epochs when they
    inherit, at the default's cost."""
    from benchmarks.search_quality import BUDGETS, SEARCH_CFG, VARIANTS, _search_overrides
    from trainers.config.experiment import load_config

    plan = BUDGETS[budget]
    for name, (_, extra) in VARIANTS.items():
        over = _search_overrides(plan, tmp_path, 0, extra, {"PLAIN": "0.0417", "COST": "40.0",
                                                             "TINY_HALF": "0.0292"})
        assert not [v for v in over if v.isupper()], (name, over)  # every placeholder filled
        cfg = load_config(SEARCH_CFG, over)
        if "inherit" in name:
            assert cfg.search.inheritance.enabled and cfg.search.max_seconds == 40.0
            assert cfg.search.inheritance.epochs == max(1, plan.trial_epochs // 2)
        else:
            assert not cfg.search.inheritance.enabled
        if name.endswith("@plain"):  # goal 1's hard budget, on top of the remedy
            assert cfg.search.goal.objective == "flops_constraint" and cfg.search.goal.hard
            assert cfg.search.goal.target_gflops == 0.0417
        if name.endswith("@half-tiny"):  # goal 3's: half hrnet_tiny's GFLOPs, half widths
            assert cfg.search.goal.target_gflops == 0.0292 and cfg.search.goal.hard
            assert 0.5 in cfg.space.backbone.width_multipliers


def test_a_half_tiny_variant_without_baselines_is_one_line_and_exit_2(tmp_path, capsys):
    """Its budget is measured on the hrnet_tiny baseline: refused before anything is written."""
    from benchmarks.search_quality import main

    out = tmp_path / "bench"
    with pytest.raises(SystemExit) as exit_:
        main(["--budget", "smoke", "--out", str(out), "--no-baselines",
              "--strategies", "darts-w0.5@half-tiny"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and "--no-baselines" in err[-1] and "hrnet_tiny" in err[-1]
    assert not out.exists()


def test_search_seeds_that_derive_the_same_network_are_one_unit():
    """Two search seeds that derived one network trained it with the same training seeds: the
    same numbers twice. Counted as two units they gave a zero-width interval and a verdict
    ("better") that no second sample supports; as one network its training seeds are the
    units, as for a baseline."""
    from benchmarks.search_quality import Candidate, comparisons, units

    same = [Candidate("strategy", "a", s, aps=[0.52, 0.53, 0.50], extra={"architecture": "x"})
            for s in (0, 1)]
    other = [Candidate("strategy", "b", s, aps=[0.50, 0.52, 0.49], extra={"architecture": "y"})
             for s in (0, 1)]
    assert units(same) == [0.52, 0.53, 0.50]
    mixed = same + [Candidate("strategy", "a", 2, aps=[0.40] * 3, extra={"architecture": "z"})]
    assert units(mixed) == pytest.approx([0.5166667, 0.40])
    (row,) = comparisons({"a": same, "b": other}, {}, "a")
    assert row["n"] == [3, 3] and row["low"] < 0 < row["high"]  # 0.517 vs 0.503: not resolved


def test_a_search_seed_that_derived_an_earlier_network_reuses_its_trainings():
    from benchmarks.search_quality import Candidate, reuse_training, trained_before

    first = Candidate("strategy", "a", 0, aps=[0.5, 0.4, 0.6], extra={"architecture": "x"})
    first.recipe = {"epochs": 24, "seeds": [0, 1, 2]}
    other = Candidate("strategy", "b", 1, aps=[0.3, 0.3, 0.3], extra={"architecture": "y"})
    again = Candidate("strategy", "a", 2, extra={"architecture": "x"})
    new = Candidate("strategy", "a", 3, extra={"architecture": "z"})
    assert trained_before(again, [first, other]) is first
    assert trained_before(new, [first, other]) is None
    assert trained_before(Candidate("strategy", "a", 4), [first]) is None  # no identity: train
    reuse_training(again, first)
    assert again.aps == first.aps and again.recipe == first.recipe and again.train_s == 0
    assert again.extra["trainings_of"] == {"strategy": "a", "search_seed": 0}
    assert trained_before(Candidate("strategy", "c", 0, extra={"architecture": "y"}),
                          [first, other]) is other  # another strategy's network: the same
    again.aps.append(0.0)  # its own copy
    assert first.aps == [0.5, 0.4, 0.6]


def test_an_architecture_is_its_network_not_its_choices():
    from benchmarks.search_quality import architecture_id

    cfg = load_config(REPO / "configs" / "search" / "synthetic_tiny.yaml",
                      ["space.search_head_type", "true"])
    space = build(cfg.space, cfg.dataset.name)
    a, other = (random_sample(space, seed) for seed in (0, 1))
    b = {k: other[k] if "/fabric/" in k else v for k, v in a.items()}  # other fabrics only
    plain = {f"part{p}/head": "plain" for p in range(3)}
    assert a != b
    # every part plain: the fabric labels are not built, so the networks are one
    assert architecture_id(ArchFile(cfg, {**a, **plain}, "derived", {}, {})) == \
        architecture_id(ArchFile(cfg, {**b, **plain}, "derived", {}, {}))
    fabric = {f"part{p}/head": "fabric" for p in range(3)}
    assert architecture_id(ArchFile(cfg, {**a, **fabric}, "derived", {}, {})) != \
        architecture_id(ArchFile(cfg, {**b, **fabric}, "derived", {}, {}))


def test_resume_reuses_only_a_training_with_the_same_inputs(tmp_path, monkeypatch):
    """``--resume``: a training finished with the same command line, architecture bytes and
    machine is read back; another architecture file (or seed) trains again."""
    from benchmarks import search_quality as sq

    runs: list[str] = []

    def fake_train(argv):  # train_derived.main: writes the metrics a training leaves
        where = Path(argv[argv.index("--out") + 1])
        where.mkdir(parents=True, exist_ok=True)
        runs.append(str(where))
        (where / "metrics.json").write_text(json.dumps({"best": 0.25, "epochs": [{}] * 2,
                                                        "recipe": {"seed": 0}}))
        return 0

    monkeypatch.setattr(sq.train_derived, "main", fake_train)
    budget = sq.Budget(**{**sq.BUDGETS["smoke"].__dict__, "train_seeds": 2})
    arch = tmp_path / "a.json"
    arch.write_text('{"choices": {"x": 1}}')

    def train(resume):
        cand = sq.Candidate("baseline", "c", None)
        sq._train(sq.Steps(tmp_path / "out", resume), cand, tmp_path / "out" / "c", budget,
                  tmp_path / "data", arch=arch)
        return cand

    train(False)
    assert len(runs) == 2
    cand = train(True)
    assert len(runs) == 2 and cand.aps == [0.25, 0.25]  # both read back
    train(False)  # without --resume every training runs again
    assert len(runs) == 4
    arch.write_text('{"choices": {"x": 2}}')  # another architecture in the same place
    train(True)
    assert len(runs) == 6
    assert sq.training_key(["--seed", "0"], None) != sq.training_key(["--seed", "1"], None)


def test_resume_keys_survive_a_moved_run_folder_and_read_the_older_keys(tmp_path, monkeypatch):
    """A run folder copied elsewhere resumes there: its trainings' keys name their paths
    relative to the run's --out (and the checkout). A mark written with the older absolute key
    (before 2026-12-07) is still read back; a mark of another run's arguments is not."""
    import shutil

    from benchmarks import search_quality as sq

    runs: list[str] = []

    def fake_train(argv):
        where = Path(argv[argv.index("--out") + 1])
        where.mkdir(parents=True, exist_ok=True)
        runs.append(str(where))
        (where / "metrics.json").write_text(json.dumps({"best": 0.5, "epochs": [{}],
                                                        "recipe": {"seed": 0}}))
        return 0

    monkeypatch.setattr(sq.train_derived, "main", fake_train)
    budget = sq.Budget(**{**sq.BUDGETS["smoke"].__dict__, "train_seeds": 1})

    def train(out, resume=True):
        arch = out / "baselines" / "a.json"  # an arch file naming paths inside the run
        arch.parent.mkdir(parents=True, exist_ok=True)
        arch.write_text(json.dumps({"root": str(out / "data"), "choices": {"x": 1}}))
        cand = sq.Candidate("baseline", "c", None)
        sq._train(sq.Steps(out, resume), cand, out / "c", budget, out / "data", arch=arch)
        return cand

    first = tmp_path / "first"
    train(first, resume=False)
    assert len(runs) == 1
    moved = tmp_path / "elsewhere" / "moved"
    shutil.copytree(first, moved)
    assert train(moved).aps == [0.5] and len(runs) == 1  # read back, not trained again
    # a mark with the key as it was written before: absolute paths, read back too
    old = tmp_path / "old"
    train(old, resume=False)
    where = old / "c" / "seed0"
    mark = json.loads((where / sq.TRAINING_MARK).read_text())
    legacy_args = ["--cfg", str(sq.RECIPE_CFG), "--out", str(where), "--no-progress",
                   *sq.recipe_overrides(budget.size, budget.recipe_epochs, old / "data", 0),
                   "--arch", str(old / "baselines" / "a.json")]
    mark["key"] = sq.training_key(legacy_args, old / "baselines" / "a.json")
    (where / sq.TRAINING_MARK).write_text(json.dumps(mark))
    count = len(runs)
    train(old)
    assert len(runs) == count
    mark["key"] = sq.training_key(legacy_args[:-2], None)  # another run's arguments
    (where / sq.TRAINING_MARK).write_text(json.dumps(mark))
    train(old)
    assert len(runs) == count + 1


def test_an_arch_file_rewritten_with_the_same_content_keeps_its_older_bytes(tmp_path):
    """A version that adds a config field writes the same architecture with other bytes;
    the benchmark puts the older bytes back, so the trainings that hashed them resume. A
    file with other content is kept as written."""
    from benchmarks import search_quality as sq
    from trainers.config.experiment import load_config
    from trainers.network.arch_file import ArchFile, load_arch, save_arch

    cfg = load_config(sq.SEARCH_CFG, ["space.head", "plain", "space.backbone.width_multipliers",
                                      "[]"])  # the plain head: no choices
    path = tmp_path / "derived.json"
    save_arch(path, ArchFile(cfg, {}, "derived", {}, {"baseline": "plain head"}))
    older = json.loads(path.read_text())
    del older["config"]["search"]["edge_mixing"]  # as a version without the field wrote it
    path.write_text(json.dumps(older, indent=2))
    before = path.read_bytes()
    same = ArchFile(cfg, {}, "derived", {}, {"baseline": "plain head"})
    sq.keep_unchanged(path, lambda: save_arch(path, same))
    assert path.read_bytes() == before
    other = ArchFile(cfg, {}, "derived", {}, {"baseline": "another"})
    sq.keep_unchanged(path, lambda: save_arch(path, other))
    assert path.read_bytes() != before and load_arch(path).metrics == {"baseline": "another"}


def test_resume_reads_back_a_finished_search_with_its_seconds(tmp_path, monkeypatch):
    """``--resume``: a search finished with the same command line is read back with the seconds
    it took (random@cost's time budget is the default's seconds: a rerun would be another draw);
    another command line, or a search that left no arch.json, runs again."""
    from benchmarks import search_quality as sq

    runs: list[list[str]] = []

    def fake_search(argv):  # strategies.search.main: the files a finished search leaves
        where = Path(argv[argv.index("--out") + 1])
        where.mkdir(parents=True, exist_ok=True)
        runs.append(argv)
        (where / "arch.json").write_text("{}")
        (where / "history.jsonl").write_text("{}\n")
        return 0

    monkeypatch.setattr(sq.search_cli, "main", fake_search)
    sdir = tmp_path / "out" / "s"
    argv = ["--out", str(sdir), "search.max_seconds", "41.3"]

    def search(resume, argv=argv):
        return sq._search(sq.Steps(tmp_path / "out", resume), "search_x", sdir, argv)

    first = search(False)
    mark = json.loads((sdir / sq.SEARCH_MARK).read_text())
    assert len(runs) == 1 and mark["seconds"] == round(first, 1)
    mark["seconds"] = 77.7  # the seconds come from the mark, not from a rerun
    (sdir / sq.SEARCH_MARK).write_text(json.dumps(mark))
    assert search(True) == 77.7 and len(runs) == 1
    search(False)  # without --resume it runs again
    assert len(runs) == 2
    search(True, argv[:-1] + ["41.4"])  # another time budget: another search
    assert len(runs) == 3
    (sdir / "arch.json").unlink()  # the mark alone is not a finished search
    search(True, argv[:-1] + ["41.4"])
    assert len(runs) == 4


@pytest.mark.e2e
def test_search_quality_benchmark_smoke(tmp_path):
    out = tmp_path / "bench"
    r = run_module("-m", "benchmarks.search_quality", "--budget", "smoke", "--out", str(out),
                   "--threads", "1", "--json")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Logging error" not in r.stderr
    assert "train loss" not in r.stderr  # the commands' INFO lines stay in OUT/logs/
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    # make demo's search: DARTS under the plain head's GFLOPs as a hard budget
    assert summary["default"] == "darts@plain" and summary["protocol"] == 2
    assert set(summary) >= {"default", "random", "strategies", "baselines", "kendall_tau",
                            "kendall_tau_ap", "comparisons", "goals", "threads"}
    assert len(summary["random"]) == 2
    # ranked by the supernet's validation loss (distinct for two architectures): τ is ±1, or
    # undefined (null) when their stand-alone APs tie, as after smoke's one epoch they may
    losses = [r["supernet_loss"] for r in summary["random"]]
    assert all(math.isfinite(v) and v > 0 for v in losses) and losses[0] != losses[1]
    tie = summary["random"][0]["ap"] == summary["random"][1]["ap"]
    assert summary["kendall_tau"] is None if tie else summary["kendall_tau"] in (-1.0, 1.0)
    # every ranker's τ: both supernets (by loss and AP) and the zero-cost proxies; τ of
    # #params and FLOPs is defined whenever the stand-alone APs differ (distinct architectures)
    assert set(summary["ranking"]) == {"spos supernet, −loss", "spos supernet, AP",
                                       "darts@plain supernet, −loss",
                                       "darts@plain supernet, AP", "params",
                                       "flops", "naswot", "synflow"}
    assert summary["ranking"]["spos supernet, −loss"]["tau"] == summary["kendall_tau"]
    params = [r["zero_cost"]["params"] for r in summary["random"]]
    assert params == [r["params"] for r in summary["random"]]  # untrained = derived network
    expected = None if tie else (1.0 if (params[0] - params[1]) * (
        summary["random"][0]["ap"] - summary["random"][1]["ap"]) > 0 else -1.0)
    assert summary["ranking"]["params"]["tau"] == expected
    assert set(summary["strategies"]) == {"darts@plain", "random@cost", "spos", "prune_rate"}
    assert set(summary["baselines"]) == {"hrnet_tiny", "plain_head", "proxy_pick"}
    entries = [*summary["random"], *(e for es in summary["strategies"].values() for e in es),
               *summary["baselines"].values()]
    assert len(entries) == 2 + 4 + 3
    for e in entries:  # every candidate trained with both training seeds, scored by their mean
        assert len(e["aps"]) == 2 and all(0.0 <= v <= 1.0 for v in e["aps"])
        assert e["ap"] == pytest.approx(sum(e["aps"]) / 2) and e["gflops"] > 0
    # one recipe for every candidate: the smoke budget's (1 epoch, cpu_tiny's batch 16 and lr
    # 0.002, 64x48, from scratch, training seeds 0 and 1), as each training recorded it
    recipes = {json.dumps(e["recipe"], sort_keys=True) for e in entries}
    assert len(recipes) == 1
    recipe = entries[0]["recipe"]
    assert (recipe["epochs"], recipe["epochs_trained"], recipe["batch_size"], recipe["lr"],
            recipe["input_size"], recipe["pretrained"], recipe["seeds"]) == \
        (1, 1, 16, 0.002, [64, 48], None, [0, 1])
    base = summary["baselines"]
    # the plain head on the same 3-stage backbone is smaller than the 4-stage hrnet_tiny
    assert base["plain_head"]["gflops"] < base["hrnet_tiny"]["gflops"]
    # the zero-cost proxy pick: the most parameters among the draws within the plain head's cost
    pick = base["proxy_pick"]["pick"]
    assert pick["draws"] == 4 and pick["max_gflops"] == base["plain_head"]["gflops"]
    if pick["under_budget"]:
        assert base["proxy_pick"]["gflops"] <= base["plain_head"]["gflops"] + 1e-4
    assert base["proxy_pick"]["params"] == pick["params"]
    # random search at the default's cost: its time budget is darts' search time of the seed
    darts = summary["strategies"]["darts@plain"][0]
    at_cost = summary["strategies"]["random@cost"][0]
    assert at_cost["time_budget_s"] == pytest.approx(darts["search_only_s"], abs=0.1)
    assert 1 <= at_cost["trials"] <= 2  # the budget's num_trials caps it too
    # the gradient strategies record the collapse signal per search epoch
    assert all("param_free_share" in c for c in darts["collapse"])
    # the default against every other strategy and baseline, each with its interval
    assert {(c["a"], c["b"]) for c in summary["comparisons"]} == {
        ("darts@plain", n) for n in ("random@cost", "spos", "prune_rate", "plain_head", "hrnet_tiny",
                               "proxy_pick")}
    for c in summary["comparisons"]:
        assert c["low"] <= c["diff"] <= c["high"] and c["n"] == [2, 2]
    assert [g["goal"] for g in summary["goals"]] == [
        "beats the plain head at ≤ its GFLOPs", "beats random search at equal cost",
        "≥ hrnet_tiny's AP at ≤ 0.5× its GFLOPs"]
    assert (out / "pareto.png").stat().st_size > 0
    assert json.loads((out / "search_quality.json").read_text())["default"] == "darts@plain"
    # the random baseline is a sample of its own: SPOS's seed-0 path ranking draws with
    # RandomState(0) and must not re-propose the baseline's architectures
    randoms = [json.loads(p.read_text())["choices"]
               for p in sorted((out / "random").glob("*/arch.json"))]
    ranked = [json.loads(line)["choices"] for line in
              (out / "strategies" / "spos" / "seed0" / "history.jsonl").read_text().splitlines()
              if "path_ranking" in line]
    assert len(randoms) == 2 and ranked and not any(c in randoms for c in ranked)


@pytest.mark.e2e
def test_seed_spread_benchmark_and_a_seed_is_a_seed_across_processes(tmp_path):
    out = tmp_path / "spread"
    r = run_module("-m", "benchmarks.seed_spread", "--epochs", "1", "--seeds", "2", "--size",
                   "64x48", "--images", "32", "--out", str(out), "--threads", "1",
                   "--json")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    runs = summary["runs"]["1"]
    assert [x["seed"] for x in runs] == [0, 1]
    # seed 0 trained again as a separate process, same thread count: the same AP to the digit
    assert summary["reproducible"] is True
    assert summary["repro"]["separate_process"] == runs[0]["ap"]
    aps = [x["ap"] for x in runs]
    row = summary["table"]["1"]
    assert row["mean"] == pytest.approx(sum(aps) / 2)
    assert row["std"] == pytest.approx(abs(aps[0] - aps[1]) / 2 ** 0.5)


def test_bn_recalibration_is_the_plain_average_of_batch_statistics(coco_root):
    # a BN over the normalised input images: after recalibration its running mean is the mean
    # of the per-batch channel means of the first 3 training batches and its running variance
    # the mean of their unbiased variances (momentum None), worked out here from the loader
    import torch
    from torch import nn

    from trainers.engine.bn_recalibration import recalibrate_bn
    from trainers.data.registry import build_dataset
    from trainers.data.loader import build_loader
    from trainers.data.topdown import normalize_images
    from tests.conftest import tiny_config

    cfg = tiny_config("coco", coco_root, "train.batch_size", "4")
    # in float64 on both sides: a float32 variance over 4×64×48 values depends on the reduction
    # order (1 thread vs 2 gave a 1.4e-5 relative difference), which is not what is tested here
    bn = nn.BatchNorm2d(3, momentum=0.1).double()
    bn.running_mean.fill_(5.0)

    class Float64(nn.Module):
        def forward(self, x):
            return x.double()

    model = nn.Sequential(Float64(), bn)
    assert recalibrate_bn(model, cfg, batches=3) == 3
    loader = build_loader(build_dataset(cfg, "train"), 4, shuffle=True, num_workers=0,
                          seed=cfg.seed)
    means, variances = [], []
    for batch, _ in zip(loader, range(3)):
        x = normalize_images(batch["image"], cfg.dataset.color_rgb).double()
        means.append(x.mean(dim=(0, 2, 3)))
        variances.append(x.transpose(0, 1).reshape(3, -1).var(dim=1, unbiased=True))
    torch.testing.assert_close(bn.running_mean, torch.stack(means).mean(0))
    torch.testing.assert_close(bn.running_var, torch.stack(variances).mean(0))
    assert bn.momentum == 0.1 and not model.training
