"""Train a frozen network with the full recipe and evaluate it every epoch.

    python trainers/train_derived.py --cfg CFG [--model NAME] [--out DIR] [--resume]
                                     [--param_flop] [--devices N]
                                     [--distill_config TEACHER_CFG] [KEY VALUE ...]

The model is ``--model`` (a registered name: hrnet_w32, hrnet_w48, hrnet_tiny, ...) or the
config's ``model.name``. Writes DIR/last.ckpt every epoch and DIR/best.ckpt by AP (COCO) or PCKh
(MPII), both atomically, DIR/metrics.json and CSV logs (DIR defaults to output_dir/name).
``--resume`` continues from DIR/last.ckpt: epoch, optimiser, scheduler and RNG state.

``--distill_config TEACHER_CFG`` (``distill.config``) trains against a teacher's heatmaps too:
``(1 - distill.alpha) · GT loss + distill.alpha · loss to the teacher`` (``distill.loss mse|kl``),
the teacher's weights from ``distill.weights`` (or the teacher config's test.model_file); see
:mod:`trainers.engine.distill`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


import pytorch_lightning as pl
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from trainers.network.build import build_network, network_spec, resolve_weights
from trainers.engine.callbacks import DebugCallback, VisualizeCallback
from trainers.config.experiment import load_config
from trainers.data.registry import build_dataset
from trainers.data.loader import build_loader
from trainers.data.topdown import normalize_images
from trainers.engine.distill import build_teacher
from trainers.engine.qat import calibrate_pact, pact_modules
from trainers.engine.fit import fit
from trainers.cli import ArgumentParser, cli_errors, devices, output_dir
from trainers.engine.module import BrokenEvaluationError, NonFiniteLossError
from trainers.report import format_table
from search_space.counting import param_flop_report
from trainers.report import format_report


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python trainers/train_derived.py", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", required=True, help="experiment config (YAML)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", help="registered model name (default: model.name of the config)")
    src.add_argument("--arch", help="an architecture file (derived.json from strategies.prune, "
                     "or an arch.json) to freeze and train")
    p.add_argument("--out", help="output folder (default: output_dir/name)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.ckpt")
    p.add_argument("--param_flop", action="store_true", help="print params/GFLOPs first")
    p.add_argument("--devices", type=devices, help="devices to use: a count or 'auto' (sets train.devices); "
                   "N > 1 trains with DDP: N GPUs (NCCL), or N CPU processes (gloo) without CUDA; "
                   "also under torchrun")
    p.add_argument("--distill_config", metavar="TEACHER_CFG", help="distil from this teacher "
                   "(sets distill.config; weights: distill.weights W, weight: distill.alpha, "
                   "loss: distill.loss mse|kl)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    p.add_argument("--visualize", action="store_true", help="save heatmap grids of a few "
                   "validation predictions after each epoch (OUT/visualize/)")
    p.add_argument("--debug", action="store_true", help="save the first augmented training "
                   "batch of each epoch with its targets (OUT/debug/)")
    p.add_argument("overrides", nargs="*", help="config overrides: KEY VALUE or KEY=VALUE")
    return p


def _calibrate(model, cfg) -> None:
    """PACT: each clip level α starts at the largest activation of a few training batches
    (``quant.calibrate_batches``; 0 keeps ``quant.act_init``)."""
    if not cfg.quant.calibrate_batches:
        return
    loader = build_loader(build_dataset(cfg, "train"), cfg.train.batch_size, shuffle=True,
                          num_workers=0, seed=cfg.seed)
    batches = (normalize_images(b["image"], cfg.dataset.color_rgb)
               for b, _ in zip(loader, range(cfg.quant.calibrate_batches)) if b["size"])
    seen = calibrate_pact(model, batches)
    levels = [float(m.alpha) for m in pact_modules(model)]
    if rank_zero_only.rank == 0:
        print(f"PACT ({cfg.quant.bits} bits, {cfg.quant.weight} weights): {len(levels)} clip "
              f"levels from {seen} batches, α in [{min(levels):.3g}, {max(levels):.3g}]")


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_intermixed_args(argv)  # flags after KEY VALUE pairs too
    extra = (["train.devices", args.devices] if args.devices else []) + \
        (["distill.config", args.distill_config] if args.distill_config else [])
    cfg = load_config(args.cfg, args.overrides + extra)
    out = output_dir(args.out or Path(cfg.output_dir) / cfg.name, "--out" if args.out else "output_dir")
    pl.seed_everything(cfg.seed, verbose=False)  # before building: the initial weights too
    # an APRCP pruned file as model.pretrained trains (and records) its own widths
    spec, weights = resolve_weights(network_spec(cfg, args.model, args.arch, source=args.cfg),
                                    cfg.model.pretrained or None, "model.pretrained",
                                    cfg.model.pretrained_scope)
    model = build_network(spec, weights, scope=cfg.model.pretrained_scope, quant=cfg.quant)
    if cfg.quant.enabled and not args.resume:
        _calibrate(model, cfg)
    info = spec.record()
    teacher = build_teacher(cfg) if cfg.distill.enabled else None
    if args.param_flop and rank_zero_only.rank == 0:
        print(format_report(param_flop_report(model, cfg.model.input_size), info["name"]))
    try:
        callbacks = ([VisualizeCallback(out)] if args.visualize else []) + \
            ([DebugCallback(out)] if args.debug else [])
        summary = fit(cfg, model, info, out, resume=args.resume, progress=not args.no_progress,
                      callbacks=callbacks, teacher=teacher)
    except (NonFiniteLossError, BrokenEvaluationError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    if not summary["global_zero"]:
        return 0  # DDP: rank 0 reports
    metric = summary["metric"]
    rows = [[r["epoch"], r["train_loss"], r["lr"], r.get(metric, float("nan"))]
            for r in summary["history"]]
    print(format_table(["epoch", "train loss", "lr", metric], rows))
    best = summary["best"]
    print(f"best {metric}={best:.4f}" if best is not None else f"no {metric} measured")
    written = [f"{path} ({what})" for path, what in ((summary["last"], "last"),
                                                       (summary["best_ckpt"], "best"))
               if path and Path(path).is_file()]
    if not written:
        print(f"error: {out}: no checkpoint was written", file=sys.stderr)
        return 3
    print(f"checkpoints: {', '.join(written)}; metrics: {out / 'metrics.json'}")
    if best is not None:
        print(f"{metric}={best:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
