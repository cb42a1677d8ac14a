"""Search the pose architecture space with a named strategy.

    python -m strategies.search --cfg CFG --strategy NAME [--out DIR] [--resume]
                                [--param_flop] [--show_arch_value] [KEY VALUE ...]

Writes ``DIR/arch.json`` (the best architecture so far, rewritten atomically),
``DIR/history.jsonl`` (one line per epoch or trial), checkpoints (``last.ckpt`` each epoch for
one-shot strategies) and logs; ``--resume`` continues from them. Then
``python -m strategies.prune --arch DIR/arch.json --out DIR/derived.json``.
"""
from __future__ import annotations

import argparse
import logging
import sys
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pytorch_lightning as pl  # noqa: E402

from strategies.registry import STRATEGIES, describe  # noqa: E402
from trainers.config import Config, load_config  # noqa: E402
from trainers.errors import UserInputError, cli_errors  # noqa: E402
from trainers.report import format_table  # noqa: E402

__all__ = ["run_search", "run_oneshot"]

logger = logging.getLogger(__name__)


def _space_for(cfg: Config, strategy: str) -> Config:
    if strategy == "proxyless" and cfg.space.backbone.width_multipliers:
        print("proxyless: NNI 3.0's Proxyless has no one-shot width choices; searching operations "
              "and inputs with the base widths (space.backbone.width_multipliers ignored)")
        backbone = replace(cfg.space.backbone, width_multipliers=())
        return replace(cfg, space=replace(cfg.space, backbone=backbone))
    return cfg


def run_oneshot(cfg: Config, strategy_name: str, out: Path, resume: bool = False,
                progress: bool = True, show_arch_value: bool = False) -> dict[str, Any]:
    """Train a supernet with a one-shot strategy; return the summary."""
    from nni.nas.evaluator.pytorch import Lightning, Trainer

    from search_space.pose_space import build
    from strategies.data import build_search_data
    from strategies.oneshot import ONESHOT_STRATEGIES, make_oneshot_strategy
    from strategies.records import ArchRecorder
    from trainers.checkpoint import AtomicCheckpoint, load_checkpoint
    from trainers.engine import trainer_kwargs
    from trainers.module import PoseModule, primary_metric

    cfg = _space_for(cfg, strategy_name)
    out.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    space = build(cfg.space, cfg.dataset.name)
    if not space.simplify():
        raise UserInputError("config", "the space has no decisions to search (search_alpha, "
                             "search_beta and width_multipliers are all off)", field="space")
    strategy = make_oneshot_strategy(strategy_name, cfg)
    supernet = strategy.mutate_model(space)
    data = build_search_data(cfg)
    strategy.val_loader = data.val
    metric = primary_metric(cfg.dataset.name)
    module = PoseModule(supernet, cfg, data.val_set, out,
                        {"name": f"supernet:{strategy_name}"})
    recorder = ArchRecorder(cfg, strategy_name, out, show_arch_value)
    ckpt_cb = AtomicCheckpoint(out, metric, verbose=False)  # the recorder prints the epochs
    trainer = Trainer(max_epochs=cfg.search.epochs, callbacks=[recorder, ckpt_cb],
                      logger=[pl.loggers.CSVLogger(str(out), name="logs")],
                      enable_checkpointing=False, num_sanity_val_steps=0,
                      enable_progress_bar=progress, log_every_n_steps=10,
                      enable_model_summary=False, **trainer_kwargs(cfg))
    fit_kwargs: dict[str, Any] = {}
    if resume:
        last = out / "last.ckpt"
        if not last.is_file():
            raise UserInputError(str(last), "no checkpoint to resume from (--resume)")
        ckpt = load_checkpoint(last)
        print(f"resuming from {last} (finished epoch {ckpt['epoch']})")
        fit_kwargs = {"ckpt_path": str(last), "weights_only": True}
    _, loaders, _ = ONESHOT_STRATEGIES[strategy_name]
    train_loader = data.weights if loaders == "bilevel" else data.full
    # in process: NNI's advice to trace loaders for remote trials does not apply
    warnings.filterwarnings("ignore", ".*When using training service to spawn trials.*")
    evaluator = Lightning(module, trainer, train_dataloaders=train_loader,
                          val_dataloaders=data.arch if loaders == "bilevel" else data.val,
                          fit_kwargs=fit_kwargs)
    evaluator = strategy.mutate_evaluator(evaluator)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*Checkpoint directory.*exists and is not empty.*")
        evaluator.evaluate(supernet)
    oneshot_module = evaluator.module
    if strategy_name == "spos":
        from strategies.spos import pick_best_path

        pick_best_path(cfg, oneshot_module, trainer, data, out)
    return {"metric": metric, "history": recorder.records, "arch": str(out / "arch.json")}


def run_search(cfg: Config, strategy_name: str, out: Path, resume: bool = False,
               progress: bool = True, show_arch_value: bool = False) -> dict[str, Any]:
    """Run ``strategy_name`` (see :data:`~strategies.registry.STRATEGIES`)."""
    kind = STRATEGIES[strategy_name][0]
    if kind == "oneshot":
        return run_oneshot(cfg, strategy_name, out, resume, progress, show_arch_value)
    if kind == "multitrial":
        from strategies.multitrial import run_multitrial

        return run_multitrial(cfg, strategy_name, out, resume)
    from strategies.prune_rate import run_prune_rate

    return run_prune_rate(cfg, out, resume)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m strategies.search",
                                description=__doc__ + "\nstrategies:\n" + describe(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", required=True, help="experiment config with a space section (YAML)")
    p.add_argument("--strategy", required=True, choices=sorted(STRATEGIES), metavar="NAME",
                   help="one of: " + ", ".join(sorted(STRATEGIES)))
    p.add_argument("--out", help="output folder (default: output_dir/name/search_STRATEGY)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--param_flop", action="store_true",
                   help="print params/GFLOPs of the supernet and of the result")
    p.add_argument("--show_arch_value", action="store_true",
                   help="print the softmax of alpha/beta per label after each epoch")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", help="config overrides: KEY VALUE or KEY=VALUE")
    return p


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="nni")
    cfg = load_config(args.cfg, args.overrides)
    out = Path(args.out) if args.out else Path(cfg.output_dir) / cfg.name / f"search_{args.strategy}"
    if args.param_flop:
        from search_space.pose_space import build
        from visualize.param_flop import format_report, param_flop_report

        space = build(cfg.space, cfg.dataset.name)
        print(format_report(param_flop_report(space, cfg.model.input_size),
                            "supernet (default choices: largest widths, first candidates)"))
    summary = run_search(cfg, args.strategy, out, args.resume, not args.no_progress,
                         args.show_arch_value)
    metric = summary["metric"]
    rows = [[r.get("epoch", r.get("trial")), r.get("train_loss"), r.get(metric)]
            for r in summary["history"]]
    if rows:
        print(format_table(["epoch/trial", "train loss", metric], rows))
    print(f"architecture: {summary['arch']}; history: {out / 'history.jsonl'}")
    if args.param_flop:
        from search_space.arch import load_arch
        from visualize.param_flop import format_report, param_flop_report

        arch = load_arch(summary["arch"])
        print(format_report(param_flop_report(arch.build(), cfg.model.input_size),
                            "exported architecture"))
    print(f"next: python -m strategies.prune --arch {summary['arch']} --out {out / 'derived.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
