"""How cost grows: training-step time and peak memory against batch size and input size, and the
DARTS search step against the number of body parts and the fabric depth, each with a fitted line.

    python -m benchmarks.scaling [--model hrnet_w32] [--base-size 256x192] [--base-batch 8]
                                 [--batches 1,2,4,8,16,32] [--sizes 128x96,...,384x288]
                                 [--search-cfg configs/search/synthetic_tiny.yaml]
                                 [--search-size 128x96] [--parts 1,3,5,8] [--depths 4,5,6,7]
                                 [--device cpu] [--steps 3] [--threads 2] [--smoke] [--json OUT]

- **training step**: the registered ``--model`` trained as ``train_derived.py`` trains it without
  the trainer around it (channels-last float32: forward, JointsMSELoss with target weights,
  backward, Adam), one point per batch size (at ``--base-size``) and per input size (at
  ``--base-batch``); seconds per step (median of ``--steps`` after a warm-up) and peak memory;
- **search step**: ``strategies.search --strategy darts``'s step (``run_oneshot``: an
  architecture step and a weight step per batch) on ``--search-cfg``'s space, one point per
  ``space.parts_num`` and per ``space.cell_config.depth`` (the other at the config's value).

Each point runs in its own process, so its peak memory (CPU: peak RSS; CUDA: max allocated
after the warm-up) is its own. For each series a least-squares line ``seconds = a + b·x`` is
fitted (x = batch, megapixels of the input, parts, depth) with its R². ``--smoke`` is a 2-point
run of each series on hrnet_tiny at 64×48, for the test suite.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from benchmarks.measure import peak_memory_bytes
from trainers.report import format_table

REPO = Path(__file__).resolve().parent.parent


def _size(text: str) -> tuple[int, int]:
    h, w = (int(v) for v in text.lower().split("x"))
    return h, w



def _train_point(args, batch: int, size: tuple[int, int]) -> dict:
    """One training-step point, in this process."""
    from search_space.joints import keypoint_spec
    from search_space.models import build_model
    from trainers.engine.losses import JointsMSELoss
    from trainers.engine.memory_format import channels_last_input, to_channels_last

    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build_model(args.model, "coco").to(device).train()
    to_channels_last(model)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    criterion = JointsMSELoss(True)
    k = keypoint_spec("coco").num_joints
    h, w = size
    x = torch.randn(batch, 3, h, w, device=device)
    y = torch.rand(batch, k, h // 4, w // 4, device=device)
    weight = torch.ones(batch, k, 1, device=device)
    times = []
    for i in range(args.steps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = criterion(model(channels_last_input(x, True)), y, weight)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i == 0 and device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times.append(time.perf_counter() - t0)
    return {"seconds": statistics.median(times[1:]), "peak_bytes": peak_memory_bytes(device)}


def _search_point(args, parts: int, depth: int) -> dict:
    """One DARTS search-step point (``run_oneshot``), in this process."""
    import pytorch_lightning as pl

    from strategies.oneshot import run_oneshot
    from trainers.config.experiment import load_config

    device = torch.device(args.device)
    times: list[float] = []

    class Timer(pl.Callback):
        def on_train_batch_start(self, *a) -> None:
            if device.type == "cuda":
                torch.cuda.synchronize()
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, *a) -> None:
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t0)
            if len(times) == 1 and device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()

    h, w = args.search_size
    cfg = load_config(args.search_cfg, [
        "dataset.name", "coco", "dataset.root", str(args.data), "model.input_size", f"{h}x{w}",
        "search.epochs", "1", "search.warmup_epochs", "0", "search.batch_size", str(args.search_batch),
        "train.num_workers", "0", "train.limit_train_batches", str(args.steps + 1),
        "test.flip_test", "false", "test.batch_size", "4", "train.devices", "1",
        "space.parts_num", str(parts), "space.cell_config.depth", str(depth)])
    with tempfile.TemporaryDirectory() as tmp:
        run_oneshot(cfg, "darts", Path(tmp), progress=False, callbacks=[Timer()])
    return {"seconds": statistics.median(times[1:]), "peak_bytes": peak_memory_bytes(device)}


def fit_line(x: list[float], y: list[float]) -> dict[str, float]:
    """Least squares ``y = a + b·x``: intercept a, slope b, R²."""
    x_, y_ = np.asarray(x, float), np.asarray(y, float)
    if len(x_) < 2:
        return {"a": float(y_.mean()) if len(y_) else 0.0, "b": 0.0, "r2": 1.0}
    b, a = np.polyfit(x_, y_, 1)
    residual = ((y_ - (a + b * x_)) ** 2).sum()
    total = ((y_ - y_.mean()) ** 2).sum()
    return {"a": float(a), "b": float(b), "r2": float(1 - residual / total) if total > 0 else 1.0}


def _run(args, kind: str, a: str, b: str) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.scaling", "--point", kind, a, b, "--model", args.model,
           "--device", args.device, "--steps", str(args.steps), "--threads", str(args.threads),
           "--search-cfg", str(args.search_cfg), "--data", str(args.data),
           "--search-size", "x".join(map(str, args.search_size)),
           "--search-batch", str(args.search_batch)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if r.returncode != 0:
        sys.exit(f"{kind} {a} {b} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="hrnet_w32")
    p.add_argument("--base-size", type=_size, default=(256, 192))
    p.add_argument("--base-batch", type=int, default=8)
    p.add_argument("--batches", default="1,2,4,8,16,32")
    p.add_argument("--sizes", default="128x96,192x144,256x192,320x240,384x288")
    p.add_argument("--search-cfg", default=str(REPO / "configs" / "search" / "synthetic_tiny.yaml"))
    p.add_argument("--search-size", type=_size, default=(128, 96))
    p.add_argument("--search-batch", type=int, default=8)
    p.add_argument("--parts", default="1,3,5,8")
    p.add_argument("--depths", default="4,5,6,7",
                   help="fabric depths (above the config's cut_layers_num)")
    p.add_argument("--data", default="runs/bench_scaling_data",
                   help="the synthetic COCO set the search points read (written if missing)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="torch threads (0: torch's default)")
    p.add_argument("--smoke", action="store_true", help="2 points per series, hrnet_tiny, 64x48")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--point", nargs=3, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.point:
        warnings.filterwarnings("ignore")
        kind, a, b = args.point
        result = (_train_point(args, int(a), _size(b)) if kind == "train"
                  else _search_point(args, int(a), int(b)))
        print(json.dumps(result))
        return 0
    if args.smoke:
        args.model, args.base_size, args.base_batch = "hrnet_tiny", (64, 48), 2
        args.batches, args.sizes = "1,2", "64x48,96x64"
        args.search_size, args.search_batch, args.parts, args.depths = (64, 48), 4, "1,3", "4"
        args.steps = 1
    batches = [int(v) for v in args.batches.split(",")]
    sizes = [_size(v) for v in args.sizes.split(",")]
    parts = [int(v) for v in args.parts.split(",")]
    depths = [int(v) for v in args.depths.split(",")]
    from trainers.config.experiment import load_config

    base_depth = load_config(args.search_cfg).space.cell_config.depth
    if not (Path(args.data) / "annotations").is_dir():
        n = 2 * args.search_batch * (args.steps + 1)
        subprocess.run([sys.executable, "-m", "trainers.data.synthetic", "--format", "coco",
                        "--out", str(args.data), "--train", str(n), "--val", "4"],
                       check=True, cwd=REPO, capture_output=True)
    args.data = Path(args.data).resolve()
    hw = "x".join(map(str, args.base_size))
    series: dict[str, list[dict]] = {"batch": [], "input size": [], "parts": [], "depth": []}
    for batch in batches:
        print(f"train step: batch {batch} at {hw} ...", flush=True)
        series["batch"].append({"x": batch, "label": str(batch), **_run(args, "train", str(batch), hw)})
    for h, w in sizes:
        print(f"train step: {h}x{w} at batch {args.base_batch} ...", flush=True)
        series["input size"].append({"x": h * w / 1e6, "label": f"{h}x{w}",
                                     **_run(args, "train", str(args.base_batch), f"{h}x{w}")})
    base_parts = parts[min(1, len(parts) - 1)]
    for n in parts:
        print(f"search step: {n} parts ...", flush=True)
        series["parts"].append({"x": n, "label": str(n), **_run(args, "search", str(n), str(base_depth))})
    for d in depths:
        print(f"search step: depth {d} ...", flush=True)
        series["depth"].append({"x": d, "label": str(d), **_run(args, "search", str(base_parts), str(d))})
    rows, fits = [], {}
    units = {"batch": "per image", "input size": "per megapixel", "parts": "per part", "depth": "per layer"}
    for name, points in series.items():
        fits[name] = fit_line([p["x"] for p in points], [p["seconds"] for p in points])
        fits[name]["memory"] = fit_line([p["x"] for p in points], [p["peak_bytes"] / 2**30 for p in points])
        for p in points:
            rows.append([name, p["label"], f"{p['seconds']:.3f}", f"{p['peak_bytes'] / 2**30:.2f}"])
        f = fits[name]
        rows.append([name, "fit", f"{f['a']:.3f} + {f['b']:.3f} {units[name]} (R² {f['r2']:.3f})",
                     f"{f['memory']['a']:.2f} + {f['memory']['b']:.3f} {units[name]}"])
    print(format_table(["series", "point", "s/step", "peak GiB"], rows))
    print(f"train: {args.model}, channels-last float32, batch {args.base_batch} / input {hw} when "
          f"not varied; search: darts on {Path(args.search_cfg).name} at "
          f"{'x'.join(map(str, args.search_size))}, batch {args.search_batch}, parts {base_parts} / "
          f"depth {base_depth} when not varied; device {args.device}, "
          f"{args.threads or torch.get_num_threads()} threads, median of {args.steps} steps")
    if args.json:
        Path(args.json).write_text(json.dumps({"series": series, "fits": fits, "model": args.model,
                                               "device": args.device}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
