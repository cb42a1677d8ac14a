"""Plots of a search's ``history.jsonl``.

    python -m visualize.history DIR/history.jsonl --out FILE.png [--pareto FILE.png]
                                [--baseline NAME=GFLOPS:AP ...]

- one-shot strategies (records per epoch with α/β): the softmax of every α and β label over the
  epochs, one small panel per label (a line per candidate);
- multi-trial strategies (records per trial): the metric of each trial over time and the best
  so far;
- ``--pareto``: AP vs GFLOPs of the candidates (trials; for one-shot, the architecture of each
  epoch), the Pareto front joined, and baselines marked (``--baseline hrnet_tiny=0.06:0.60``).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from trainers.atomic import atomic_path  # noqa: E402
from search_space.errors import UserInputError  # noqa: E402
from trainers.cli import ArgumentParser, cli_errors, output_file

__all__ = ["read_history", "plot_history", "plot_pareto", "pareto_front"]


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """The records of a history file; bad lines stop with the line number."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise UserInputError(str(path), f"cannot read history ({err.strerror})") from None
    records = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise UserInputError(str(path), "not a JSON line", field=f"line {n}") from None
        if not isinstance(record, dict):
            raise UserInputError(str(path), "not a JSON object", field=f"line {n}")
        records.append(record)
    if not records:
        raise UserInputError(str(path), "no records")
    return records


def _metric_name(records: list[dict[str, Any]]) -> str:
    for name in ("AP", "Mean"):
        if any(name in r for r in records):
            return name
    return "AP"


def plot_history(records: list[dict[str, Any]], out: str | Path, title: str = "") -> Path:
    """α/β evolution (one-shot) or trial metrics over time (multi-trial); returns ``out``."""
    metric = _metric_name(records)
    epochs = [r for r in records if "epoch" in r and ("alpha" in r or "beta" in r)]
    if epochs:
        labels = [(g, lb) for g in ("alpha", "beta") for lb in epochs[-1].get(g, {})]
        cols = min(4, max(1, len(labels)))
        rows = math.ceil(len(labels) / cols) + 1
        fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
        x = [r["epoch"] for r in epochs]
        ax = axes[0][0]
        ax.plot(x, [r.get(metric, float("nan")) for r in epochs], "o-", color="black")
        ax.set_title(f"supernet {metric}", fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        for k in range(1, cols):
            axes[0][k].axis("off")
        for k, (group, label) in enumerate(labels):
            ax = axes[1 + k // cols][k % cols]
            first = epochs[-1][group][label]
            names = list(first) if isinstance(first, dict) else ["same", "from_higher", "from_lower"]
            for c, name in enumerate(names):
                ys = []
                for r in epochs:
                    d = r.get(group, {}).get(label)
                    ys.append(float("nan") if d is None else (d[name] if isinstance(d, dict) else d[c]))
                ax.plot(x, ys, "o-", markersize=3, label=name)
            ax.set_title(label, fontsize=8)
            ax.set_ylim(0, 1)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=6, loc="upper left")
        for k in range(len(labels), (rows - 1) * cols):
            axes[1 + k // cols][k % cols].axis("off")
        fig.suptitle(title or "architecture weights (softmax) per epoch", fontsize=11)
    else:
        trials = [r for r in records if "trial" in r]
        if not trials:
            raise UserInputError("history", "records have neither epochs with alpha/beta nor trials")
        fig, ax = plt.subplots(figsize=(7, 4))
        xs = [r["trial"] for r in trials]
        ys = [r.get(metric, float("nan")) if r.get("status", "succeeded") == "succeeded"
              else float("nan") for r in trials]
        best, run = [], -math.inf
        for y in ys:
            run = max(run, y) if not math.isnan(y) else run
            best.append(run if run > -math.inf else float("nan"))
        ax.plot(xs, ys, "o", label=f"trial {metric}")
        ax.plot(xs, best, "-", label="best so far")
        failed = [x for x, r in zip(xs, trials) if r.get("status") == "failed"]
        if failed:
            ax.plot(failed, [0] * len(failed), "x", color="red", label="failed")
        over = [x for x, r in zip(xs, trials) if r.get("status") == "over budget"]
        if over:  # a hard GFLOPs budget: sampled, scored 0, not trained
            ax.plot(over, [0] * len(over), "|", color="gray", ms=10, label="over budget")
        ax.set_xlabel("trial")
        ax.set_ylabel(metric)
        ax.legend()
        ax.set_title(title or f"{trials[0].get('strategy', 'search')}: {metric} per trial")
    fig.tight_layout()
    return _save(fig, out)


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(gflops, ap) points not dominated by a cheaper-or-equal, better-or-equal one, by GFLOPs."""
    front, best = [], -math.inf
    for g, a in sorted(points, key=lambda p: (p[0], -p[1])):
        if a > best:
            front.append((g, a))
            best = a
    return front


def plot_pareto(records: list[dict[str, Any]], out: str | Path,
                baselines: dict[str, tuple[float, float]] | None = None) -> Path:
    """AP vs GFLOPs of the candidates that carry both (``gflops`` in the record), with the
    Pareto front and ``baselines`` (name → (gflops, ap))."""
    metric = _metric_name(records)
    pts = [(float(r["gflops"]), float(r[metric])) for r in records
           if "gflops" in r and isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric])]
    if not pts:
        raise UserInputError("history", "no record has both gflops and the metric")
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot([p[0] for p in pts], [p[1] for p in pts], "o", alpha=0.6, label="candidates")
    front = pareto_front(pts)
    ax.plot([p[0] for p in front], [p[1] for p in front], "-", color="C1", label="Pareto front")
    for name, (g, a) in (baselines or {}).items():
        ax.plot([g], [a], "*", markersize=14, label=name)
    ax.set_xlabel("GFLOPs")
    ax.set_ylabel(metric)
    ax.legend(fontsize=8)
    ax.set_title(f"{metric} vs GFLOPs")
    fig.tight_layout()
    return _save(fig, out)


def _save(fig: Any, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format=out.suffix.lstrip(".") or "png")
    plt.close(fig)
    return out


def _baseline(text: str) -> tuple[str, tuple[float, float]]:
    try:
        name, rest = text.split("=", 1)
        g, a = rest.split(":", 1)
        return name, (float(g), float(a))
    except ValueError:
        raise UserInputError("--baseline", f"expected NAME=GFLOPS:AP, got {text!r}") from None


@cli_errors
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m visualize.history", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("history", help="DIR/history.jsonl of strategies.search")
    p.add_argument("--out", required=True, help="PNG (or SVG/PDF) of the evolution plot")
    p.add_argument("--pareto", help="also a Pareto plot (AP vs GFLOPs) to this file")
    p.add_argument("--baseline", action="append", default=[], help="NAME=GFLOPS:AP to mark")
    args = p.parse_args(argv)
    output_file(args.out, "--out")
    if args.pareto:
        output_file(args.pareto, "--pareto")
    records = read_history(args.history)
    print(f"wrote {plot_history(records, args.out)}")
    if args.pareto:
        print(f"wrote {plot_pareto(records, args.pareto, dict(map(_baseline, args.baseline)))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
