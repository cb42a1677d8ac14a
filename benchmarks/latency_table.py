"""How well the latency table (``search.goal.cost latency``) predicts onnxruntime latency.

    python -m benchmarks.latency_table [--cfg configs/search/synthetic_tiny.yaml]
                                       [--size 128x96] [--networks 5] [--json]

Builds the space's table (its operations timed alone, scaled on 3 random architectures timed
whole: strategies.latency), then for ``--networks`` other random frozen architectures of the
space (seeds the calibration never saw) prints the table's prediction next to the network timed
whole with onnxruntime, 1 thread, and the relative error. The issue's target: every error
within 20 %. With ``--json`` the last line is ``{"errors": [...], "max_abs_error": x,
"entries": n, "seconds": s}``.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


import torch

from search_space.supernet import build
from strategies.latency import random_networks, space_latency_table
from trainers.network.build import build_network, spec_from_choices
from trainers.config.experiment import load_config
from trainers.report import format_table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", default="configs/search/synthetic_tiny.yaml")
    p.add_argument("--size", default="128x96", help="input H x W")
    p.add_argument("--networks", type=int, default=5)
    p.add_argument("--seed", type=int, default=2024, help="of the checked architectures")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(args.cfg, ["model.input_size", args.size, "search.goal.cost", "latency"])
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        table = space_latency_table(cfg, Path(tmp) / "latency_table.json")
        labels = build(cfg.space, cfg.dataset.name).simplify()
        made = random_networks(lambda ch: build_network(spec_from_choices(cfg, ch)), labels,
                               args.networks, args.seed)
        rows, errors = [], []
        for i, (_, net) in enumerate(made):
            predicted, measured = table.predict(net), table.network_ms(net)
            errors.append((predicted - measured) / measured)
            rows.append([i, f"{table.summed_ms(net):.3f}", f"{predicted:.3f}", f"{measured:.3f}",
                         f"{100 * errors[-1]:+.1f}%"])
    print(format_table(["network", "Σ units (ms)", "predicted (ms)", "measured (ms)", "error"],
                       rows))
    worst = max(abs(e) for e in errors)
    print(f"scale {table.scale:.3f}, {len(table.entries)} entries; worst error {100 * worst:.1f}% "
          f"(target ≤ 20%); {time.time() - start:.0f} s")
    if args.json:
        print(json.dumps({"errors": [round(e, 4) for e in errors], "max_abs_error": round(worst, 4),
                          "entries": len(table.entries), "seconds": round(time.time() - start, 1)}))


if __name__ == "__main__":
    main()
