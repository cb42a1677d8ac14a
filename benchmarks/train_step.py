"""Forward+backward throughput and peak memory of HRNet-W32 (256×192, batch 8) on this machine.

    python benchmarks/train_step.py [--batch 8] [--steps 5] [--warmup 2] [--threads N]

Runs one training step (forward, JointsMSE-style loss, backward, Adam step) repeatedly for
posenas's ``hrnet_w32`` and for an independent plain reference of the same architecture written
below (nn.Upsample fuse, the official module/branch structure), each in a fresh subprocess so the
peak resident memory is its own. Prints images/s and peak RSS for both.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from tests.reference_hrnet import ReferenceHRNet  # noqa: E402
from trainers.report import format_table  # noqa: E402


# ------------------------------------------------------------------------------ measuring
def _measure(which: str, batch: int, steps: int, warmup: int) -> dict:
    torch.manual_seed(0)
    if which == "posenas":
        from search_space.models import build_model

        model = build_model("hrnet_w32", "coco")
    else:
        model = ReferenceHRNet(32)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x, target = torch.randn(batch, 3, 256, 192), torch.rand(batch, 17, 64, 48)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        loss = 0.5 * (model(x) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"which": which, "params": params, "images_per_s": batch / (sum(times) / len(times)),
            "peak_rss_mb": peak / 1024, "rss_growth_mb": (peak - base_rss) / 1024}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(_measure(args.child, args.batch, args.steps, args.warmup)))
        return
    rows = []
    for which in ("posenas", "reference"):
        cmd = [sys.executable, __file__, "--child", which, "--batch", str(args.batch),
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
        res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        rows.append([res["which"], f"{res['params']:,}", f"{res['images_per_s']:.2f}",
                     f"{res['peak_rss_mb']:.0f}", f"{res['rss_growth_mb']:.0f}"])
    print(format_table(["implementation", "params", "train images/s", "peak RSS (MB)",
                        "RSS growth in steps (MB)"], rows))
    print(f"hrnet_w32, 256x192, batch {args.batch}, forward+backward+Adam, {torch.get_num_threads()} "
          f"threads, {args.steps} timed steps after {args.warmup} warm-up")


if __name__ == "__main__":
    main()
