"""Does the search find better networks than chance and than a hand design? The search-quality
benchmark, protocol v2 (issue 27).

    python -m benchmarks.search_quality --budget smoke|small|ranking|full [--out DIR] [--json]
        [--strategies NAME,...] [--default NAME] [--seeds N] [--first-seed S]
        [--train-seeds N] [--random K] [--no-baselines] [--supernets-only]

On the synthetic COCO-layout task, in the demo's space (configs/search/synthetic_tiny.yaml), with
the real commands (``strategies.search``, ``strategies.prune``, ``train_derived.py``, each run in
this process, its output in ``OUT/logs/``). **Every trained candidate is trained with the one
recipe** (configs/models/hrnet_tiny_synthetic.yaml at the budget's epochs, from scratch;
:func:`recipe_overrides`) **and training seeds 0..T-1**, and scored by its mean flip-test AP over
them (± the sample std):

- **strategies**: each strategy (and the variants of :data:`VARIANTS`) searched with search
  seeds S..S+N-1, then Prune, then the recipe's T trainings. ``prune_rate`` prunes the channels of
  the default strategy's derived network of the same seed (APRCP after the search);
  ``random@cost`` is NNI's random search **at the default strategy's cost**: trials of
  ``search.trial_epochs`` epochs until the default's search time of the same seed is spent
  (``search.max_seconds``), the best by validation AP, under the default's ``search.goal``
  (``--default darts@plain``: draws above the plain head's GFLOPs score 0 untrained, so its
  time goes to draws within the budget) in the default's space (its ``space.*`` overrides:
  ``darts-heads`` searches each part's head type too); ``random-inherit@cost`` and
  ``evolution-inherit@cost`` do the same with weight inheritance (``search.inheritance``:
  each trial after the first starts from the nearest trained trial's weights and trains half
  the trial epochs);
- **baselines**: ``hrnet_tiny``; the plain-head network on the space's backbone (3 stages, full
  widths); and the **zero-cost proxy pick**: the random architecture with the most parameters
  among :attr:`Budget.proxy_draws` draws whose GFLOPs are at most the plain head's;
- **random**: K architectures drawn uniformly from the space (their own seed,
  :data:`RANDOM_SEED`), trained alike;
- **ranking** (with K > 1; ``--budget ranking``: K = 20): Kendall τ against the K random
  architectures' stand-alone mean AP of each ranker — the SPOS and the default strategy's
  supernets of the first search seed (inherited weights, BN recalibrated, no training;
  validation loss negated, and AP) and the zero-cost proxies of :mod:`strategies.zero_cost`
  (#params, FLOPs, NASWOT, synflow).

**Comparisons** are differences of mean AP with a 95 % Welch interval, over the units of each
side: a strategy's unit is one distinct derived network (its mean over the training seeds;
search seeds that derived one network are one unit; a search that derived a network trained
earlier in the run, by any strategy, reuses its trainings rather than training it again), a
baseline's one training seed. The verdict is "better" / "worse" when the interval excludes 0,
else "no difference resolved". The goals (issue 27) compare the default strategy (``--default``;
the one ``make demo`` uses unless given) with the plain head at ≤ its GFLOPs, with random search at equal cost, and
with ``hrnet_tiny`` at ≤ 0.5× its GFLOPs.

Prints the per-candidate table, the summary (mean ± std, GFLOPs), the comparisons and the goals;
writes ``OUT/search_quality.json`` (every candidate's per-seed APs and the recipe its training
recorded, the comparisons, the thread count) and the Pareto plot ``OUT/pareto.png`` (mean AP
± std vs GFLOPs). With ``--json`` the last line is that summary. At a fixed thread count a seed
gives the same AP in this process and as a separate process (benchmarks/seed_spread.py checks
it); the JSON records ``threads``.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import math
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent

import torch
from scipy import stats

from benchmarks.measure import machine
from search_space.counting import param_flop_report
from search_space.errors import UserInputError
from search_space.supernet import build
from strategies import prune as prune_cli
from strategies import search as search_cli
from strategies.goal_target import plain_head_config
from strategies.latency import random_networks
from strategies.prune import inherited_network
from strategies.registry import STRATEGIES
from strategies.zero_cost import PROXIES, score_all
from trainers import train_derived
from trainers.network.arch_file import ArchFile, load_arch, save_arch
from trainers.engine.bn_recalibration import recalibrate_bn
from trainers.network.build import build_network, spec_from_arch, spec_from_choices, \
    spec_from_model
from trainers.config.experiment import load_config
from trainers.cli import LIGHTNING_LOGGERS
from trainers.data.synthetic import write_coco
from visualize.loop import SEARCH_STRATEGY
from trainers.engine.fit import evaluate_model
from trainers.report import format_table

SEARCH_CFG = REPO / "configs" / "search" / "synthetic_tiny.yaml"
#: the random architectures' draws: apart from the search seeds (SPOS's path ranking and the
#: multi-trial samplers of seed s draw from RandomState(s) too)
RANDOM_SEED = 1000
#: the zero-cost proxy pick's draws
PROXY_SEED = 2000
RECIPE_CFG = REPO / "configs" / "models" / "hrnet_tiny_synthetic.yaml"


@dataclass(frozen=True)
class Budget:
    """How big a run is. ``recipe_epochs`` and ``train_seeds``: every candidate's training;
    ``seeds``: search seeds per strategy; the search sizes override the search config."""

    size: str
    train_images: int
    val_images: int
    random_k: int
    seeds: int
    train_seeds: int
    recipe_epochs: int
    search_epochs: int
    warmup_epochs: int
    num_trials: int
    trial_epochs: int
    proxy_draws: int
    strategies: tuple[str, ...]


#: make demo's search, the benchmark's default: SEARCH_STRATEGY on the demo's search config, the
#: tiny space under a hard budget of the plain head's GFLOPs (tests check the two agree)
DEFAULT_VARIANT = f"{SEARCH_STRATEGY}@plain"

ALL_STRATEGIES = ("darts", "random@cost", "darts2", "gumbel", "spos", "random", "evolution",
                  "prune_rate")

BUDGETS = {
    # the suite's end-to-end run (≈ 2 min): the goals' candidates, SPOS's τ, APRCP after DARTS
    "smoke": Budget("64x48", 32, 16, 2, 1, 2, 1, 1, 0, 2, 1, 4,
                    (DEFAULT_VARIANT, "random@cost", "spos", "prune_rate")),
    # the goals' verdicts: the default, random search at its cost, the baselines
    "small": Budget("128x96", 400, 100, 0, 5, 3, 24, 4, 1, 1000, 4, 40,
                    (DEFAULT_VARIANT, "random@cost")),
    # Kendall τ of the rankers over 20 architectures' 3-seed means
    "ranking": Budget("128x96", 400, 100, 20, 1, 3, 24, 4, 1, 6, 4, 40, ("darts", "spos")),
    "full": Budget("128x96", 1000, 200, 20, 5, 3, 36, 8, 2, 1000, 5, 100, ALL_STRATEGIES),
}


def _hard_budget(target_gflops: str) -> list[str]:
    """The overrides of a GFLOPs budget (``flops_constraint``; the Prune step makes it hard,
    strategies.budget) of ``target_gflops``: a number, or a placeholder the run fills."""
    return ["search.goal.objective", "flops_constraint", "search.goal.target_gflops",
            target_gflops]


#: the space with half widths too (the demo's are 0.75/1.0)
_HALF_WIDTHS = ["space.backbone.width_multipliers", "[0.5,0.75,1.0]"]
#: the space with half widths too, searched under goal 2's cost (0.5× hrnet_tiny at 128×96)
_HALF_WIDTHS_AT_GOAL2_COST = [*_HALF_WIDTHS, *_hard_budget("0.029")]

#: goal 1's cost: a hard budget of PLAIN, the plain head's GFLOPs measured in the run
_AT_PLAIN = _hard_budget("PLAIN")

#: weight inheritance with half the trial epochs for a trial that inherited
_INHERIT_HALF = ["search.inheritance.enabled", "true", "search.inheritance.epochs", "HALF_TRIAL"]

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
    # random search at the default's cost: COST is the default's search seconds, same seed
    "random@cost": ("random", ["search.max_seconds", "COST"]),
    # weight inheritance (EvoPose2D): each trial after the first starts from the nearest trained
    # trial's weights and trains half the trial epochs, so the same cost buys more trials
    "random-inherit@cost": ("random", ["search.max_seconds", "COST", *_INHERIT_HALF]),
    "evolution-inherit@cost": ("evolution", ["search.max_seconds", "COST", *_INHERIT_HALF]),
    # the default under goal 1's cost: PLAIN is the plain head's GFLOPs (flops_constraint;
    # the Prune step makes it hard, strategies.budget)
    "darts@plain": ("darts", _AT_PLAIN),
    # the head type per part searched too (space.search_head_type): fabric or plain per part
    "darts-heads": ("darts", ["space.search_head_type", "true"]),
    "darts-heads@plain": ("darts", ["space.search_head_type", "true", *_AT_PLAIN]),
    # the budget filled at Prune (search.goal.fill: TF-NAS's elasticity scaling back toward the
    # target), with and without the head type searched
    "darts-fill@plain": ("darts", [*_AT_PLAIN, "search.goal.fill", "true"]),
    "darts-heads-fill@plain": ("darts", ["space.search_head_type", "true", *_AT_PLAIN,
                                         "search.goal.fill", "true"]),
    # remedies of the collapse to parameter-free operations
    "darts-plain": ("darts", ["search.collapse.max_param_free", "-1"]),  # no cap
    "darts-warmup": ("darts", ["search.warmup_epochs", "HALF"]),  # weight warm-up: half the epochs
    "darts-cap1": ("darts", ["search.collapse.max_param_free", "1"]),  # P-DARTS: ≤ 1 parameter-free op
    "darts-cap0": ("darts", ["search.collapse.max_param_free", "0"]),
    "darts-stop": ("darts", ["search.collapse.stop", "0.6"]),  # DARTS+: stop at 2 of 3 parts
    # β-DARTS: λ 0.005, scaled to the heatmap MSE (≈ 0.005 here, where β-DARTS's λ was set
    # against a classification cross-entropy of order 1)
    "darts-beta": ("darts", ["search.collapse.beta_decay", "0.005"]),
    # PC-DARTS's partial channel connections: the mixed operations see a quarter of the channels
    "darts-pc": ("darts", ["space.cell_config.partial_channels", "4"]),
    # DARTS-'s auxiliary skip connection, β 1 → 0 over the search (the paper's setting)
    "darts-minus": ("darts", ["search.collapse.aux_skip", "1"]),
    # the remedies on top of the default, darts@plain (the same hard budget); PC-DARTS has no
    # such variant: its supernet's operations run 1/K wide, so the relaxation's expected cost is
    # not the derived network's, and the config refuses partial channels under a GFLOPs goal
    "darts-beta@plain": ("darts", ["search.collapse.beta_decay", "0.005", *_AT_PLAIN]),
    "darts-minus@plain": ("darts", ["search.collapse.aux_skip", "1", *_AT_PLAIN]),
    # PoseNFS's edge mixing, n · Σ softmax(α)·o(x): the supernet's operations at the weight the
    # derived network keeps (strategies.edge_mixing)
    "darts-pnfs@plain": ("darts", ["search.edge_mixing", "pnfs", *_AT_PLAIN]),
    # the hardware-aware objective on top of the cap: a 0.05 GFLOPs budget (128×96)
    "darts-cap1-0.05g": ("darts", ["search.collapse.max_param_free", "1",
                                   *_hard_budget("0.05")]),
    # goal 2's cost (≤ 0.5× hrnet_tiny's 0.0584 GFLOPs) is out of the demo space's reach (the
    # cheapest of 40 random draws is 0.58×): the space with half widths too, and that budget,
    # with the cap and without it (the budget may then keep parameter-free operations)
    "darts-w0.5-0.029g": ("darts", ["search.collapse.max_param_free", "1", *_HALF_WIDTHS_AT_GOAL2_COST]),
    "darts-plain-w0.5-0.029g": ("darts", ["search.collapse.max_param_free", "-1",
                                          *_HALF_WIDTHS_AT_GOAL2_COST]),
    # goal 3's cost under protocol 2: the space with half widths too, the default's collapse
    # rules, and a hard budget of TINY_HALF (half hrnet_tiny's GFLOPs, measured in the run); a
    # network within it is within the plain head's too, so one default can meet goals 1–3
    "darts-w0.5@half-tiny": ("darts", [*_HALF_WIDTHS, *_hard_budget("TINY_HALF")]),
}


def console_warnings_only() -> None:
    """The benchmark's console shows warnings and errors only: the commands it runs set our
    loggers to INFO, and their records (in ``OUT/logs/``) must not also reach the console
    through the root handler."""
    logging.basicConfig(stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        if not getattr(handler, "_posenas", False):
            handler.setLevel(logging.WARNING)


def goal_overrides(overrides: list[str]) -> list[str]:
    """The ``search.goal.*`` and ``space.*`` key/value pairs of a variant's overrides (what
    random@cost takes over from the default it is compared with: the same goal in the same
    space)."""
    pairs = zip(overrides[::2], overrides[1::2])
    return [x for key, value in pairs if key.startswith(("search.goal.", "space."))
            for x in (key, value)]


@dataclass
class Candidate:
    """One architecture, trained with every training seed."""

    group: str  # baseline | random | strategy
    name: str
    search_seed: int | None
    aps: list[float] = field(default_factory=list)  # one per training seed
    gflops: float = float("nan")
    params: int = 0
    search_s: float = 0.0
    train_s: float = 0.0
    recipe: dict[str, Any] = field(default_factory=dict)  # as the trainings recorded it
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ap(self) -> float:
        return statistics.fmean(self.aps) if self.aps else float("nan")

    @property
    def std(self) -> float:
        return statistics.stdev(self.aps) if len(self.aps) > 1 else 0.0

    def entry(self) -> dict[str, Any]:
        return {"ap": self.ap, "ap_std": self.std, "aps": self.aps, "gflops": self.gflops,
                "params": self.params, "search_seed": self.search_seed,
                "search_s": round(self.search_s, 1), "train_s": round(self.train_s, 1),
                "recipe": self.recipe, **self.extra}


class Steps:
    """Runs the commands' ``main`` in this process, their output into ``OUT/logs/NAME.log``.
    ``resume``: searches and trainings already finished in ``OUT`` with the same inputs are
    read back, not rerun (:func:`training_key`)."""

    def __init__(self, out: Path, resume: bool = False) -> None:
        self.out = out
        self.logs = out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.resume = resume

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
        print(f"  {name:<32} {seconds:6.0f} s", flush=True)
        return seconds


def recipe_overrides(size: str, epochs: int, root: Path, seed: int = 0) -> list[str]:
    """The one training recipe every candidate gets (configs/models/hrnet_tiny_synthetic.yaml at
    ``size`` and ``epochs``, lr × 0.1 at 75 % and 92 % of them, as cpu_tiny's 12-epoch recipe),
    as ``train_derived.py`` overrides; ``seed``: the training seed (weights, data order,
    augmentation)."""
    steps = sorted({max(1, round(epochs * 0.75)), max(1, round(epochs * 11 / 12))}) \
        if epochs > 2 else []
    return ["dataset.root", str(root), "model.input_size", size, "train.epochs", str(epochs),
            "train.lr_steps", json.dumps(steps), "seed", str(seed)]


def training_key(argv: list[str], arch: Path | None, out: Path | None = None) -> str:
    """What a training's result depends on, as a sha256: its command line (recipe, seed, output
    folder), the bytes of its architecture file, and the machine (:func:`benchmarks.measure.machine`:
    another CPU's kernels give another AP for the same seed). With ``out`` (the run's ``--out``)
    the paths under it and under this checkout are hashed relative to them, so a run folder
    moved, or resumed from another checkout, keeps its keys; without it, the absolute paths
    (the keys written before 2026-12-07, still read back: :func:`_marked_step`)."""
    def portable(text: str) -> str:
        if out is None:
            return text
        return text.replace(str(out), "<out>").replace(str(REPO), "<repo>")

    digest = hashlib.sha256(json.dumps([[portable(a) for a in argv], machine()],
                                       sort_keys=True).encode())
    if arch is not None:
        data = Path(arch).read_bytes()
        if out is not None:
            data = data.replace(str(out).encode(), b"<out>").replace(str(REPO).encode(),
                                                                     b"<repo>")
        digest.update(data)
    return digest.hexdigest()


#: the file beside a finished training's metrics.json: its :func:`training_key` and seconds
TRAINING_MARK = "benchmark_training.json"


def best_ap(run: Path) -> float:
    """The best validation AP ``train_derived.py`` recorded in ``run/metrics.json`` (nan when
    no epoch scored)."""
    best = json.loads((run / "metrics.json").read_text())["best"]
    return float(best) if best is not None else float("nan")


def _search_overrides(budget: Budget, root: Path, seed: int, extra: list[str],
                      fill: dict[str, str] | None = None) -> list[str]:
    over = ["dataset.root", str(root), "model.input_size", budget.size, "seed", str(seed),
            "search.epochs", str(budget.search_epochs),
            "search.warmup_epochs", str(budget.warmup_epochs),
            "search.num_trials", str(budget.num_trials),
            "search.trial_epochs", str(budget.trial_epochs)]
    # HALF: darts-warmup's warm-up, below search.epochs (none in a 1-epoch search)
    fill = {"HALF": str(budget.search_epochs // 2),
            "HALF_TRIAL": str(max(1, budget.trial_epochs // 2)), **(fill or {})}
    return over + [fill.get(v, v) for v in extra]


def _train(steps: Steps, cand: Candidate, out: Path, budget: Budget, root: Path,
           arch: Path | None = None, model: str | None = None) -> Candidate:
    """Train ``cand`` (an arch file or a named model) with every training seed, into
    ``out/seedT``."""
    tag = cand.name + (f"_s{cand.search_seed}" if cand.search_seed is not None else "")
    seeds: list[int | None] = []
    for t in range(budget.train_seeds):
        where = out / f"seed{t}"
        argv = ["--cfg", str(RECIPE_CFG), "--out", str(where), "--no-progress",
                *recipe_overrides(budget.size, budget.recipe_epochs, root, t)]
        argv += ["--arch", str(arch)] if arch else ["--model", str(model)]
        cand.train_s += _marked_step(steps, f"train_{tag}_t{t}", train_derived.main, argv,
                                     where / TRAINING_MARK, _keys(steps, argv, arch),
                                     [where / "metrics.json"])
        cand.aps.append(best_ap(where))
        metrics = json.loads((where / "metrics.json").read_text())
        recipe = {**metrics.get("recipe", {}), "epochs_trained": len(metrics["epochs"]),
                  "world_size": metrics.get("world_size")}
        seeds.append(recipe.pop("seed", None))
        cand.recipe = {**recipe, "seeds": seeds}  # the seeds aside, every training's alike
    return cand


#: the file beside a finished search's arch.json: its :func:`training_key` and seconds
SEARCH_MARK = "benchmark_search.json"


def _search(steps: Steps, name: str, sdir: Path, argv: list[str]) -> float:
    """Run ``strategies.search`` with ``argv`` into ``sdir``; its seconds. ``--resume`` reads
    back a search finished with the same command line on this machine, seconds included: a
    search stopped by time (random@cost's ``search.max_seconds``, set from the default's
    seconds) run again is another draw (another number of trials, maybe another pick), so
    rerunning it would throw away the trainings of the pick it made."""
    return _marked_step(steps, name, search_cli.main, argv, sdir / SEARCH_MARK,
                        _keys(steps, argv, None), [sdir / "arch.json", sdir / "history.jsonl"])


def _keys(steps: Steps, argv: list[str], arch: Path | None) -> tuple[str, str]:
    """A step's :func:`training_key`, portable and as the keys before it were."""
    return training_key(argv, arch, steps.out), training_key(argv, arch)


def _marked_step(steps: Steps, name: str, main: Callable[[list[str]], int], argv: list[str],
                 mark: Path, keys: tuple[str, ...], outputs: list[Path]) -> float:
    """``steps(name, main, argv)``'s seconds, then ``mark`` = ``{"key": keys[0], "seconds"}``;
    with ``--resume``, a ``mark`` holding one of ``keys`` beside all of ``outputs`` is read back
    instead (its seconds)."""
    done = json.loads(mark.read_text()) if steps.resume and mark.is_file() else {}
    if done.get("key") in keys and all(path.is_file() for path in outputs):
        print(f"  {name:<32} reused ({done['seconds']:.0f} s)", flush=True)
        return float(done["seconds"])
    mark.unlink(missing_ok=True)
    seconds = steps(name, main, argv)
    mark.write_text(json.dumps({"key": keys[0], "seconds": round(seconds, 1)}))
    return seconds


def _cost(cand: Candidate, network: torch.nn.Module, size: tuple[int, int]) -> None:
    report = param_flop_report(network, size)
    cand.gflops, cand.params = round(report["gflops"], 5), int(report["params"])


def _derived_cost(cand: Candidate, derived: Path) -> None:
    arch = load_arch(derived)
    cand.gflops, cand.params = float(arch.metrics["gflops"]), int(arch.metrics["params"])
    cand.extra["architecture"] = architecture_id(arch)


def trained_before(cand: Candidate, earlier: list[Candidate]) -> Candidate | None:
    """The earlier search (any strategy's, any seed's) that derived ``cand``'s network
    (:func:`architecture_id`), or ``None``. Its trainings are ``cand``'s: every candidate trains
    with one recipe, and the same network, recipe and training seed give the same AP on one
    machine (the seed-spread benchmark checks it across processes; the head-type pilot's two
    seeds of one network, trained apart, gave the same three APs to the last digit), so
    training it again only spends the budget."""
    key = cand.extra.get("architecture")
    return next((c for c in earlier if key and c.extra.get("architecture") == key and c.aps),
                None)


def reuse_training(cand: Candidate, same: Candidate) -> None:
    """``cand`` takes ``same``'s APs and recipe (no training time of its own) and says so."""
    cand.aps, cand.recipe = list(same.aps), dict(same.recipe)
    cand.extra["trainings_of"] = {"strategy": same.name, "search_seed": same.search_seed}


def architecture_id(arch: ArchFile) -> str:
    """A derived network's identity: the sha256 (first 12 digits) of its frozen network's
    modules and tensor shapes. Not of its choices: choices can differ and build one network (a
    cell's input slots that stand in for the same route, the fabric labels of a part with a
    plain head)."""
    network = build_network(spec_from_arch(arch), device="meta")
    shapes = sorted((k, list(v.shape)) for k, v in network.state_dict().items())
    return hashlib.sha256((repr(network) + json.dumps(shapes)).encode()).hexdigest()[:12]


def keep_unchanged(path: Path, write: Callable[[], Any]) -> Any:
    """``write()`` (which writes the arch file ``path``); when ``path`` held the same
    architecture and config before, as loaded now (defaults filled in), its older bytes are put
    back. A version that adds a config field writes the same file differently, and the
    trainings that read it (:func:`training_key` hashes its bytes) would run again on
    ``--resume``."""
    before = path.read_bytes() if path.is_file() else None
    result = write()
    if before is not None and path.is_file() and path.read_bytes() != before:
        with tempfile.TemporaryDirectory() as tmp:
            older = Path(tmp) / path.name
            older.write_bytes(before)
            try:
                same = load_arch(older).to_dict() == load_arch(path).to_dict()
            except UserInputError:  # the older file is not one this version reads
                same = False
        if same:
            path.write_bytes(before)
    return result


def _prune(steps: Steps, arch: Path, derived: Path, tag: str) -> float:
    return keep_unchanged(derived, lambda: steps(f"prune_{tag}", prune_cli.main,
                                                 ["--arch", str(arch), "--out", str(derived)]))


def _space_config(budget: Budget, root: Path):
    return load_config(SEARCH_CFG, _search_overrides(budget, root, 0, []))


def _random_archs(budget: Budget, root: Path, out: Path) -> list[Path]:
    cfg = _space_config(budget, root)
    labels = build(cfg.space, cfg.dataset.name).simplify()
    paths = []
    for k, (choices, _) in enumerate(random_networks(
            lambda ch: build_network(spec_from_choices(cfg, ch)), labels, budget.random_k,
            RANDOM_SEED)):
        path = out / "random" / f"{k:02d}" / "arch.json"
        save_arch(path, ArchFile(cfg, choices, "search", {}, {"strategy": "uniform sample"}))
        paths.append(path)
    return paths


def proxy_pick(budget: Budget, root: Path, out: Path, max_gflops: float) -> tuple[Path, dict]:
    """The zero-cost proxy baseline: of ``budget.proxy_draws`` uniform draws from the space
    (:data:`PROXY_SEED`), the one with the most parameters whose GFLOPs (at the budget's input
    size) are at most ``max_gflops`` (the cheapest draw when none is). Writes its arch file."""
    cfg = _space_config(budget, root)
    size = tuple(int(v) for v in budget.size.split("x"))
    labels = build(cfg.space, cfg.dataset.name).simplify()
    draws = []
    for choices, network in random_networks(lambda ch: build_network(spec_from_choices(cfg, ch)),
                                            labels, budget.proxy_draws, PROXY_SEED):
        report = param_flop_report(network, size)
        draws.append((choices, report["params"], report["gflops"]))
    under = [d for d in draws if d[2] <= max_gflops]
    choices, params, gflops = max(under, key=lambda d: d[1]) if under else \
        min(draws, key=lambda d: d[2])
    info = {"draws": len(draws), "under_budget": len(under), "max_gflops": max_gflops,
            "params": int(params), "gflops": round(gflops, 5)}
    path = out / "baselines" / "proxy" / "arch.json"
    save_arch(path, ArchFile(cfg, choices, "search", {}, {"strategy": "zero-cost proxy: "
                                                          "most parameters under the budget"}))
    return path, info


def _plain_head_arch(budget: Budget, root: Path, out: Path) -> Path:
    # the plain head search.goal.target_reference names: the demo's budget is this network's
    cfg = plain_head_config(load_config(SEARCH_CFG, _search_overrides(budget, root, 0, []) +
                                        ["name", "plain_head"]), str(SEARCH_CFG))
    path = out / "baselines" / "plain_head.json"
    keep_unchanged(path, lambda: save_arch(path, ArchFile(cfg, {}, "derived", {},
                                                          {"baseline": "plain head"})))
    return path


def _supernet_scores(cfg: Any, out: Path, derived: list[Path], supernet: Path,
                     tag: str) -> list[dict[str, float]]:
    """The supernet's validation AP and loss of each architecture (``cfg``: the recipe's
    config): inherited weights, BN recalibrated on 8 training batches, no training."""
    scores = []
    for k, path in enumerate(derived):
        network = inherited_network(load_arch(path), str(supernet))
        with open(out / "logs" / f"rank_{tag}_{k:02d}.log", "w") as f, \
                contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
            recalibrate_bn(network, cfg, batches=8)
            result = evaluate_model(cfg, network, out / "ranking" / tag / f"{k:02d}",
                                    progress=False)
        scores.append({"ap": float(result["metrics"].get("AP", float("nan"))),
                       "loss": float(result["metrics"].get("loss", float("nan")))})
    return scores


def _proxy_scores(cfg: Any, derived: list[Path]) -> list[dict[str, float]]:
    """Every zero-cost proxy (strategies.zero_cost) of each architecture, untrained (initial
    weights of seed 0), on one batch of 16 augmented training crops of ``cfg`` (seed 0)."""
    from trainers.data.loader import build_loader
    from trainers.data.registry import build_dataset
    from trainers.data.topdown import normalize_images

    batch = next(iter(build_loader(build_dataset(cfg, "train"), 16, shuffle=True,
                                   num_workers=0, seed=0)))
    images = normalize_images(batch["image"], cfg.dataset.color_rgb).contiguous()
    scores = []
    for path in derived:
        torch.manual_seed(0)
        network = build_network(spec_from_arch(load_arch(path)))
        scores.append(score_all(network, images))
    return scores


def kendall_tau(scores: list[float], truth: list[float]) -> float:
    """Kendall τ-b of ``scores`` against ``truth``; nan when undefined (fewer than two values,
    a constant or a nan score ranks nothing). ±inf are ranks like any other value: the log
    synflow of a network with a dead path is −inf, the lowest score."""
    from scipy.stats import kendalltau

    if len(scores) < 2 or len(set(scores)) < 2 or any(map(math.isnan, scores)):
        return float("nan")
    return float(kendalltau(scores, truth).statistic)


def tau_interval(scores: list[float], truth: list[float], resamples: int = 1000,
                 seed: int = 0) -> tuple[float | None, float | None]:
    """95 % percentile bootstrap interval of :func:`kendall_tau` over the architectures
    (resampled with replacement; resamples where τ is undefined are dropped); ``(None, None)``
    when fewer than half of them give a τ."""
    import numpy as np

    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(resamples):
        idx = rng.integers(0, len(scores), len(scores))
        t = kendall_tau([scores[i] for i in idx], [truth[i] for i in idx])
        if not math.isnan(t):
            taus.append(t)
    if len(taus) < resamples // 2:
        return None, None
    low, high = np.percentile(taus, [2.5, 97.5])
    return float(low), float(high)


def rank_architectures(budget: Budget, root: Path, out: Path, randoms: list[Candidate],
                       derived: list[Path], supernets: dict[str, Path]) -> dict[str, Any]:
    """Kendall τ of each ranker against the architectures' stand-alone mean AP: each supernet
    (by validation loss negated, and by AP) and each zero-cost proxy. Records every score on
    the candidates (``extra``)."""
    truth = [c.ap for c in randoms]
    cfg = load_config(RECIPE_CFG, recipe_overrides(budget.size, budget.recipe_epochs, root))
    rankers: dict[str, list[float]] = {}
    for name, ckpt in supernets.items():
        scores = _supernet_scores(cfg, out, derived, ckpt, name)
        rankers[f"{name} supernet, −loss"] = [-s["loss"] for s in scores]
        rankers[f"{name} supernet, AP"] = [s["ap"] for s in scores]
        for cand, score in zip(randoms, scores):
            cand.extra[f"{name}_supernet_ap"], cand.extra[f"{name}_supernet_loss"] = \
                score["ap"], score["loss"]
    proxies = _proxy_scores(cfg, derived)
    for name in PROXIES:
        rankers[name] = [p[name] for p in proxies]
    for cand, p in zip(randoms, proxies):
        cand.extra["zero_cost"] = p
    return {name: {"tau": None if math.isnan(t := kendall_tau(v, truth)) else t,
                   **dict(zip(("low", "high"), tau_interval(v, truth)))}
            for name, v in rankers.items()}


def welch_difference(a: list[float], b: list[float], confidence: float = 0.95) -> dict[str, Any]:
    """mean(a) − mean(b) with its Welch (unequal variances) ``confidence`` interval and a
    verdict: "better" / "worse" when the interval excludes 0, else "no difference resolved".
    Two constant samples give a zero-width interval; fewer than 2 values on a side, none."""
    diff = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return {"diff": diff, "low": None, "high": None, "n": [len(a), len(b)],
                "verdict": "not enough seeds"}
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        low = high = diff
    else:
        dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
        half = stats.t.ppf(0.5 + confidence / 2, dof) * math.sqrt(va + vb)
        low, high = diff - half, diff + half
    verdict = "better" if low > 0 else "worse" if high < 0 else "no difference resolved"
    return {"diff": diff, "low": low, "high": high, "n": [len(a), len(b)], "verdict": verdict}


def distinct(cands: list[Candidate]) -> list[Candidate]:
    """``cands`` without the repeats of an architecture: search seeds that derived the same
    network trained it with the same training seeds, so a repeat is the same numbers again, not
    a second sample."""
    seen: dict[Any, Candidate] = {}
    for c in cands:
        seen.setdefault(c.extra.get("architecture", id(c)), c)
    return list(seen.values())


def units(cands: list[Candidate]) -> list[float]:
    """The values a comparison is over: a strategy's mean AP per distinct derived network (one
    per search seed unless seeds derived the same one, :func:`distinct`); a single
    architecture's AP per training seed."""
    cands = distinct(cands)
    return list(cands[0].aps) if len(cands) == 1 else [c.ap for c in cands]


def _row(c: Candidate) -> list[Any]:
    return [c.group, c.name, "" if c.search_seed is None else c.search_seed,
            f"{c.ap:.4f} ± {c.std:.4f}", " ".join(f"{v:.3f}" for v in c.aps),
            f"{c.gflops:.4f}", f"{c.params / 1e6:.3f}",
            f"{c.search_s:.0f}" if c.search_s else "", f"{c.train_s:.0f}"]


def _plot(path: Path, randoms: list[Candidate], strategies: dict[str, list[Candidate]],
          baselines: dict[str, Candidate], default: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    if randoms:
        ax.errorbar([r.gflops for r in randoms], [r.ap for r in randoms],
                    yerr=[r.std for r in randoms], fmt="o", color="gray", mfc="lightgray",
                    label="random architectures", zorder=1, capsize=2)
    markers = "os^vD<>pP*Xh"
    for i, (name, cands) in enumerate(strategies.items()):
        ax.errorbar([c.gflops for c in cands], [c.ap for c in cands],
                    yerr=[c.std for c in cands], fmt=markers[i % 12], capsize=2,
                    ms=8 if name == default else 6, zorder=3,
                    label=name + (" (default)" if name == default else ""))
    for name, c in baselines.items():
        ax.errorbar([c.gflops], [c.ap], yerr=[c.std], fmt="*", ms=14, mec="black", capsize=3,
                    label=name, zorder=4)
    ax.set_xlabel("GFLOPs")
    ax.set_ylabel("AP (synthetic COCO val, flip test): mean ± std over training seeds")
    ax.set_title("Searched vs baselines, one training recipe")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def mean_std_cell(values: list[float]) -> str:
    """A table cell: the mean ± the standard deviation of ``values`` (the mean alone for one)."""
    return f"{statistics.fmean(values):.4f}" + (f" ± {statistics.stdev(values):.4f}"
                                                if len(values) > 1 else "")


def _summary_cell(cands: list[Candidate]) -> str:
    return mean_std_cell(units(cands))


def comparisons(strategies: dict[str, list[Candidate]], baselines: dict[str, Candidate],
                default: str) -> list[dict[str, Any]]:
    """Every strategy against the default, and the default against every baseline."""
    pairs = [(default, n) for n in strategies if n != default]
    pairs += [(default, n) for n in baselines]
    groups = {**strategies, **{n: [c] for n, c in baselines.items()}}
    return [{"a": a, "b": b, **welch_difference(units(groups[a]), units(groups[b]))}
            for a, b in pairs if a in groups and groups[a] and groups[b]]


def goals(default: list[Candidate], strategies: dict[str, list[Candidate]],
          baselines: dict[str, Candidate]) -> list[dict[str, Any]]:
    """Issue 27's goals for the default strategy's derived networks: (1) better than the plain
    head, at GFLOPs ≤ its; (2) better than random search at equal cost; (3) at least
    ``hrnet_tiny``'s AP at ≤ 0.5× its GFLOPs — each by the 95 % interval of the difference."""
    gflops = max(c.gflops for c in default)
    out = []
    plain, tiny = baselines.get("plain_head"), baselines.get("hrnet_tiny")
    if plain is not None:
        d = welch_difference(units(default), units([plain]))
        out.append({"goal": "beats the plain head at ≤ its GFLOPs", **d,
                    "gflops": gflops, "gflops_bound": plain.gflops,
                    "met": d["verdict"] == "better" and gflops <= plain.gflops})
    if strategies.get("random@cost"):
        d = welch_difference(units(default), units(strategies["random@cost"]))
        out.append({"goal": "beats random search at equal cost", **d,
                    "met": d["verdict"] == "better"})
    if tiny is not None:
        d = welch_difference(units(default), units([tiny]))
        out.append({"goal": "≥ hrnet_tiny's AP at ≤ 0.5× its GFLOPs", **d, "gflops": gflops,
                    "gflops_bound": 0.5 * tiny.gflops,
                    "met": d["verdict"] == "better" and gflops <= 0.5 * tiny.gflops})
    return out


def _interval(d: dict[str, Any]) -> str:
    if d["low"] is None:
        return f"{d['diff']:+.4f} (no interval: {d['verdict']})"
    return f"{d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", choices=list(BUDGETS), default="small")
    p.add_argument("--out", default="runs/search_quality")
    p.add_argument("--root", help="synthetic COCO data (default: OUT/data, written once)")
    p.add_argument("--strategies", help="comma-separated names (default: the budget's list); "
                   "known: " + ", ".join(VARIANTS))
    p.add_argument("--seeds", type=int, help="search seeds per strategy (default: the budget's)")
    p.add_argument("--first-seed", type=int, default=0,
                   help="the first search seed (a second run on other seeds: its verdicts must "
                   "agree)")
    p.add_argument("--train-seeds", type=int, help="training seeds per candidate (default: the "
                   "budget's)")
    p.add_argument("--random", type=int, help="random architectures K (default: the budget's)")
    p.add_argument("--no-baselines", action="store_true",
                   help="skip hrnet_tiny and the zero-cost proxy pick (the plain head stays: "
                   "darts@plain's budget)")
    p.add_argument("--supernets-only", action="store_true",
                   help="search the strategies for the ranking's supernets only: no Prune, no "
                   "training of their derived networks (no comparisons, no goals)")
    p.add_argument("--default", default=DEFAULT_VARIANT, choices=list(VARIANTS),
                   help="the strategy (or variant) the goals judge and random@cost matches in "
                   f"search time and goal (default: {DEFAULT_VARIANT}, the demo's)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--resume", action="store_true",
                   help="reuse the searches and trainings a run into the same --out finished "
                   "with the same inputs on this machine")
    p.add_argument("--json", action="store_true", help="last line: the summary as JSON")
    args = p.parse_args(argv)
    budget = BUDGETS[args.budget]
    for key, value in (("seeds", args.seeds), ("train_seeds", args.train_seeds),
                       ("random_k", args.random)):
        if value is not None:
            if value < (1 if key != "random_k" else 0):
                p.error(f"--{key.replace('_', '-')}: at least {1 if key != 'random_k' else 0}")
            budget = Budget(**{**budget.__dict__, key: value})
    names = args.strategies.split(",") if args.strategies else list(budget.strategies)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        p.error(f"--strategies: unknown {unknown}; known: {', '.join(VARIANTS)}")
    default = args.default
    at_cost = [n for n in names if "COST" in VARIANTS[n][1]]
    if args.supernets_only and ({"prune_rate"} & set(names) or at_cost):
        p.error("--supernets-only: prune_rate and the @cost variants need the default's "
                "derived network")
    if ({"prune_rate"} & set(names) or at_cost) and default not in names:
        names.insert(0, default)  # they need the default strategy's network and search time
    names.sort(key=lambda n: n != default)  # the default first in each seed
    if args.no_baselines and [n for n in names if "TINY_HALF" in VARIANTS[n][1]]:
        p.error("--no-baselines: the @half-tiny variants' budget is half hrnet_tiny's GFLOPs, "
                "measured on the hrnet_tiny baseline")
    torch.set_num_threads(args.threads)
    console_warnings_only()
    for name in (*LIGHTNING_LOGGERS, "nni"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(args.root) if args.root else out / "data"
    if not (root / "annotations" / "person_keypoints_val2017.json").is_file():
        write_coco(root, budget.train_images, budget.val_images, seed=0)
    start = time.time()
    steps = Steps(out, resume=args.resume)
    size = tuple(int(v) for v in budget.size.split("x"))
    seeds = list(range(args.first_seed, args.first_seed + budget.seeds))
    print(f"search quality, budget {args.budget}: {budget.size}, recipe {budget.recipe_epochs} "
          f"epochs × training seeds 0..{budget.train_seeds - 1}, {budget.random_k} random "
          f"architectures, strategies {', '.join(names)} × search seeds {seeds}", flush=True)

    print("baselines", flush=True)
    baselines: dict[str, Candidate] = {}
    plain = _plain_head_arch(budget, root, out)
    cand = _train(steps, Candidate("baseline", "plain_head", None), out / "baselines" /
                  "plain_head", budget, root, arch=plain)
    _cost(cand, build_network(spec_from_choices(load_arch(plain).config, {})), size)
    baselines["plain_head"] = cand
    if not args.no_baselines:
        cand = _train(steps, Candidate("baseline", "hrnet_tiny", None),
                      out / "baselines" / "hrnet_tiny", budget, root, model="hrnet_tiny")
        _cost(cand, build_network(spec_from_model("hrnet_tiny", "coco", "benchmark")), size)
        baselines["hrnet_tiny"] = cand
        arch, info = proxy_pick(budget, root, out, baselines["plain_head"].gflops)
        derived = arch.with_name("derived.json")
        _prune(steps, arch, derived, "proxy")
        cand = _train(steps, Candidate("baseline", "proxy_pick", None, extra={"pick": info}),
                      arch.parent / "train", budget, root, arch=derived)
        _derived_cost(cand, derived)
        baselines["proxy_pick"] = cand

    if budget.random_k:
        print(f"{budget.random_k} random architectures", flush=True)
    randoms: list[Candidate] = []
    random_derived: list[Path] = []
    for k, arch in enumerate(_random_archs(budget, root, out) if budget.random_k else []):
        derived = arch.with_name("derived.json")
        _prune(steps, arch, derived, f"random{k:02d}")
        cand = _train(steps, Candidate("random", f"random{k:02d}", None), arch.parent / "train",
                      budget, root, arch=derived)
        _derived_cost(cand, derived)
        randoms.append(cand)
        random_derived.append(derived)

    # the placeholders a variant's overrides name, measured on the baselines
    measured = {"PLAIN": str(baselines["plain_head"].gflops)}
    if "hrnet_tiny" in baselines:
        measured["TINY_HALF"] = str(round(baselines["hrnet_tiny"].gflops / 2, 5))
    strategies: dict[str, list[Candidate]] = {n: [] for n in names}
    for seed in seeds:
        for name in names:
            strategy, extra = VARIANTS[name]
            if "COST" in extra:  # at the default's cost: its objective and space too
                extra = extra + goal_overrides(VARIANTS[default][1])
            print(f"{name}, search seed {seed}", flush=True)
            sdir = out / "strategies" / name / f"seed{seed}"
            fill = dict(measured)
            if strategies.get(default) and strategies[default][-1].search_seed == seed:
                fill["COST"] = str(round(strategies[default][-1].extra["search_only_s"], 1))
            if "COST" in extra and "COST" not in fill:
                raise SystemExit(f"{name} needs the default strategy ({default}) searched first")
            over = _search_overrides(budget, root, seed, extra, fill)
            if strategy == "prune_rate":
                over += ["search.prune_rate.base_arch",
                         str(out / "strategies" / default / f"seed{seed}" / "derived.json")]
            searched = _search(steps, f"search_{name}_s{seed}", sdir,
                               ["--cfg", str(SEARCH_CFG), "--strategy", strategy, "--out",
                                str(sdir), "--no-progress", *over])
            if args.supernets_only:
                continue
            t = searched + _prune(steps, sdir / "arch.json", sdir / "derived.json",
                                  f"{name}_s{seed}")
            cand = Candidate("strategy", name, seed, search_s=t,
                             extra={"search_only_s": round(searched, 1)})
            _derived_cost(cand, sdir / "derived.json")
            same = trained_before(cand, [c for cs in strategies.values() for c in cs])
            if same is None:
                _train(steps, cand, sdir / "train", budget, root, arch=sdir / "derived.json")
            else:
                reuse_training(cand, same)
                print(f"  {f'train_{name}_s{seed}':<32} the network of {same.name}, search "
                      f"seed {same.search_seed}: its trainings reused", flush=True)
            history = [json.loads(line) for line in
                       (sdir / "history.jsonl").read_text().splitlines() if line.strip()]
            collapse = [{k: h[k] for k in ("epoch", "param_free_share", "cells_kept")}
                        for h in history if "param_free_share" in h]
            if collapse:
                cand.extra["collapse"] = collapse
            if "trial" in (history[0] if history else {}):
                cand.extra["trials"] = len(history)
                if "COST" in fill and "COST" in extra:
                    cand.extra["time_budget_s"] = float(fill["COST"])
            strategies[name].append(cand)
    strategies = {n: cs for n, cs in strategies.items() if cs}

    ranking: dict[str, Any] = {}
    if len(randoms) > 1:
        # every one-shot search of the run (the ranking budget's darts and spos, the
        # default): its supernet of the first search seed
        supernets = {n: out / "strategies" / n / f"seed{seeds[0]}" / "last.ckpt"
                     for n in dict.fromkeys(("spos", default, *names))
                     if STRATEGIES[VARIANTS[n][0]].kind == "oneshot"}
        supernets = {n: p for n, p in supernets.items() if p.is_file()}
        print(f"ranking: {', '.join(supernets) or 'no'} supernet(s) and the zero-cost proxies "
              "vs stand-alone", flush=True)
        ranking = rank_architectures(budget, root, out, randoms, random_derived, supernets)
        for cand in randoms:  # the keys of protocol 1
            if "spos_supernet_loss" in cand.extra:
                cand.extra["supernet_ap"] = cand.extra["spos_supernet_ap"]
                cand.extra["supernet_loss"] = cand.extra["spos_supernet_loss"]
    tau = (ranking.get("spos supernet, −loss") or {}).get("tau")
    tau_ap = (ranking.get("spos supernet, AP") or {}).get("tau")

    cands = [*baselines.values(), *randoms, *(c for cs in strategies.values() for c in cs)]
    recipes = {json.dumps({k: v for k, v in c.recipe.items()}, sort_keys=True) for c in cands}
    print(format_table(["group", "name", "search seed", "AP mean ± std", "AP per training seed",
                        "GFLOPs", "params (M)", "search s", "train s"], [_row(c) for c in cands]))
    rows = [[name, f"{len(cs)} ({len(distinct(cs))} distinct)", _summary_cell(cs),
             f"{statistics.fmean(c.gflops for c in cs):.4f}",
             f"{statistics.fmean(c.search_s for c in cs):.0f}" if cs[0].search_s else ""]
            for name, cs in [*strategies.items(), *(("random", randoms),) * bool(randoms)]]
    rows += [[name, 1, _summary_cell([c]), f"{c.gflops:.4f}", ""] for name, c in baselines.items()]
    print(format_table(["candidates", "architectures", "AP mean ± std (over units)", "GFLOPs",
                        "search s"], rows))
    compared = comparisons(strategies, baselines, default) if default in strategies else []
    if compared:
        print(format_table(["A", "B", "mean AP A − B [95 % Welch]", "units", "verdict"],
                           [[c["a"], c["b"], _interval(c), f"{c['n'][0]} vs {c['n'][1]}",
                             f"A {c['verdict']}" if c["verdict"] in ("better", "worse")
                             else c["verdict"]] for c in compared]))
    checked = goals(strategies[default], strategies, baselines) if default in strategies else []
    for g in checked:
        cost = (f"; GFLOPs {g['gflops']:.4f} vs ≤ {g['gflops_bound']:.4f}" if "gflops" in g
                else "")
        print(f"goal: {default} {g['goal']}: {_interval(g)}{cost}: "
              f"{'met' if g['met'] else 'MISSED'}")
    if ranking:
        print(format_table([f"ranker ({len(randoms)} random architectures)",
                            "Kendall τ vs stand-alone mean AP [95 % bootstrap]"],
                           [[n, "undefined" if r["tau"] is None else f"{r['tau']:.3f}" + (
                               f" [{r['low']:+.3f}, {r['high']:+.3f}]" if r.get("low") is not None
                               else "")] for n, r in ranking.items()]))
    print(f"every candidate trained with one recipe: {'yes' if len(recipes) == 1 else 'NO'}; "
          f"total {time.time() - start:.0f} s")
    if len(recipes) != 1:
        print(f"recipes differ: {sorted(recipes)}", file=sys.stderr)
    _plot(out / "pareto.png", randoms, strategies, baselines, default)
    summary = {"protocol": 2, "default": default, "budget": args.budget,
               "budget_sizes": {k: v for k, v in budget.__dict__.items()},
               "search_seeds": seeds, "threads": args.threads, "machine": machine(),
               "random": [c.entry() for c in randoms],
               "strategies": {n: [c.entry() for c in cs] for n, cs in strategies.items()},
               "baselines": {n: c.entry() for n, c in baselines.items()},
               "comparisons": compared, "goals": checked,
               "ranking": ranking, "kendall_tau": tau, "kendall_tau_ap": tau_ap,
               "seconds": round(time.time() - start, 1)}
    tmp = out / "search_quality.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1))
    tmp.replace(out / "search_quality.json")
    print(f"wrote {out / 'search_quality.json'} and {out / 'pareto.png'}")
    if args.json:
        print(json.dumps(summary))
    return 0 if len(recipes) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
