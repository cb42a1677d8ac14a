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

import torch
from torch import nn

from trainers.report import format_table


# ---------------------------------------------------------------- plain reference HRNet-W32
def _cbr(i, o, k=3, s=1, relu=True):
    layers = [nn.Conv2d(i, o, k, s, k // 2, bias=False), nn.BatchNorm2d(o)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class _Basic(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a, self.b = _cbr(c, c), _cbr(c, c, relu=False)

    def forward(self, x):
        return torch.relu(self.b(self.a(x)) + x)


class _Bottle(nn.Module):
    def __init__(self, i, c):
        super().__init__()
        self.body = nn.Sequential(_cbr(i, c, 1), _cbr(c, c), _cbr(c, 4 * c, 1, relu=False))
        self.down = _cbr(i, 4 * c, 1, relu=False) if i != 4 * c else nn.Identity()

    def forward(self, x):
        return torch.relu(self.body(x) + self.down(x))


class _Module(nn.Module):
    def __init__(self, ch, multi):
        super().__init__()
        self.branches = nn.ModuleList(nn.Sequential(*[_Basic(c) for _ in range(4)]) for c in ch)
        outs = range(len(ch)) if multi else range(1)
        self.fuse = nn.ModuleList()
        for i in outs:
            row = nn.ModuleList()
            for j, c in enumerate(ch):
                if j > i:
                    row.append(nn.Sequential(_cbr(c, ch[i], 1, relu=False),
                                             nn.Upsample(scale_factor=2 ** (j - i), mode="nearest")))
                elif j == i:
                    row.append(nn.Identity())
                else:
                    row.append(nn.Sequential(*[_cbr(c, c, s=2) for _ in range(i - j - 1)],
                                             _cbr(c, ch[i], s=2, relu=False)))
            self.fuse.append(row)

    def forward(self, xs):
        xs = [b(x) for b, x in zip(self.branches, xs)]
        return [torch.relu(sum(f(x) for f, x in zip(row, xs))) for row in self.fuse]


class ReferenceHRNetW32(nn.Module):
    def __init__(self, k=17):
        super().__init__()
        self.stem = nn.Sequential(_cbr(3, 64, s=2), _cbr(64, 64, s=2))
        self.layer1 = nn.Sequential(_Bottle(64, 64), *[_Bottle(256, 64) for _ in range(3)])
        self.t1 = nn.ModuleList([_cbr(256, 32), _cbr(256, 64, s=2)])
        self.s2 = nn.Sequential(_Module([32, 64], True))
        self.t2 = _cbr(64, 128, s=2)
        self.s3 = nn.Sequential(*[_Module([32, 64, 128], True) for _ in range(4)])
        self.t3 = _cbr(128, 256, s=2)
        self.s4 = nn.Sequential(*[_Module([32, 64, 128, 256], i < 2) for i in range(3)])
        self.final = nn.Conv2d(32, k, 1)

    def forward(self, x):
        x = self.layer1(self.stem(x))
        xs = self.s2([t(x) for t in self.t1])
        xs = self.s3(xs + [self.t2(xs[-1])])
        xs = self.s4(xs + [self.t3(xs[-1])])
        return self.final(xs[0])


# ------------------------------------------------------------------------------ measuring
def _measure(which: str, batch: int, steps: int, warmup: int) -> dict:
    torch.manual_seed(0)
    if which == "posenas":
        from search_space.models import build_model

        model = build_model("hrnet_w32", 17)
    else:
        model = ReferenceHRNetW32()
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
