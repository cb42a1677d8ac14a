"""DDP on CPU processes: the training step of 2 processes × batch b next to 1 process × 2b.

    python -m benchmarks.ddp_step [--model hrnet_tiny] [--size 128x96] [--batch 8] [--steps 8]
                                  [--warmup 2] [--json]

Both sides train the same network (``build_model``) with the same global batch: one process
with ``2b`` images and 2 threads, or two gloo DDP processes with ``b`` images and 1 thread each
(the machine's 2 cores either way). Each step is timed as forward + loss + backward (DDP
all-reduces the gradients inside backward) + Adam step; the communication share is the time of
one all-reduce of all gradients as one flat tensor, measured separately in the same processes,
over the DDP step time (an upper bound: DDP overlaps it with the backward pass). Prints a table; with ``--json`` the last line is
``{"one": {"seconds": s}, "two": {"seconds": s, "allreduce_seconds": s}, "speedup": x}``.

On a GPU node the same comparison (NCCL, one process per GPU) should show a speed-up close to
the number of GPUs for HRNet-sized models, with a communication share of a few per cent; on two
CPU cores the processes compete for the same memory bandwidth, so expect well under 2×.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel


from search_space.models import build_model
from trainers.config.loader import coerce_value
from trainers.report import format_table


def _step_times(model: torch.nn.Module, batch: int, size: tuple[int, int], steps: int,
                warmup: int) -> list[float]:
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randn(batch, 3, *size)
    target = torch.rand(batch, 17, size[0] // 4, size[1] // 4)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = ((model(x) - target) ** 2).mean()
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def _one(args) -> dict:
    torch.set_num_threads(2)
    model = build_model(args.model, "coco")
    times = _step_times(model, 2 * args.batch, args.size, args.steps, args.warmup)
    return {"seconds": statistics.median(times)}


def _worker(rank: int, args, port: int, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2, timeout=timedelta(minutes=5))
    model = DistributedDataParallel(build_model(args.model, "coco"))
    times = _step_times(model, args.batch, args.size, args.steps, args.warmup)
    # all gradients as one flat tensor: what DDP's buckets reduce, without the overlap with
    # backward that DDP gets (so an upper bound on the communication in a step)
    flat = torch.randn(sum(p.numel() for p in model.parameters()))
    comm = []
    for _ in range(args.steps):
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(flat)
        comm.append(time.perf_counter() - start)
    if rank == 0:
        Path(out).write_text(json.dumps({"seconds": statistics.median(times),
                                         "allreduce_seconds": statistics.median(comm)}))
    dist.destroy_process_group()


def _two(args) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "two.json")
        mp.spawn(_worker, args=(args, port, out), nprocs=2, join=True)
        return json.loads(Path(out).read_text())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ddp_step", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="hrnet_tiny")
    p.add_argument("--size", default="128x96", help="input HxW")
    p.add_argument("--batch", type=int, default=8, help="per process (1 process: twice this)")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    args.size = coerce_value(args.size, tuple[int, int], "argument", "--size")
    one, two = _one(args), _two(args)
    share = two["allreduce_seconds"] / two["seconds"]
    speedup = one["seconds"] / two["seconds"]
    print(format_table(
        ["setup", "global batch", "threads/process", "step (s)", "all-reduce (s)", "speed-up"],
        [["1 process", 2 * args.batch, 2, f"{one['seconds']:.3f}", "-", "1.00"],
         ["2 DDP processes (gloo)", 2 * args.batch, 1, f"{two['seconds']:.3f}",
          f"{two['allreduce_seconds']:.3f} ({share:.0%} of the step)", f"{speedup:.2f}"]]))
    if args.json:
        print(json.dumps({"one": one, "two": two, "speedup": speedup}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
