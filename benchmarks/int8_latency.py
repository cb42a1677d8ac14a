"""int8 vs float onnxruntime latency per crop, on hrnet_tiny and architectures of the search space.

    python -m benchmarks.int8_latency [--cfg configs/search/synthetic_tiny.yaml] [--archs 5]
                                      [--arch derived.json ...] [--size 128x96] [--runs 300]
                                      [--threads 1] [--json]

Latency does not depend on the trained values (the same kernels run whatever the weights), so every
network here gets random weights, 8-bit PACT (per-channel weights, α = 4) and the exact export path
of ``trainers.export --int8`` (:func:`trainers.deploy.int8.export_int8`: float twin, BN folding,
onnxruntime's static QDQ quantization, the graph clean-up), calibrated on random crops. Networks:
``hrnet_tiny`` (the README's compression row), ``--archs`` architectures drawn at random
(:func:`strategies.latency.random_networks`, seed 0) from the space of ``--cfg`` (the derived
networks of a search are points of that space) and any ``--arch`` file (``strategies.prune``'s
``derived.json``).

For each, the float and the int8 model run interleaved, one crop at a time, ``--runs`` times
after 20 warm-up runs (onnxruntime, ``--threads`` intra-op threads); the table gives the median
ms of each, their ratio and, for the ratio, the 2.5-97.5 % range over 200 bootstrap resamples of
the runs. Targets (issue 31): int8 faster than float on every network.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from trainers.config.experiment import load_config
from trainers.config.schema import QuantConfig
from trainers.report import format_table

REPO = Path(__file__).resolve().parent.parent
CFG = REPO / "configs" / "search" / "synthetic_tiny.yaml"


def _session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _qat_network(spec, seed: int) -> torch.nn.Module:
    from trainers.engine.qat import pact_modules
    from trainers.network.build import build_network

    torch.manual_seed(seed)
    net = build_network(spec, quant=QuantConfig(method="pact")).eval()
    for m in pact_modules(net):
        m.alpha.data.fill_(4.0)
    return net


def measure(network: torch.nn.Module, size: tuple[int, int], runs: int, threads: int,
            seed: int = 0) -> dict:
    """Float and int8 latency (ms, medians) of a QAT ``network`` (:func:`_qat_network`), their
    ratio and its bootstrap 95 % range."""
    from trainers.deploy.int8 import export_int8, float_twin
    from trainers.deploy.onnx_graph import export_onnx

    twin = float_twin(network)
    rng = np.random.default_rng(seed)
    calibration = [rng.standard_normal((4, 3, *size)).astype(np.float32) for _ in range(4)]
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"float": Path(tmp) / "float.onnx", "int8": Path(tmp) / "int8.onnx"}
        export_onnx(twin, paths["float"], size)
        export_int8(twin, paths["int8"], size, calibration)
        sessions = {k: _session(p, threads) for k, p in paths.items()}
        x = rng.standard_normal((1, 3, *size)).astype(np.float32)
        times: dict[str, list[float]] = {k: [] for k in sessions}
        for i in range(20 + runs):
            for k, s in sessions.items():
                t0 = time.perf_counter()
                s.run(None, {"image": x})
                if i >= 20:
                    times[k].append((time.perf_counter() - t0) * 1e3)
    f, q = np.array(times["float"]), np.array(times["int8"])
    boot = np.random.default_rng(0)
    ratios = [np.median(q[idx]) / np.median(f[idx])
              for idx in (boot.integers(0, runs, runs) for _ in range(200))]
    return {"ms_float": float(np.median(f)), "ms_int8": float(np.median(q)),
            "ratio": float(np.median(q) / np.median(f)),
            "ratio_95": [float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", default=str(CFG), help="the search config whose space is sampled")
    p.add_argument("--archs", type=int, default=5, help="random architectures of the space")
    p.add_argument("--arch", action="append", default=[], help="a derived.json (repeatable)")
    p.add_argument("--size", default="128x96")
    p.add_argument("--runs", type=int, default=300)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    from search_space.supernet import build
    from strategies.latency import random_networks
    from trainers.network.build import spec_from_arch, spec_from_choices, spec_from_model

    torch.set_num_threads(2)
    size = tuple(int(v) for v in args.size.split("x"))
    cfg = load_config(args.cfg)
    networks = [("hrnet_tiny", _qat_network(spec_from_model("hrnet_tiny", cfg.dataset.name), 0))]
    if args.archs:
        drawn = random_networks(lambda ch: _qat_network(spec_from_choices(cfg, ch), 0),
                                build(cfg.space, cfg.dataset.name).simplify(), args.archs, seed=0)
        networks += [(f"random arch {i}", net) for i, (_, net) in enumerate(drawn)]
    for a in args.arch:  # named by folder and file: a search leaves many "derived.json"
        base = name = f"{Path(a).parent.name}/{Path(a).name}"
        copies = 1
        while name in {n for n, _ in networks}:
            copies += 1
            name = f"{base} ({copies})"
        networks.append((name, _qat_network(spec_from_arch(a), 0)))
    results, rows = {}, []
    for name, network in networks:
        r = measure(network, size, args.runs, args.threads)
        results[name] = r
        rows.append([name, f"{r['ms_float']:.3f}", f"{r['ms_int8']:.3f}",
                     f"{r['ratio']:.2f} ({r['ratio_95'][0]:.2f}-{r['ratio_95'][1]:.2f})"])
        print(f"{name}: float {r['ms_float']:.3f} ms, int8 {r['ms_int8']:.3f} ms", flush=True)
    print(format_table(["network", "float ms/crop", "int8 ms/crop", "int8 / float (95 %)"], rows))
    slower = [n for n, r in results.items() if r["ratio_95"][0] >= 1.0]
    print(f"{args.size}, {args.threads} onnxruntime thread(s), {args.runs} runs each; int8 "
          f"faster on {sum(r['ratio_95'][1] < 1.0 for r in results.values())} of {len(results)}"
          + (f"; slower on {', '.join(slower)}" if slower else ""))
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
