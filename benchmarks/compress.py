"""Compression on the synthetic task: float vs distilled vs PACT (fake-quant and onnxruntime int8).

    python -m benchmarks.compress [--root data/synthetic_coco] [--size 128x96] [--epochs 12]
                                  [--qat-epochs 3] [--arch derived.json] [--seeds 1]
                                  [--no-distill] [--students hrnet_tiny,derived] [--out DIR]
                                  [--json]

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

``--seeds K`` repeats every student run with training seeds 0 … K−1 (the teacher is trained
once, seed 0): one run's AP moves by a few points with the seed on this task, so each target is
judged on the per-seed differences (int8 − float fine-tuned, distilled − alone; paired, each
seed's runs start from the same float network) as a mean with its 95 % Student-t interval —
met when the whole interval clears the target, missed when the whole interval falls short,
undecided otherwise. ``--no-distill`` skips the teacher and the distilled students;
``--students`` picks which students run (``derived`` needs ``--arch``). Runs already in ``--out``
are reused, so raising ``--seeds`` trains only the new seeds.
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

from benchmarks.search_quality import mean_std_cell
from benchmarks.seed_spread import mean_interval
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


def verdict(low: float, high: float, target: float) -> str:
    """A difference's 95 % interval [low, high] (AP points) against a lower bound ``target``:
    ``met`` when the whole interval is at or above it, ``missed`` when all of it is below,
    ``undecided`` when it straddles the target."""
    if low >= target:
        return "met"
    if high < target:
        return "missed"
    return "undecided"


def paired_difference(a: list[float], b: list[float],
                      target: float | None = None) -> dict[str, object]:
    """``a − b`` per seed in AP points (``a[i]`` and ``b[i]`` share seed ``i``): the mean, its
    95 % Student-t interval, the spread, and the :func:`verdict` against ``target`` points
    (none without a target)."""
    if len(a) != len(b) or not a:
        raise ValueError(f"paired values differ in length or are empty: {len(a)} vs {len(b)}")
    diffs = [100 * (x - y) for x, y in zip(a, b)]
    mean, low, high = mean_interval(diffs)
    std = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
    if target is None:
        judged = None
    elif len(diffs) > 1:
        judged = verdict(low, high, target)
    else:
        judged = ("met" if mean >= target else "missed") + " (one seed: no interval)"
    return {"points": diffs, "mean": mean, "std": std, "low": low, "high": high,
            "target": target, "verdict": judged}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default="data/synthetic_coco")
    p.add_argument("--size", default="128x96")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--qat-epochs", type=int, default=3)
    p.add_argument("--arch", help="a derived architecture (strategies.prune's derived.json)")
    p.add_argument("--seeds", type=int, default=1,
                   help="training seeds 0 … K−1 for every student run (default 1)")
    p.add_argument("--no-distill", action="store_true",
                   help="skip the teacher and the distilled students")
    p.add_argument("--students", help="comma-separated, of hrnet_tiny and derived (derived "
                   "needs --arch); default hrnet_tiny, and derived with --arch")
    p.add_argument("--out", default="runs/bench_compress")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.seeds < 1:
        p.error(f"argument --seeds: at least 1, got {args.seeds}")
    chosen = ([s for s in args.students.split(",") if s] if args.students is not None
              else ["hrnet_tiny", *(["derived"] if args.arch else [])])
    unknown = sorted(set(chosen) - {"hrnet_tiny", "derived"})
    if unknown or not chosen:
        p.error(f"argument --students: of hrnet_tiny and derived, got {args.students!r}")
    if "derived" in chosen and not args.arch:
        p.error("argument --students: derived needs --arch")
    torch.set_num_threads(2)
    root, out = Path(args.root).resolve(), Path(args.out).resolve()
    if not (root / "annotations").is_dir():
        _run("-m", "trainers.data.synthetic", "--format", "coco", "--out", str(root))
    h, w = (int(v) for v in args.size.split("x"))
    lr = float(load_config(CFG).train.lr)
    common = ["dataset.root", str(root), "model.input_size", args.size, "--no-progress"]
    distill = not args.no_distill

    def train(run: Path, epochs: int, seed: int, *extra: str) -> float:
        if not (run / "metrics.json").is_file():
            _run("trainers/train_derived.py", "--cfg", str(CFG), "--out", str(run), *common,
                 "train.epochs", str(epochs), "train.lr_steps", f"[{int(epochs * 0.75)}]",
                 "seed", str(seed), *extra)
        return _best_ap(run)

    start = time.time()
    teacher_ap = None
    if distill:
        print(f"teacher: hrnet_tiny, {2 * args.epochs} epochs", flush=True)
        teacher_ap = train(out / "teacher", 2 * args.epochs, 0)
    sources = {"hrnet_tiny": [], **({"derived": ["--arch", str(Path(args.arch).resolve())]}
                                    if args.arch else {})}
    students = [(name, source) for name, source in sources.items() if name in chosen]
    ap_keys = ["ap_float", "ap_float_tuned", *(["ap_distilled"] if distill else []), "ap_pact",
               "ap_int8"]
    keys = [*ap_keys, "mb_float", "mb_int8", "ms_float", "ms_int8"]
    eval_cfg = load_config(CFG, ["dataset.root", str(root), "model.input_size", args.size,
                                 "train.num_workers", "0"])
    rows, results = [], {}
    for name, source in students:
        per_seed: dict[str, list[float]] = {k: [] for k in keys}
        for seed in range(args.seeds):
            print(f"student {name}, seed {seed}", flush=True)
            # seed 0 keeps the single-seed layout, so earlier runs are reused
            base = out / name if seed == 0 else out / name / f"seed{seed}"
            ap = {"ap_float": train(base / "float", args.epochs, seed, *source)}
            if distill:
                ap["ap_distilled"] = train(base / "distill", args.epochs, seed, *source,
                                           "--distill_config", str(CFG), "distill.weights",
                                           str(out / "teacher" / "best.ckpt"))
            ap["ap_pact"] = train(base / "pact", args.qat_epochs, seed, *source, "quant.method",
                                  "pact", "model.pretrained", str(base / "float" / "best.ckpt"),
                                  "train.lr", str(lr * 0.1))
            # PACT's float reference: the same extra epochs at the same lr, without quantization
            ap["ap_float_tuned"] = train(base / "float_tuned", args.qat_epochs, seed, *source,
                                         "model.pretrained", str(base / "float" / "best.ckpt"),
                                         "train.lr", str(lr * 0.1))
            _run("-m", "trainers.export", "--weights", str(base / "float" / "best.ckpt"),
                 "--onnx", str(base / "float.onnx"))
            _run("-m", "trainers.export", "--weights", str(base / "pact" / "best.ckpt"), "--onnx",
                 str(base / "int8.onnx"), "--int8", "--calib-root", str(root))
            evaluation = evaluate_model(eval_cfg, _OnnxNetwork(base / "int8.onnx"),
                                        base / "int8_eval", progress=False)
            ap["ap_int8"] = float(evaluation["metrics"]["AP"])
            for k in ("float", "int8"):
                ap[f"mb_{k}"] = (base / f"{k}.onnx").stat().st_size / 1e6
                ap[f"ms_{k}"] = _latency_ms(base / f"{k}.onnx", (h, w))
            for k in keys:
                per_seed[k].append(ap[k])
        r: dict[str, object] = {"seeds": per_seed}
        r["int8_vs_float_tuned"] = paired_difference(per_seed["ap_int8"],
                                                     per_seed["ap_float_tuned"], -1.0)
        # where a loss comes from: QAT itself (torch), or the int8 model onnxruntime runs
        r["pact_vs_float_tuned"] = paired_difference(per_seed["ap_pact"],
                                                     per_seed["ap_float_tuned"])
        r["int8_vs_pact"] = paired_difference(per_seed["ap_int8"], per_seed["ap_pact"])
        if distill:
            r["distilled_vs_float"] = paired_difference(per_seed["ap_distilled"],
                                                        per_seed["ap_float"], 0.0)
        results[name] = r
        mb = [statistics.fmean(per_seed[f"mb_{k}"]) for k in ("float", "int8")]
        ms = [statistics.median(per_seed[f"ms_{k}"]) for k in ("float", "int8")]
        rows.append([name, *(mean_std_cell(per_seed[k]) for k in ap_keys),
                     f"{mb[0]:.2f} / {mb[1]:.2f} ({mb[1] / mb[0]:.2f}×)",
                     f"{ms[0]:.2f} / {ms[1]:.2f}"])
    print(format_table(["student", "AP float", f"AP float +{args.qat_epochs} ep",
                        *(["AP distilled"] if distill else []), "AP PACT (torch)",
                        "AP int8 (onnxruntime)", "MB float / int8", "ms/crop float / int8"], rows))
    print((f"teacher hrnet_tiny ({2 * args.epochs} epochs, seed 0) AP {teacher_ap:.4f}; "
           if distill else "") +
          f"students {args.epochs} epochs, PACT {args.qat_epochs} more; {args.size}; "
          f"AP mean ± std over seeds 0–{args.seeds - 1}; {time.time() - start:.0f} s")
    for name, r in results.items():
        seeds = r["seeds"]
        size = statistics.fmean(seeds["mb_int8"]) / statistics.fmean(seeds["mb_float"])
        lines = [f"{name}: int8 file {size:.2f}× float (target ≤ 0.30)"]
        for key, what in (("int8_vs_float_tuned", "int8 AP vs float with the same extra epochs"),
                          ("pact_vs_float_tuned", "of which PACT in torch vs that float"),
                          ("int8_vs_pact", "and int8 (onnxruntime) vs PACT in torch"),
                          ("distilled_vs_float", "distilled AP vs alone")):
            if key in r:
                d = r[key]
                judged = (f"; target ≥ {d['target']:+.1f}): {d['verdict']}"
                          if d["target"] is not None else ")")
                lines.append(f"{what}: {d['mean']:+.1f} points (95 % {d['low']:+.1f} to "
                             f"{d['high']:+.1f}, std {d['std']:.1f}, {len(d['points'])} seeds"
                             + judged)
        print("\n  ".join(lines))
    if args.json:
        from benchmarks.measure import machine

        print(json.dumps({"machine": machine(), "teacher_ap": teacher_ap, "epochs": args.epochs,
                          "qat_epochs": args.qat_epochs, "size": args.size,
                          "seeds": args.seeds, "students": results}))


if __name__ == "__main__":
    main()
