"""One DARTS search step of the PNFS space vs training steps of frozen networks.

Cases (each in its own process, so peak memory is its own):

- ``darts``: NNI's DARTS supernet of ``configs/spaces/pnfs_hrnet_w32_cnf5.yaml`` (width choices
  and α/β): one architecture step (Adam on α/β, a second batch) + one weight step, first order;
- ``all_ops``: the frozen network of the same layout with every operation and input present
  (search off: PNFS's "None" baseline) — the cost the supernet should stay within 4× of;
- ``argmax``: the frozen network of the supernet's argmax architecture (one op per edge, one
  input per cell, full widths).

    python benchmarks/supernet_step.py [--size 256x192] [--batch 8] [--steps 3] [--device cpu]

Prints a table: seconds per step (median of ``--steps`` after one warm-up) and peak memory
(CUDA: max allocated; CPU: peak RSS of the process).
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trainers.config import load_config  # noqa: E402
from trainers.report import format_table  # noqa: E402

SPACE = Path(__file__).resolve().parent.parent / "configs" / "spaces" / "pnfs_hrnet_w32_cnf5.yaml"


def _space(search: bool):
    cfg = load_config(SPACE, ["dataset.name", "coco", "dataset.root", "unused"])
    if search:
        return cfg.space
    from dataclasses import replace

    cell = replace(cfg.space.cell_config, search_alpha=False, search_beta=False)
    return replace(cfg.space, cell_config=cell,
                   backbone=replace(cfg.space.backbone, width_multipliers=()))


def _batch(args, device):
    h, w = args.size
    x = torch.randn(args.batch, 3, h, w, device=device)
    y = torch.rand(args.batch, 17, h // 4, w // 4, device=device)
    return x, y


def _run_case(args) -> dict:
    from search_space.pose_space import build, freeze

    warnings.filterwarnings("ignore")
    device = torch.device(args.device)
    torch.manual_seed(0)
    loss_fn = torch.nn.MSELoss()
    if args.case == "darts":
        from nni.nas.strategy import DARTS

        strategy = DARTS()
        model = strategy.mutate_model(build(_space(True), "coco")).to(device)
        arch = list(strategy._arch_parameters.values())  # NNI keeps α/β here until training
        arch_ids = {id(a) for a in arch}
        weights = [p for p in model.parameters() if id(p) not in arch_ids]
        w_opt = torch.optim.Adam(weights, lr=1e-3)
        a_opt = torch.optim.Adam([a.to(device) for a in arch], lr=3e-4)

        def step():
            x, y = _batch(args, device)  # architecture step on the "validation" half
            a_opt.zero_grad()
            loss_fn(model(x), y).backward()
            a_opt.step()
            x, y = _batch(args, device)  # weight step on the "training" half
            w_opt.zero_grad()
            loss_fn(model(x), y).backward()
            w_opt.step()
    else:
        if args.case == "all_ops":
            model = freeze(_space(False), "coco", {})
        else:
            space = _space(True)
            labels = build(space, "coco").simplify()
            choices = {}
            for label, mutable in labels.items():
                if label.endswith("_op"):
                    choices[label] = "Sep_Conv_3x3"
                elif label.endswith("/input"):
                    choices[label] = [0]
                else:
                    choices[label] = max(mutable.values)
            model = freeze(space, "coco", choices)
        model = model.to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            x, y = _batch(args, device)
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()

    model.train()
    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    params = sum(p.numel() for p in model.parameters())
    return {"case": args.case, "seconds": statistics.median(times), "peak_bytes": peak,
            "params": params}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="256x192")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--case", choices=["darts", "all_ops", "argmax"], help=argparse.SUPPRESS)
    args = p.parse_args()
    args.size = tuple(int(v) for v in args.size.lower().split("x"))
    if args.case:
        print(json.dumps(_run_case(args)))
        return 0
    rows, results = [], {}
    for case in ("argmax", "all_ops", "darts"):
        cmd = [sys.executable, __file__, "--case", case, "--size", f"{args.size[0]}x{args.size[1]}",
               "--batch", str(args.batch), "--steps", str(args.steps), "--device", args.device]
        print(f"running {case} ...", flush=True)
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results[case] = json.loads(out.strip().splitlines()[-1])
    base = results["all_ops"]["seconds"]
    for case in ("argmax", "all_ops", "darts"):
        r = results[case]
        rows.append([case, f"{r['params'] / 1e6:.2f}", f"{r['seconds']:.3f}",
                     f"{r['seconds'] / base:.2f}x", f"{r['peak_bytes'] / 2**30:.2f}"])
    print(format_table(["case", "params (M)", "s/step", "vs all_ops", "peak GiB"], rows))
    print(f"device {args.device}, input {args.size[0]}x{args.size[1]}, batch {args.batch}; "
          "darts = one architecture step + one weight step")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
