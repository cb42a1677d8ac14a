"""HRNet-W32 training step: posenas's trainer against the official code's network, side by side.

    python -m benchmarks.train_step [--batch 8] [--size 256x192] [--steps 5] [--warmup 2]
                                    [--threads 2] [--cases official,posenas_nchw,posenas,posenas_bf16]
                                    [--device cpu|cuda] [--json]

Cases, each in a fresh subprocess (so its peak resident memory is its own), all from the same
weights (the official network's, converted) and the same batch:

- ``official``: ``pose_hrnet.py``'s PoseHighResolutionNet as released (``tests/official_layouts``,
  written from the official structure: module names, nn.Upsample fuses, the forward as released)
  trained the way the official ``train()`` does: forward, JointsMSELoss with target weights,
  ``zero_grad``, backward, Adam step; float32, NCHW;
- ``posenas_nchw``: posenas's ``hrnet_w32`` trained by the code path ``train_derived.py`` runs
  (``PoseModule`` under a Lightning ``Trainer``: uint8 batch normalised in the step, logging,
  Adam) with ``train.channels_last false``;
- ``posenas``: the same with the defaults (``train.channels_last true``, float32);
- ``posenas_bf16``: ``train.precision bf16-mixed`` on top (autocast; weights and optimiser in
  float32).

Prints seconds per step (median after the warm-up), images/s, peak memory (CPU: the process's
peak RSS; CUDA: max allocated after the warm-up), what the training added to it (the peak less
the memory held just before the first step: on CPU the RSS then, which counts the interpreter
and its libraries — Lightning's imports alone are ~160 MB here — the weights and the batch),
each against ``official``, and the largest difference of the first step's heatmaps from
``official``'s (the float32 modes compute the same function: 0 for NCHW, rounding for NHWC),
relative to the largest official heatmap value. With ``--json`` the last line is
``{case: {"seconds", "peak_bytes", "start_bytes", "max_rel_diff"}}``.
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

REPO = Path(__file__).resolve().parent.parent

import torch

from benchmarks.measure import peak_memory_bytes, resident_bytes, synchronize

CASES = ["official", "posenas_nchw", "posenas", "posenas_bf16"]


# ------------------------------------------------------------------------------ the inputs
def _inputs(batch: int, size: tuple[int, int]) -> dict[str, torch.Tensor]:
    """One training batch as the loader gives it (uint8 images, targets, target weights)."""
    gen = torch.Generator().manual_seed(0)
    h, w = size
    weight = (torch.rand(batch, 17, 1, generator=gen) > 0.2).float()
    return {"image": torch.randint(0, 256, (batch, h, w, 3), dtype=torch.uint8, generator=gen),
            "target": torch.rand(batch, 17, h // 4, w // 4, generator=gen),
            "target_weight": weight, "size": torch.tensor(batch)}


def _official_network() -> torch.nn.Module:
    from tests.official_layouts import OfficialHRNet

    torch.manual_seed(0)
    net = OfficialHRNet()  # HRNet-W32's widths, blocks and modules
    for m in net.modules():  # the official init_weights(): conv N(0, 0.001), BN (1, 0)
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, std=0.001)
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)
    return net.train()


# ------------------------------------------------------------------------------ measuring


def _official(args, batch) -> tuple[list[float], torch.Tensor, int]:
    from trainers.data.topdown import normalize_images
    from trainers.engine.losses import JointsMSELoss

    model = _official_network().to(args.device)
    criterion = JointsMSELoss(True)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    # NCHW, as the official loader gives
    images = normalize_images(batch["image"].to(args.device)).contiguous()
    target, weight = batch["target"].to(args.device), batch["target_weight"].to(args.device)
    times, first = [], None
    start_bytes = resident_bytes(args.device)
    for i in range(args.warmup + args.steps):
        synchronize(args.device)
        t0 = time.perf_counter()
        out = model(images)
        loss = criterion(out, target, weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        synchronize(args.device)
        times.append(time.perf_counter() - t0)
        if i + 1 == args.warmup and args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        if first is None:
            first = out.detach().float().cpu().clone()
    return times[args.warmup:], first, start_bytes


class _Batches(torch.utils.data.Dataset):
    def __init__(self, batch: dict, n: int) -> None:
        self.batch, self.n = batch, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return self.batch


def _posenas(args, batch, channels_last: bool, precision: str
             ) -> tuple[list[float], torch.Tensor, int]:
    import pytorch_lightning as pl

    from search_space.models import build_model
    from trainers.config.experiment import load_config
    from trainers.engine.fit import trainer_kwargs
    from trainers.weights.formats import convert_state
    from trainers.engine.module import PoseModule

    cfg = load_config(REPO / "configs" / "datasets" / "synthetic_coco.yaml", [
        "dataset.root", "unused", "model.input_size", f"{args.size[0]}x{args.size[1]}",
        "train.channels_last", str(channels_last).lower(), "train.precision", precision,
        "train.devices", "1", "train.limit_train_batches", str(args.warmup + args.steps)])
    model = build_model("hrnet_w32", "coco")
    model.load_state_dict(convert_state(_official_network().state_dict()).state)
    times: list[float] = []
    first: list[torch.Tensor] = []
    start_bytes: list[int] = []  # before the first step
    model.register_forward_hook(lambda m, i, o: first.append(o.detach().float().cpu().clone())
                                if not first else None)

    class Timer(pl.Callback):
        def on_train_batch_start(self, *a) -> None:
            synchronize(args.device)
            if not times:
                start_bytes.append(resident_bytes(args.device))
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, *a) -> None:
            synchronize(args.device)
            times.append(time.perf_counter() - self.t0)
            if len(times) == args.warmup and args.device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()

    loader = torch.utils.data.DataLoader(_Batches(batch, args.warmup + args.steps), batch_size=None)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = pl.Trainer(max_epochs=1, callbacks=[Timer()], logger=False,
                             enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, limit_val_batches=0,
                             default_root_dir=tmp, **{**trainer_kwargs(cfg), "accelerator":
                                                      "gpu" if args.device.startswith("cuda") else "cpu"})
        trainer.fit(PoseModule(model, cfg, out_dir=tmp), loader)
    return times[args.warmup:], first[0], start_bytes[0]


def _run_case(args) -> dict:
    warnings.filterwarnings("ignore")
    batch = _inputs(args.batch, args.size)
    if args.case == "official":
        times, first, start_bytes = _official(args, batch)
    else:
        times, first, start_bytes = _posenas(args, batch, channels_last=args.case != "posenas_nchw",
                                precision="bf16-mixed" if args.case.endswith("bf16") else "32-true")
    torch.save(first, args.out)
    return {"case": args.case, "seconds": statistics.median(times),
            "peak_bytes": peak_memory_bytes(args.device), "start_bytes": start_bytes}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", default="256x192")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2, help="torch threads (0: torch's default)")
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", action="store_true")
    p.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    args.size = tuple(int(v) for v in args.size.lower().split("x"))
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.case:
        print(json.dumps(_run_case(args)))
        return 0
    from trainers.report import format_table

    cases = [c for c in args.cases.split(",") if c]
    results, outputs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            out = Path(tmp) / f"{case}.pt"
            cmd = [sys.executable, "-m", __spec__.name, "--case", case, "--out", str(out),
                   "--batch", str(args.batch), "--size", f"{args.size[0]}x{args.size[1]}",
                   "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--threads", str(args.threads), "--device", args.device]
            print(f"running {case} ...", flush=True)
            r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            if r.returncode != 0:
                sys.exit(f"{case} failed:\n{r.stderr[-3000:]}")
            results[case] = json.loads(r.stdout.strip().splitlines()[-1])
            outputs[case] = torch.load(out, weights_only=True)
    ref = results.get("official")
    rows = []
    for case in cases:
        r = results[case]
        diff = (float((outputs[case] - outputs["official"]).abs().max()
                      / outputs["official"].abs().max()) if "official" in outputs else float("nan"))
        r["max_rel_diff"] = diff
        rows.append([case, f"{r['seconds']:.3f}", f"{args.batch / r['seconds']:.2f}",
                     f"{r['seconds'] / ref['seconds']:.2f}x" if ref else "-",
                     f"{r['peak_bytes'] / 2**20:.0f}",
                     f"{r['peak_bytes'] / ref['peak_bytes']:.2f}x" if ref else "-",
                     f"{(r['peak_bytes'] - r['start_bytes']) / 2**20:.0f}",
                     f"{(r['peak_bytes'] - r['start_bytes']) / (ref['peak_bytes'] - ref['start_bytes']):.2f}x"
                     if ref else "-",
                     f"{diff:.1e}"])
    print(format_table(["case", "s/step", "images/s", "time vs official", "peak memory (MB)",
                        "memory vs official", "added by training (MB)", "vs official",
                        "max |Δ heatmap| / max |heatmap|"], rows))
    print(f"hrnet_w32 on {args.device}, {args.size[0]}x{args.size[1]}, batch {args.batch}, forward+backward+Adam, "
          f"{args.threads or torch.get_num_threads()} threads, median of {args.steps} steps after "
          f"{args.warmup} warm-up; Δ: the first step's heatmaps against official's")
    if args.json:
        print(json.dumps({c: {k: results[c][k] for k in ("seconds", "peak_bytes", "start_bytes",
                                                           "max_rel_diff")}
                          for c in cases}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
