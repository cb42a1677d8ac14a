"""Compression on the synthetic task: float vs distilled vs PACT (fake-quant and onnxruntime int8).

    python -m benchmarks.compress [--root data/synthetic_coco] [--size 128x96] [--epochs 12]
                                  [--qat-epochs 3] [--arch derived.json] [--out DIR] [--json]

For each student (``hrnet_tiny``, and with ``--arch`` a derived network from the search), with
the real commands (``train_derived.py``, ``trainers.deploy.export``) and one recipe
(configs/train/cpu_tiny.yaml at ``--epochs``):

- **float**: the student trained alone;
- **distilled**: the same student, same epochs, against the heatmaps of a teacher —
  ``hrnet_tiny`` trained for 2 × ``--epochs`` (its AP is reported);
- **PACT**: the float student fine-tuned ``--qat-epochs`` epochs with ``quant.method pact``
  (8 bits, per-channel weights; lr × 0.1), evaluated as the fake-quantized torch network and as
  the int8 ONNX model that ``trainers.deploy.export --int8`` writes (onnxruntime's int8 kernels), next
  to the float student fine-tuned the same epochs at the same lr (the fair float reference);
- file sizes of the float and int8 ONNX models and onnxruntime latency per crop, 1 thread.

AP is COCO OKS AP on the synthetic validation set with flip test. Targets (issue 14): int8 file
≤ 0.3× float; PACT int8 AP within 1.0 point of float; distilled ≥ alone.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

import numpy as np
import torch
from torch import nn

from trainers.config.experiment import load_config
from trainers.engine.fit import evaluate_model
from trainers.report import format_table

CFG = REPO / "configs" / "models" / "hrnet_tiny_synthetic.yaml"


def _run(*args: str) -> str:
    t0 = time.time()
    r = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    print(f"  {' '.join(a for a in args[:4])} … {time.time() - t0:.0f} s", flush=True)
    return r.stdout


def _best_ap(run: Path) -> float:
    return float(json.loads((run / "metrics.json").read_text())["best"])


class _OnnxNetwork(nn.Module):
    """An onnxruntime session (1 thread) behind the nn.Module interface evaluate_model uses."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.anchor = nn.Parameter(torch.zeros(1))  # gives the module a device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {"image": x.cpu().numpy()})[0])


def _latency_ms(path: Path, size: tuple[int, int], runs: int = 50) -> float:
    net = _OnnxNetwork(path)
    x = np.random.default_rng(0).standard_normal((1, 3, *size)).astype(np.float32)
    for _ in range(5):
        net.session.run(None, {"image": x})
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        net.session.run(None, {"image": x})
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default="data/synthetic_coco")
    p.add_argument("--size", default="128x96")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--qat-epochs", type=int, default=3)
    p.add_argument("--arch", help="a derived architecture (strategies.prune's derived.json)")
    p.add_argument("--out", default="runs/bench_compress")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(2)
    root, out = Path(args.root).resolve(), Path(args.out).resolve()
    if not (root / "annotations").is_dir():
        _run("-m", "trainers.data.synthetic", "--format", "coco", "--out", str(root))
    h, w = (int(v) for v in args.size.split("x"))
    lr = float(load_config(CFG).train.lr)
    common = ["dataset.root", str(root), "model.input_size", args.size, "--no-progress"]

    def train(run: Path, epochs: int, *extra: str) -> float:
        if not (run / "metrics.json").is_file():
            _run("trainers/train_derived.py", "--cfg", str(CFG), "--out", str(run), *common,
                 "train.epochs", str(epochs), "train.lr_steps", f"[{int(epochs * 0.75)}]", *extra)
        return _best_ap(run)

    start = time.time()
    print(f"teacher: hrnet_tiny, {2 * args.epochs} epochs", flush=True)
    teacher_ap = train(out / "teacher", 2 * args.epochs)
    students = [("hrnet_tiny", [])] + ([("derived", ["--arch", str(Path(args.arch).resolve())])]
                                       if args.arch else [])
    rows, results = [], {}
    for name, source in students:
        print(f"student {name}", flush=True)
        base = out / name
        float_ap = train(base / "float", args.epochs, *source)
        distill_ap = train(base / "distill", args.epochs, *source, "--distill_config", str(CFG),
                           "distill.weights", str(out / "teacher" / "best.ckpt"))
        pact_ap = train(base / "pact", args.qat_epochs, *source, "quant.method", "pact",
                        "model.pretrained", str(base / "float" / "best.ckpt"),
                        "train.lr", str(lr * 0.1))
        # PACT's float reference: the same extra epochs at the same lr, without quantization
        tuned_ap = train(base / "float_tuned", args.qat_epochs, *source, "model.pretrained",
                         str(base / "float" / "best.ckpt"), "train.lr", str(lr * 0.1))
        _run("-m", "trainers.export", "--weights", str(base / "float" / "best.ckpt"), "--onnx",
             str(base / "float.onnx"))
        _run("-m", "trainers.export", "--weights", str(base / "pact" / "best.ckpt"), "--onnx",
             str(base / "int8.onnx"), "--int8", "--calib-root", str(root))
        cfg = load_config(CFG, ["dataset.root", str(root), "model.input_size", args.size,
                                "train.num_workers", "0"])
        int8_ap = float(evaluate_model(cfg, _OnnxNetwork(base / "int8.onnx"), base / "int8_eval",
                                       progress=False)["metrics"]["AP"])
        sizes = {k: (base / f"{k}.onnx").stat().st_size / 1e6 for k in ("float", "int8")}
        lat = {k: _latency_ms(base / f"{k}.onnx", (h, w)) for k in ("float", "int8")}
        results[name] = {"ap_float": float_ap, "ap_float_tuned": tuned_ap,
                         "ap_distilled": distill_ap, "ap_pact": pact_ap,
                         "ap_int8": int8_ap, "mb_float": sizes["float"], "mb_int8": sizes["int8"],
                         "ms_float": lat["float"], "ms_int8": lat["int8"]}
        rows.append([name, f"{float_ap:.4f}", f"{tuned_ap:.4f}", f"{distill_ap:.4f}",
                     f"{pact_ap:.4f}",
                     f"{int8_ap:.4f}", f"{sizes['float']:.2f} / {sizes['int8']:.2f} "
                     f"({sizes['int8'] / sizes['float']:.2f}×)",
                     f"{lat['float']:.2f} / {lat['int8']:.2f}"])
    print(format_table(["student", "AP float", f"AP float +{args.qat_epochs} ep", "AP distilled",
                        "AP PACT (torch)",
                        "AP int8 (onnxruntime)", "MB float / int8", "ms/crop float / int8"], rows))
    print(f"teacher hrnet_tiny ({2 * args.epochs} epochs) AP {teacher_ap:.4f}; students "
          f"{args.epochs} epochs, PACT {args.qat_epochs} more; {args.size}; "
          f"{time.time() - start:.0f} s")
    for name, r in results.items():
        print(f"{name}: int8 file {r['mb_int8'] / r['mb_float']:.2f}× float (target ≤ 0.30); "
              f"int8 AP {100 * (r['ap_int8'] - r['ap_float_tuned']):+.1f} points vs float with the "
              f"same extra epochs (target ≥ −1.0); "
              f"distilled {100 * (r['ap_distilled'] - r['ap_float']):+.1f} points vs alone "
              "(target ≥ 0)")
    if args.json:
        print(json.dumps({"teacher_ap": teacher_ap, "students": results}))


if __name__ == "__main__":
    main()
