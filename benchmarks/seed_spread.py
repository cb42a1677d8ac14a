"""How long must the benchmark's recipe be for its AP to separate candidates? Seed spread vs epochs.

    python -m benchmarks.seed_spread [--epochs 12,24,36] [--seeds 5] [--size 128x96]
                                     [--images 400] [--out DIR] [--json]

Trains the plain-head network of the demo's space (the search-quality benchmark's baseline:
configs/search/synthetic_tiny.yaml, plain head, full widths) with the benchmark's one recipe
(:func:`benchmarks.search_quality.recipe_overrides`) at each epoch count, training seeds
0..N-1, on the synthetic COCO-layout data, and tabulates the AP's mean, sample standard
deviation and 95 % interval of the mean (Student t) per epoch count, with the time per run. The
search-quality benchmark's recipe is the shortest whose standard deviation is ≤ 0.02 AP (issue
27): differences between candidates below about twice that are noise.

It also checks that a seed is a seed: the first epoch count's seed 0 is trained again as a
separate process (``python -m trainers.train_derived``, the same thread count) and its AP must be
the same to the last digit; ``reproducible`` in the JSON says whether it was. (A different
thread count changes float reductions, and after a few epochs the AP as much as a seed does:
the JSON records ``threads``.)

Writes ``OUT/seed_spread.json`` after each run (so a cut-off run keeps what it measured).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

import torch
from scipy import stats

from benchmarks.search_quality import RECIPE_CFG, Budget, BUDGETS, Steps, _plain_head_arch, \
    best_ap, console_warnings_only, recipe_overrides
from trainers import train_derived
from trainers.data.synthetic import write_coco
from trainers.report import format_table


def mean_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the Student-t interval of the mean of ``values`` (the mean itself
    twice for fewer than two values)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean, mean
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * statistics.stdev(values) \
        / len(values) ** 0.5
    return mean, mean - half, mean + half


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", default="12,24,36", help="comma-separated epoch counts")
    p.add_argument("--seeds", type=int, default=5, help="training seeds 0..N-1")
    p.add_argument("--size", default="128x96")
    p.add_argument("--images", type=int, default=400, help="synthetic training images")
    p.add_argument("--out", default="runs/seed_spread")
    p.add_argument("--root", help="synthetic COCO data (default: OUT/data, written once)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-repro", action="store_true", help="skip the separate-process check")
    p.add_argument("--json", action="store_true", help="last line: the summary as JSON")
    args = p.parse_args(argv)
    try:
        epochs = [int(e) for e in args.epochs.split(",")]
    except ValueError:
        p.error(f"--epochs: comma-separated integers, got {args.epochs!r}")
    if any(e < 1 for e in epochs) or args.seeds < 1:
        p.error("--epochs and --seeds must be ≥ 1")
    torch.set_num_threads(args.threads)
    console_warnings_only()
    warnings.filterwarnings("ignore")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(args.root) if args.root else out / "data"
    if not (root / "annotations" / "person_keypoints_val2017.json").is_file():
        write_coco(root, args.images, max(16, args.images // 4), seed=0)
    budget = Budget(**{**BUDGETS["small"].__dict__, "size": args.size})
    plain = _plain_head_arch(budget, root, out)
    steps = Steps(out)
    runs: dict[int, list[dict]] = {e: [] for e in epochs}
    summary: dict = {"network": "plain_head", "size": args.size, "threads": args.threads,
                     "train_images": args.images, "runs": runs}

    def argv_for(e: int, seed: int, where: Path) -> list[str]:
        return ["--cfg", str(RECIPE_CFG), "--out", str(where), "--no-progress", "--arch",
                str(plain), *recipe_overrides(args.size, e, root, seed)]

    def write() -> None:
        tmp = out / "seed_spread.json.tmp"
        tmp.write_text(json.dumps(summary, indent=1))
        tmp.replace(out / "seed_spread.json")

    for seed in range(args.seeds):  # seeds outer: a cut-off run has every epoch count
        for e in epochs:
            where = out / f"e{e}" / f"s{seed}"
            seconds = steps(f"train_e{e}_s{seed}", train_derived.main, argv_for(e, seed, where))
            runs[e].append({"seed": seed, "ap": best_ap(where), "seconds": round(seconds, 1)})
            write()
    if not args.no_repro:
        e, where = epochs[0], out / "repro"
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        t0 = time.time()
        r = subprocess.run([sys.executable, "-m", "trainers.train_derived",
                            *argv_for(e, 0, where)], cwd=REPO, env=env, capture_output=True,
                           text=True)
        if r.returncode:
            sys.exit(f"separate-process run failed:\n{r.stderr[-3000:]}")
        summary["repro"] = {"epochs": e, "seed": 0, "in_process": runs[e][0]["ap"],
                            "separate_process": best_ap(where), "seconds": round(time.time() - t0)}
        summary["reproducible"] = summary["repro"]["in_process"] == \
            summary["repro"]["separate_process"]
    rows, table = [], {}
    for e in epochs:
        aps = [r["ap"] for r in runs[e]]
        mean, lo, hi = mean_interval(aps)
        std = statistics.stdev(aps) if len(aps) > 1 else 0.0
        table[e] = {"mean": mean, "std": std, "ci95": [lo, hi],
                    "seconds": statistics.fmean(r["seconds"] for r in runs[e])}
        rows.append([e, len(aps), f"{mean:.4f}", f"{std:.4f}", f"{lo:.3f}–{hi:.3f}",
                     f"{table[e]['seconds']:.0f}"])
    summary["table"] = table
    ok = [e for e in epochs if table[e]["std"] <= 0.02]
    summary["shortest_within_0.02"] = min(ok) if ok else None
    write()
    print(format_table(["epochs", "seeds", "AP mean", "AP std", "95 % interval", "s per run"],
                       rows))
    if "repro" in summary:
        rep = summary["repro"]
        print(f"seed 0, {rep['epochs']} epochs: in process {rep['in_process']:.6f}, separate "
              f"process {rep['separate_process']:.6f}: "
              f"{'identical' if summary['reproducible'] else 'DIFFERENT'}")
    print(f"shortest recipe with std ≤ 0.02 AP: {summary['shortest_within_0.02']} epochs"
          if ok else "no epoch count measured reaches std ≤ 0.02 AP")
    print(f"wrote {out / 'seed_spread.json'}")
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
