"""The best trials of an ``nnictl`` experiment, and its best architecture.

    python -m strategies.collect EXPERIMENT_ID_OR_DIR [--top 10] [--out best_arch.json]

Reads the ``arch.json`` each trial (``trainers/trial.py``) wrote into its output directory
(``~/nni-experiments/ID/environments/local-env/trials/TRIAL/`` for NNI 3.0's local training
service; ``NNI_EXPERIMENTS_DIR`` or a directory argument for another place): no running NNI manager is needed. Prints the trials ranked by the objective
(AP, params, GFLOPs) and copies the best ``arch.json`` to ``--out``, ready for
``strategies.prune`` / ``train_derived.py --arch``. Trials without a result are counted.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any


from trainers.network.arch_file import load_arch
from trainers.atomic import atomic_path
from search_space.errors import UserInputError
from trainers.cli import ArgumentParser, cli_errors, output_file, positive_int
from trainers.report import format_table

__all__ = ["experiment_dir", "collect_trials"]


def experiment_dir(ref: str) -> Path:
    """An experiment's working directory from its ID or a path."""
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    root = Path(os.environ.get("NNI_EXPERIMENTS_DIR", "~/nni-experiments")).expanduser()
    if (root / ref).is_dir():
        return root / ref
    raise UserInputError(ref, f"no such experiment directory (looked in {root})")


def collect_trials(exp_dir: Path) -> tuple[list[dict[str, Any]], int]:
    """(results of the trials that wrote arch.json, best first; count of trials without)."""
    # NNI 3.0's local training service: environments/local-env/trials/ID; older: trials/ID
    trial_dirs = sorted(p for d in [exp_dir / "trials", *exp_dir.glob("environments/*/trials")]
                        if d.is_dir() for p in d.iterdir() if p.is_dir())
    if not trial_dirs and not (exp_dir / "db").is_dir():
        raise UserInputError(str(exp_dir), "not an NNI experiment directory (no trials)")
    rows, missing = [], 0
    for trial in trial_dirs:
        path = trial / "arch.json"
        if not path.is_file():
            missing += 1
            continue
        try:
            arch = load_arch(path)
        except UserInputError as err:
            print(f"skipped {trial.name}: {err}", file=sys.stderr)
            missing += 1
            continue
        rows.append({"trial": trial.name, "path": str(path), **arch.metrics})
    rows.sort(key=lambda r: r.get("default", float("-inf")), reverse=True)
    return rows, missing


@cli_errors
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m strategies.collect", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", help="experiment ID (under ~/nni-experiments) or directory")
    p.add_argument("--top", type=positive_int, default=10, help="rows to print")
    p.add_argument("--out", default="best_arch.json", help="where the best arch.json goes")
    args = p.parse_args(argv)
    output_file(args.out, "--out")
    exp = experiment_dir(args.experiment)
    rows, missing = collect_trials(exp)
    if not rows:
        raise UserInputError(str(exp), f"no trial has a result yet ({missing} without)")
    # a trial over a hard GFLOPs budget records no metric (untrained)
    metric = "AP" if any("AP" in r for r in rows) else "Mean"
    table = [[r["trial"], f"{r.get('default', float('nan')):.4f}",
              f"{r.get(metric, float('nan')):.4f}", f"{r.get('params', 0) / 1e6:.3f}",
              f"{r.get('gflops', float('nan')):.4f}"] for r in rows[:args.top]]
    print(format_table(["trial", "objective", metric, "params (M)", "GFLOPs"], table))
    print(f"{len(rows)} trials with results, {missing} without")
    with atomic_path(args.out) as tmp:
        shutil.copyfile(rows[0]["path"], tmp)
    print(f"best: {rows[0]['trial']} → {args.out}")
    print(f"next: python -m strategies.prune --arch {args.out} --out derived.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
