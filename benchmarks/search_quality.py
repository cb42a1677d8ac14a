"""Does the search find better networks than chance? The search-quality benchmark.

    python -m benchmarks.search_quality --budget smoke|small|full [--out DIR] [--json]
                                        [--strategies NAME,...] [--seeds N] [--random K]

On the synthetic COCO-layout task, in the demo's space (configs/search/synthetic_tiny.yaml), with
the real commands (``strategies.search``, ``strategies.prune``, ``train_derived.py``, each run in
this process, its output in ``OUT/logs/``):

- **random**: K architectures drawn uniformly from the space (their own seed,
  :data:`RANDOM_SEED`: the strategies' samplers draw with ``RandomState(seed)`` for their seeds
  0..N-1, and would otherwise propose these very architectures), each through Prune and trained
  stand-alone with the one recipe (configs/models/hrnet_tiny_synthetic.yaml at the budget's
  epochs, from scratch, seed 0);
- **strategies**: each strategy (and the remedies of :data:`VARIANTS`) searched with seeds 0..N-1,
  then Prune, then the same recipe. ``prune_rate`` prunes the channels of the default
  strategy's derived network of the same seed (APRCP after the search);
- **baselines**: ``hrnet_tiny`` and the plain-head network on the search space's backbone
  (3 stages, full widths), the same recipe;
- **ranking**: Kendall τ between the score of the K random architectures with SPOS's supernet
  weights (seed 0; inherited, BN recalibrated on 8 training batches, no training) and their
  stand-alone AP. The score is the validation loss (negated), which ranks architectures even
  when a short supernet scores them all AP 0; τ of the supernet's AP is reported beside it
  (``kendall_tau_ap``, null when undefined).

Prints a table (AP with flip test, GFLOPs, params, search time), the goal checks of the default
strategy (the one ``make demo`` uses), writes ``OUT/search_quality.json`` and the Pareto plot
``OUT/pareto.png`` (AP vs GFLOPs). With ``--json`` the last line is
``{"default", "random": [{"ap", "gflops", ...}], "strategies": {NAME: [...]}, "baselines":
{NAME: {...}}, "kendall_tau", "kendall_tau_ap"}``; every entry carries the recipe its training
recorded.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent

import torch

from search_space.counting import param_flop_report
from search_space.supernet import build
from strategies import prune as prune_cli
from strategies import search as search_cli
from strategies.latency import random_networks
from strategies.prune import inherited_network
from trainers import train_derived
from trainers.network.arch_file import ArchFile, load_arch, save_arch
from trainers.engine.bn_recalibration import recalibrate_bn
from trainers.network.build import build_network, spec_from_choices, spec_from_model
from trainers.config.experiment import load_config
from trainers.data.synthetic import write_coco
from visualize.loop import SEARCH_STRATEGY
from trainers.engine.fit import evaluate_model
from trainers.report import format_table

SEARCH_CFG = REPO / "configs" / "search" / "synthetic_tiny.yaml"
#: the random baseline's draws: apart from the search seeds (SPOS's path ranking and the
#: multi-trial samplers of seed s draw from RandomState(s) too)
RANDOM_SEED = 1000
RECIPE_CFG = REPO / "configs" / "models" / "hrnet_tiny_synthetic.yaml"


@dataclass(frozen=True)
class Budget:
    """How big a run is. ``recipe_epochs`` is every candidate's training (lr ×0.1 at 75 % and
    92 % of it, as cpu_tiny's 12-epoch recipe); the search sizes override the search config."""

    size: str
    train_images: int
    val_images: int
    random_k: int
    seeds: int
    recipe_epochs: int
    search_epochs: int
    warmup_epochs: int
    num_trials: int
    trial_epochs: int
    strategies: tuple[str, ...] = ("darts", "darts2", "gumbel", "spos", "random", "evolution",
                                   "prune_rate")


BUDGETS = {
    "smoke": Budget("64x48", 32, 16, 2, 1, 1, 1, 0, 2, 1),
    "small": Budget("128x96", 400, 100, 8, 2, 12, 4, 1, 6, 6, (
        "darts", "darts2", "gumbel", "spos", "random", "evolution", "prune_rate",
        "darts-plain", "darts-warmup", "darts-cap0", "darts-stop", "darts-w0.5-0.029g",
        "darts-plain-w0.5-0.029g")),
    "full": Budget("128x96", 1000, 200, 20, 3, 30, 8, 2, 20, 5),
}

#: the space with half widths too, searched under goal 2's cost (0.5× hrnet_tiny at 128×96)
_HALF_WIDTHS_AT_GOAL2_COST = ["space.backbone.width_multipliers", "[0.5,0.75,1.0]",
                              "search.goal.objective", "flops_constraint",
                              "search.goal.target_gflops", "0.029"]

#: strategy names the benchmark knows: a registered strategy, or a remedy variant of one
#: (strategy, config overrides) — compared side by side to pick the default
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "darts": ("darts", []),
    "darts2": ("darts2", []),
    "gumbel": ("gumbel", []),
    "spos": ("spos", []),
    "random": ("random", []),
    "evolution": ("evolution", []),
    "prune_rate": ("prune_rate", []),
    # remedies of the collapse to parameter-free operations
    "darts-plain": ("darts", ["search.collapse.max_param_free", "-1"]),  # no cap
    "darts-warmup": ("darts", ["search.warmup_epochs", "HALF"]),  # weight warm-up: half the epochs
    "darts-cap1": ("darts", ["search.collapse.max_param_free", "1"]),  # P-DARTS: ≤ 1 parameter-free op
    "darts-cap0": ("darts", ["search.collapse.max_param_free", "0"]),
    "darts-stop": ("darts", ["search.collapse.stop", "0.6"]),  # DARTS+: stop at 2 of 3 parts
    # the hardware-aware objective on top of the cap: a 0.05 GFLOPs budget (128×96)
    "darts-cap1-0.05g": ("darts", ["search.collapse.max_param_free", "1", "search.goal.objective",
                                   "flops_constraint", "search.goal.target_gflops", "0.05"]),
    # goal 2's cost (≤ 0.5× hrnet_tiny's 0.0584 GFLOPs) is out of the demo space's reach (the
    # cheapest of 40 random draws is 0.58×): the space with half widths too, and that budget,
    # with the cap and without it (the budget may then keep parameter-free operations)
    "darts-w0.5-0.029g": ("darts", ["search.collapse.max_param_free", "1", *_HALF_WIDTHS_AT_GOAL2_COST]),
    "darts-plain-w0.5-0.029g": ("darts", ["search.collapse.max_param_free", "-1",
                                          *_HALF_WIDTHS_AT_GOAL2_COST]),
}


@dataclass
class Run:
    """One trained candidate."""

    group: str  # random | strategy | baseline
    name: str
    seed: int | None
    ap: float = float("nan")
    gflops: float = float("nan")
    params: int = 0
    search_s: float = 0.0
    train_s: float = 0.0
    recipe: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def entry(self) -> dict[str, Any]:
        return {"ap": self.ap, "gflops": self.gflops, "params": self.params,
                "seed": self.seed, "search_s": round(self.search_s, 1),
                "train_s": round(self.train_s, 1), "recipe": self.recipe, **self.extra}


class Steps:
    """Runs the commands' ``main`` in this process, their output into ``OUT/logs/NAME.log``."""

    def __init__(self, out: Path) -> None:
        self.logs = out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def __call__(self, name: str, main: Callable[[list[str]], int], argv: list[str]) -> float:
        log = self.logs / f"{name}.log"
        t0 = time.time()
        with open(log, "w") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
            try:
                rc = main(argv)
            except SystemExit as err:  # argparse
                rc = err.code if isinstance(err.code, int) else 1
        seconds = time.time() - t0
        if rc:
            tail = log.read_text()[-3000:]
            raise SystemExit(f"{name} failed (exit {rc}); log {log}:\n{tail}")
        print(f"  {name:<28} {seconds:6.0f} s", flush=True)
        return seconds


def _recipe_overrides(budget: Budget, root: Path) -> list[str]:
    e = budget.recipe_epochs
    steps = sorted({max(1, round(e * 0.75)), max(1, round(e * 11 / 12))}) if e > 2 else []
    return ["dataset.root", str(root), "model.input_size", budget.size, "train.epochs", str(e),
            "train.lr_steps", json.dumps(steps), "seed", "0"]


def _search_overrides(budget: Budget, root: Path, seed: int, extra: list[str]) -> list[str]:
    over = ["dataset.root", str(root), "model.input_size", budget.size, "seed", str(seed),
            "search.epochs", str(budget.search_epochs),
            "search.warmup_epochs", str(budget.warmup_epochs),
            "search.num_trials", str(budget.num_trials),
            "search.trial_epochs", str(budget.trial_epochs)]
    extra = [str(max(1, budget.search_epochs // 2)) if v == "HALF" else v for v in extra]
    return over + extra


def _train(steps: Steps, run: Run, out: Path, recipe: list[str], arch: Path | None = None,
           model: str | None = None) -> Run:
    argv = ["--cfg", str(RECIPE_CFG), "--out", str(out), "--no-progress", *recipe]
    argv += ["--arch", str(arch)] if arch else ["--model", str(model)]
    tag = run.name + (f"_s{run.seed}" if run.seed is not None else "")
    run.train_s = steps(f"train_{tag}", train_derived.main, argv)
    metrics = json.loads((out / "metrics.json").read_text())
    run.ap = float(metrics["best"]) if metrics["best"] is not None else float("nan")
    run.recipe = {**metrics.get("recipe", {}), "epochs_trained": len(metrics["epochs"]),
                  "world_size": metrics.get("world_size")}
    return run


def _cost(run: Run, network: torch.nn.Module, size: tuple[int, int]) -> None:
    report = param_flop_report(network, size)
    run.gflops, run.params = round(report["gflops"], 5), int(report["params"])


def _prune(steps: Steps, arch: Path, derived: Path, tag: str) -> float:
    return steps(f"prune_{tag}", prune_cli.main, ["--arch", str(arch), "--out", str(derived)])


def _random_archs(budget: Budget, root: Path, out: Path) -> list[Path]:
    cfg = load_config(SEARCH_CFG, _search_overrides(budget, root, 0, []))
    labels = build(cfg.space, cfg.dataset.name).simplify()
    paths = []
    for k, (choices, _) in enumerate(random_networks(
            lambda ch: build_network(spec_from_choices(cfg, ch)), labels, budget.random_k,
            RANDOM_SEED)):
        path = out / "random" / f"{k:02d}" / "arch.json"
        save_arch(path, ArchFile(cfg, choices, "search", {}, {"strategy": "uniform sample"}))
        paths.append(path)
    return paths


def _plain_head_arch(budget: Budget, root: Path, out: Path) -> Path:
    cfg = load_config(SEARCH_CFG, _search_overrides(budget, root, 0, []) + [
        "space.head", "plain", "space.backbone.width_multipliers", "[]", "name", "plain_head"])
    path = out / "baselines" / "plain_head.json"
    save_arch(path, ArchFile(cfg, {}, "derived", {}, {"baseline": "plain head"}))
    return path


def _kendall_tau(budget: Budget, root: Path, out: Path, randoms: list[Run],
                 derived: list[Path], supernet: Path) -> tuple[float, float, list[dict]]:
    """τ between the supernet's score of each random architecture (inherited weights, BN
    recalibrated) and its stand-alone AP: by validation loss (negated), and by AP."""
    from scipy.stats import kendalltau

    cfg = load_config(RECIPE_CFG, _recipe_overrides(budget, root))
    scores = []
    for k, path in enumerate(derived):
        network = inherited_network(load_arch(path), str(supernet))
        recalibrate_bn(network, cfg, batches=8)
        with open(out / "logs" / f"rank_{k:02d}.log", "w") as f, contextlib.redirect_stdout(f), \
                contextlib.redirect_stderr(f):
            result = evaluate_model(cfg, network, out / "ranking" / f"{k:02d}", progress=False)
        scores.append({"ap": float(result["metrics"].get("AP", float("nan"))),
                       "loss": float(result["metrics"].get("loss", float("nan")))})
    stand_alone = [r.ap for r in randoms]

    def tau(values: list[float]) -> float:
        if len(values) < 2 or len(set(values)) < 2 or not all(map(math.isfinite, values)):
            return float("nan")  # undefined: a constant score ranks nothing
        return float(kendalltau(values, stand_alone).statistic)

    return tau([-s["loss"] for s in scores]), tau([s["ap"] for s in scores]), scores


def _row(run: Run) -> list[Any]:
    return [run.group, run.name, "" if run.seed is None else run.seed, f"{run.ap:.4f}",
            f"{run.gflops:.4f}", f"{run.params / 1e6:.3f}",
            f"{run.search_s:.0f}" if run.search_s else "", f"{run.train_s:.0f}"]


def _plot(path: Path, randoms: list[Run], strategies: dict[str, list[Run]],
          baselines: dict[str, Run], default: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    ax.scatter([r.gflops for r in randoms], [r.ap for r in randoms], c="lightgray",
               edgecolors="gray", label="random architectures", zorder=1)
    markers = "os^vD<>pP*Xh"
    for i, (name, runs) in enumerate(strategies.items()):
        ax.scatter([r.gflops for r in runs], [r.ap for r in runs], marker=markers[i % 12],
                   s=80 if name == default else 45, label=name + (" (default)" if name == default
                                                                   else ""), zorder=3)
    for name, run in baselines.items():
        ax.scatter([run.gflops], [run.ap], marker="*", s=160, edgecolors="black", label=name,
                   zorder=4)
    ax.set_xlabel("GFLOPs")
    ax.set_ylabel("AP (synthetic COCO val, flip test)")
    ax.set_title("Searched vs random architectures, same training recipe")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def _std(values: list[float]) -> float:
    """The sample standard deviation (0 for a single value): the table's spread and the goal's."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _ap_summary(runs: list[Run]) -> str:
    """``mean ± std`` of the runs' AP (the mean alone for a single run)."""
    aps = [r.ap for r in runs]
    return f"{statistics.mean(aps):.4f}" + (f" ± {_std(aps):.4f}" if len(aps) > 1 else "")


def _goals(default: list[Run], randoms: list[Run], baselines: dict[str, Run]) -> list[str]:
    aps = [r.ap for r in randoms]
    mean, std = statistics.mean(aps), _std(aps)
    ap = statistics.mean(r.ap for r in default)
    gflops = max(r.gflops for r in default)
    big = max(r.gflops for r in randoms)
    tiny = baselines["hrnet_tiny"]
    ok1 = ap >= mean + std and gflops <= big
    ok2 = ap >= tiny.ap and gflops <= 0.5 * tiny.gflops
    return [f"default vs random: AP {ap:.4f} (mean of seeds) vs random mean + 1 std "
            f"{mean:.4f} + {std:.4f} = {mean + std:.4f} ({ap - mean - std:+.4f}); GFLOPs {gflops:.4f}"
            f" vs largest random {big:.4f}: {'met' if ok1 else 'MISSED'}",
            f"default vs hrnet_tiny: AP {ap:.4f} vs {tiny.ap:.4f} ({ap - tiny.ap:+.4f}); GFLOPs "
            f"{gflops:.4f} = {gflops / tiny.gflops:.2f}× (≤ 0.5×): {'met' if ok2 else 'MISSED'}"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", choices=list(BUDGETS), default="small")
    p.add_argument("--out", default="runs/search_quality")
    p.add_argument("--root", help="synthetic COCO data (default: OUT/data, written once)")
    p.add_argument("--strategies", help="comma-separated names (default: the budget's list); "
                   "known: " + ", ".join(VARIANTS))
    p.add_argument("--seeds", type=int, help="search seeds per strategy (default: the budget's)")
    p.add_argument("--random", type=int, help="random architectures K (default: the budget's)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true", help="last line: the summary as JSON")
    args = p.parse_args(argv)
    budget = BUDGETS[args.budget]
    if args.seeds:
        budget = Budget(**{**budget.__dict__, "seeds": args.seeds})
    if args.random:
        budget = Budget(**{**budget.__dict__, "random_k": args.random})
    names = args.strategies.split(",") if args.strategies else list(budget.strategies)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        p.error(f"--strategies: unknown {unknown}; known: {', '.join(VARIANTS)}")
    default = SEARCH_STRATEGY
    if "prune_rate" in names and default not in names:
        names.insert(0, default)  # prune_rate prunes the default strategy's network
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric", "nni"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(args.root) if args.root else out / "data"
    if not (root / "annotations" / "person_keypoints_val2017.json").is_file():
        write_coco(root, budget.train_images, budget.val_images, seed=0)
    start = time.time()
    steps = Steps(out)
    recipe = _recipe_overrides(budget, root)
    size = tuple(int(v) for v in budget.size.split("x"))
    print(f"search quality, budget {args.budget}: {budget.size}, recipe {budget.recipe_epochs} "
          f"epochs, {budget.random_k} random architectures, strategies {', '.join(names)} × "
          f"{budget.seeds} seeds", flush=True)

    print("baselines", flush=True)
    baselines: dict[str, Run] = {}
    run = _train(steps, Run("baseline", "hrnet_tiny", None), out / "baselines" / "hrnet_tiny",
                 recipe, model="hrnet_tiny")
    _cost(run, build_network(spec_from_model("hrnet_tiny", "coco", "benchmark")), size)
    baselines["hrnet_tiny"] = run
    plain = _plain_head_arch(budget, root, out)
    run = _train(steps, Run("baseline", "plain_head", None), out / "baselines" / "plain_head",
                 recipe, arch=plain)
    _cost(run, build_network(spec_from_choices(load_arch(plain).config, {})), size)
    baselines["plain_head"] = run

    print(f"{budget.random_k} random architectures", flush=True)
    randoms: list[Run] = []
    random_derived: list[Path] = []
    for k, arch in enumerate(_random_archs(budget, root, out)):
        derived = arch.with_name("derived.json")
        _prune(steps, arch, derived, f"random{k:02d}")
        run = _train(steps, Run("random", f"random{k:02d}", None), arch.parent / "train",
                     recipe, arch=derived)
        metrics = load_arch(derived).metrics
        run.gflops, run.params = float(metrics["gflops"]), int(metrics["params"])
        randoms.append(run)
        random_derived.append(derived)

    strategies: dict[str, list[Run]] = {n: [] for n in names}
    for seed in range(budget.seeds):
        for name in names:
            strategy, extra = VARIANTS[name]
            print(f"{name}, seed {seed}", flush=True)
            sdir = out / "strategies" / name / f"seed{seed}"
            over = _search_overrides(budget, root, seed, extra)
            if strategy == "prune_rate":
                over += ["search.prune_rate.base_arch", str(out / "strategies" / default / f"seed{seed}" /
                                                 "derived.json")]
            t = steps(f"search_{name}_s{seed}", search_cli.main,
                      ["--cfg", str(SEARCH_CFG), "--strategy", strategy, "--out", str(sdir),
                       "--no-progress", *over])
            t += _prune(steps, sdir / "arch.json", sdir / "derived.json", f"{name}_s{seed}")
            run = _train(steps, Run("strategy", name, seed, search_s=t), sdir / "train", recipe,
                         arch=sdir / "derived.json")
            metrics = load_arch(sdir / "derived.json").metrics
            run.gflops, run.params = float(metrics["gflops"]), int(metrics["params"])
            history = [json.loads(line) for line in
                       (sdir / "history.jsonl").read_text().splitlines() if line.strip()]
            collapse = [{k: h[k] for k in ("epoch", "param_free_share", "cells_kept")}
                        for h in history if "param_free_share" in h]
            if collapse:
                run.extra["collapse"] = collapse
            strategies[name].append(run)

    tau, tau_ap, supernet_scores = float("nan"), float("nan"), []
    spos_ckpt = out / "strategies" / "spos" / "seed0" / "last.ckpt"
    if spos_ckpt.is_file() and len(randoms) > 1:
        print("ranking: SPOS supernet vs stand-alone", flush=True)
        tau, tau_ap, supernet_scores = _kendall_tau(budget, root, out, randoms, random_derived,
                                                    spos_ckpt)
        for run, score in zip(randoms, supernet_scores):
            run.extra["supernet_ap"], run.extra["supernet_loss"] = score["ap"], score["loss"]

    runs = [*baselines.values(), *randoms, *(r for rs in strategies.values() for r in rs)]
    recipes = {json.dumps({k: v for k, v in r.recipe.items()}, sort_keys=True) for r in runs}
    print(format_table(["group", "name", "seed", "AP", "GFLOPs", "params (M)", "search s",
                        "train s"], [_row(r) for r in runs]))
    summary_rows = [[name, _ap_summary(rs), f"{statistics.mean(r.gflops for r in rs):.4f}"]
                    for name, rs in [("random", randoms), *strategies.items()]]
    for name, r in baselines.items():
        summary_rows.append([name, f"{r.ap:.4f}", f"{r.gflops:.4f}"])
    print(format_table(["candidates", "AP (mean ± std)", "GFLOPs"], summary_rows))
    print(f"Kendall τ vs stand-alone AP, {len(randoms)} random architectures: SPOS supernet's "
          f"validation loss {tau:.3f}, its AP {tau_ap:.3f} (nan: undefined)")
    if default in strategies:
        for line in _goals(strategies[default], randoms, baselines):
            print(line)
    print(f"every candidate trained with one recipe: {'yes' if len(recipes) == 1 else 'NO'}; "
          f"total {time.time() - start:.0f} s")
    if len(recipes) != 1:
        print(f"recipes differ: {sorted(recipes)}", file=sys.stderr)
    _plot(out / "pareto.png", randoms, strategies, baselines, default)
    summary = {"default": default, "budget": args.budget,
               "random": [r.entry() for r in randoms],
               "strategies": {n: [r.entry() for r in rs] for n, rs in strategies.items()},
               "baselines": {n: r.entry() for n, r in baselines.items()},
               "kendall_tau": tau if math.isfinite(tau) else None,
               "kendall_tau_ap": tau_ap if math.isfinite(tau_ap) else None, "seconds": round(time.time() - start, 1)}
    tmp = out / "search_quality.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1))
    tmp.replace(out / "search_quality.json")
    print(f"wrote {out / 'search_quality.json'} and {out / 'pareto.png'}")
    if args.json:
        print(json.dumps(summary))
    return 0 if len(recipes) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
