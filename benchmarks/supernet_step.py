"""One DARTS search step of the PNFS space vs training steps of frozen networks.

Cases (each in its own process, so peak memory is its own):

- ``darts``, ``darts2``: the step ``python -m strategies.search --strategy darts|darts2`` takes —
  :func:`strategies.oneshot.run_oneshot` itself, on NNI's supernet of
  ``configs/spaces/pnfs_hrnet_w32_cnf5.yaml`` (width choices and α/β), fed a small synthetic
  COCO set written once (``--data``): one architecture step (first or second order) on one half
  of the training set + one weight step on the other, timed per training batch by a callback;
- ``darts_pc``: ``darts`` with PC-DARTS's partial channel connections
  (``space.cell_config.partial_channels 4``: the mixed operations see a quarter of the channels);
- ``sync``: PNFS's single-level step (``--strategy sync``): α/β and the weights take one step
  together on the training batch's loss, so there is no separate architecture forward (the
  bi-level step's cost, side by side);
- ``darts_textbook``: ``darts`` with the architecture half-step as it was before it took the
  gradient of α/β alone (a full backward through every weight), for a side-by-side figure;
- ``posenfs``: the PoseNFS reference code's first-order search step, side by side: its network
  (``tests/official_layouts.OfficialPNFS``, written from PoseNFS's structure: the HRNet stem~stage3
  backbone, CNF×5 with α per part and β per cell, the vector heads) and its step as PoseNFS's
  ``train_search`` runs it: architecture step (validation batch, a full backward, Adam on α/β),
  then weight step (training batch, backward, Adam on the weights); float32, NCHW (no widths);
- ``all_ops``: the frozen network of the same layout with every operation and input present
  (search off: PNFS's "None" baseline), a plain training step;
- ``argmax``: the frozen network of one architecture of the space (one op per edge, one input
  per cell, full widths), a plain training step.

    python -m benchmarks.supernet_step [--size 256x192] [--batch 8] [--steps 3] [--device cpu]
                                       [--cases darts,darts2,all_ops,argmax] [--no-widths]
                                       [--nchw] [--threads 2] [--json]

A case name may end in ``@bf16``: the same step under bf16 autocast (``train.precision
bf16-mixed``; CPU or CUDA), e.g. ``--cases all_ops,darts,darts@bf16``. Every case trains with
the trainer's default channels-last layout (``train.channels_last``) unless ``--nchw``.

Prints a table: seconds per step (median of ``--steps`` after one warm-up) and peak memory
(CUDA: max allocated; CPU: peak RSS of the process). With ``--json`` the last line is
``{"darts": {"seconds": s, "peak_bytes": n}, "darts2": {...}, "all_ops": {...}, "argmax": {...}}``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch


from benchmarks.measure import peak_memory_bytes
from trainers.config.experiment import load_config
from trainers.report import format_table

REPO = Path(__file__).resolve().parent.parent
SPACE = REPO / "configs" / "spaces" / "pnfs_hrnet_w32_cnf5.yaml"
CASES = ["darts", "darts_pc", "darts_textbook", "darts2", "sync", "posenfs", "all_ops", "argmax"]
PC_DARTS_K = 4  #: the ``darts_pc`` case's partial_channels (PC-DARTS's K)


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



class _StepTimer:
    """A Lightning callback: seconds of each training batch (the whole strategy step)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.times: list[float] = []
        self.t0 = 0.0

    def on_train_batch_start(self, *args) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.t0 = time.perf_counter()

    def on_train_batch_end(self, *args) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self.t0)
        if len(self.times) == 1 and self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()  # after the warm-up step


def _strategy_case(args, device: torch.device) -> dict:
    """``run_oneshot`` for ``args.steps + 1`` training batches (one epoch, 4 validation
    images), each batch timed by the callback; the first is the warm-up."""
    import tempfile

    import pytorch_lightning as pl

    from strategies.oneshot import run_oneshot

    if args.textbook:  # the step before α-only gradients: a full backward (side by side)
        from strategies.oneshot_modules import PoseDartsModule

        def textbook(self, arch_opt, batch, batch_idx):
            arch_opt.zero_grad()
            self.manual_backward(self.arch_loss(batch, batch_idx))
            arch_opt.step()

        PoseDartsModule.arch_step = textbook
    timer = _StepTimer(device)
    params: list[int] = []
    callback = type("StepTimer", (pl.Callback,), {
        "on_train_batch_start": lambda self, trainer, module, *a: timer.on_train_batch_start(),
        "on_train_batch_end": lambda self, trainer, module, *a: (
            timer.on_train_batch_end(),
            params.append(sum(p.numel() for p in module.training_module.model.parameters())))})()
    h, w = args.size
    cfg = load_config(SPACE, [
        "dataset.name", "coco", "dataset.root", str(args.data), "model.input_size", f"{h}x{w}",
        "search.epochs", "1", "search.batch_size", str(args.batch), "train.num_workers", "0",
        "train.limit_train_batches", str(args.steps + 1), "test.flip_test", "false",
        "test.batch_size", "4", "train.devices", "1", "train.precision", args.precision,
        "train.channels_last", str(not args.nchw).lower(),
        *(["space.backbone.width_multipliers", "[]"] if args.no_widths else []),
        *(["space.cell_config.partial_channels", str(args.partial)] if args.partial > 1 else [])])
    with tempfile.TemporaryDirectory() as tmp:
        run_oneshot(cfg, args.case, Path(tmp), progress=False, callbacks=[callback])
    return {"case": args.case, "seconds": statistics.median(timer.times[1:]),
            "peak_bytes": peak_memory_bytes(device), "params": params[0]}


def _posenfs_case(args, device: torch.device, loss_fn) -> dict:
    """PoseNFS's first-order search step on its own network (float32, NCHW, as released)."""
    from tests.official_layouts import OfficialPNFS

    model = OfficialPNFS("coco").to(device).train()
    arch = [p for n, p in model.named_parameters() if n.endswith(("alphas", "betas"))]
    arch_ids = {id(p) for p in arch}
    weights = [p for p in model.parameters() if id(p) not in arch_ids]
    w_opt = torch.optim.Adam(weights, lr=1e-3)
    a_opt = torch.optim.Adam(arch, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)

    def step():
        x_val, y_val = _batch(args, device)
        a_opt.zero_grad()
        loss_fn(model(x_val), y_val).backward()  # PoseNFS: loss.backward() through everything
        a_opt.step()
        x, y = _batch(args, device)
        w_opt.zero_grad()
        loss_fn(model(x), y).backward()
        w_opt.step()

    times = _time_steps(step, args, device)
    return {"case": "posenfs", "seconds": statistics.median(times), "peak_bytes": peak_memory_bytes(device),
            "params": sum(p.numel() for p in model.parameters())}


def _time_steps(step, args, device: torch.device) -> list[float]:
    """One warm-up call of ``step``, then ``args.steps`` timed calls (seconds each)."""
    step()
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
    return times


def _run_case(args) -> dict:
    from search_space.pose_space import freeze
    from search_space.supernet import build

    from trainers.engine.memory_format import channels_last_input, to_channels_last

    warnings.filterwarnings("ignore")
    device = torch.device(args.device)
    torch.manual_seed(0)
    name, _, variant = args.case.partition("@")
    args.precision = "bf16-mixed" if variant == "bf16" else "32-true"
    args.case = name
    if args.case in ("darts", "darts2", "darts_textbook", "darts_pc", "sync"):
        case = args.case
        args.textbook = case == "darts_textbook"
        args.partial = PC_DARTS_K if case == "darts_pc" else 1
        args.case = case if case in ("darts2", "sync") else "darts"
        return {**_strategy_case(args, device), "case": case}
    loss_fn = torch.nn.MSELoss()
    if args.case == "posenfs":
        return _posenfs_case(args, device, loss_fn)
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
    model = model.to(device).train()
    if not args.nchw:
        to_channels_last(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        x, y = _batch(args, device)
        opt.zero_grad()
        with torch.autocast(device.type, torch.bfloat16, enabled=args.precision == "bf16-mixed"):
            out = model(channels_last_input(x, not args.nchw))
        loss_fn(out.float(), y).backward()
        opt.step()

    times = _time_steps(step, args, device)
    params = sum(p.numel() for p in model.parameters())
    return {"case": args.case, "seconds": statistics.median(times), "peak_bytes": peak_memory_bytes(device),
            "params": params}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="256x192")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--cases", default="argmax,all_ops,darts,darts2")
    p.add_argument("--data", default="runs/bench_supernet_data",
                   help="the synthetic COCO set the strategy cases read (written if missing)")
    p.add_argument("--no-widths", action="store_true", help="darts/darts2 without the width "
                   "choices (α/β only: the space PoseNFS's own search code has)")
    p.add_argument("--nchw", action="store_true", help="train.channels_last false everywhere")
    p.add_argument("--threads", type=int, default=2, help="torch threads (0: torch's default)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--case", help=argparse.SUPPRESS)
    args = p.parse_args()
    args.size = tuple(int(v) for v in args.size.lower().split("x"))
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.case:
        print(json.dumps(_run_case(args)))
        return 0
    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c.partition("@")[0] not in CASES or c.partition("@")[2] not in ("", "bf16")]
    if unknown:
        p.error(f"unknown case(s) {unknown}: choose from {CASES}, each optionally with @bf16")
    if any(c.startswith("darts") for c in cases) and not (Path(args.data) / "annotations").is_dir():
        subprocess.run([sys.executable, "-m", "trainers.data.synthetic", "--format", "coco",
                        "--out", args.data, "--train", str(4 * args.batch * (args.steps + 1)),
                        "--val", "4"], check=True, cwd=REPO, capture_output=True)
    rows, results = [], {}
    for case in cases:
        cmd = [sys.executable, "-m", __spec__.name, "--case", case, "--size", f"{args.size[0]}x{args.size[1]}",
               "--batch", str(args.batch), "--steps", str(args.steps), "--device", args.device,
               "--data", str(Path(args.data).resolve()), "--threads", str(args.threads)] + (
                   ["--no-widths"] if args.no_widths else []) + (["--nchw"] if args.nchw else [])
        print(f"running {case} ...", flush=True)
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        if r.returncode != 0:
            sys.exit(f"{case} failed:\n{r.stderr[-3000:]}")
        results[case] = json.loads(r.stdout.strip().splitlines()[-1])
    for case in cases:
        r = results[case]
        variant = case.partition("@")[2]
        base = results.get("all_ops" + (f"@{variant}" if variant else ""), results.get("all_ops"))
        ref = results.get("posenfs")
        rows.append([case, f"{r['params'] / 1e6:.2f}", f"{r['seconds']:.3f}",
                     f"{r['seconds'] / base['seconds']:.2f}x" if base else "-",
                     f"{r['seconds'] / ref['seconds']:.2f}x" if ref else "-",
                     f"{r['peak_bytes'] / 2**30:.2f}",
                     f"{r['peak_bytes'] / ref['peak_bytes']:.2f}x" if ref else "-"])
    print(format_table(["case", "params (M)", "s/step", "vs all_ops (same precision)",
                        "vs posenfs", "peak GiB", "memory vs posenfs"], rows))
    print(f"device {args.device}, input {args.size[0]}x{args.size[1]}, batch {args.batch}, "
          f"{'NCHW' if args.nchw else 'channels-last'}, {args.threads or torch.get_num_threads()} threads; "
          "darts/darts2 = strategies.search's step: one architecture step + one weight step")
    if args.json:
        print(json.dumps({c: {"seconds": results[c]["seconds"], "peak_bytes": results[c]["peak_bytes"]}
                          for c in cases}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
