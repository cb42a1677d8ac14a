"""Search the pose architecture space with a named strategy.

    python -m strategies.search --cfg CFG --strategy NAME [--out DIR] [--resume] [--devices N]
                                [--param_flop] [--show_arch_value]
                                [--distill_config TEACHER_CFG] [KEY VALUE ...]

Writes ``DIR/arch.json`` (the best architecture so far, rewritten atomically),
``DIR/history.jsonl`` (one line per epoch or trial), checkpoints (``last.ckpt`` each epoch for
one-shot strategies) and logs; ``--resume`` continues from them. ``--distill_config`` makes
the search teacher-guided (``search.distill``: the supernet and the trials' candidates train
against the teacher's heatmaps too; see :mod:`trainers.engine.distill`). Then
``python -m strategies.prune --arch DIR/arch.json --out DIR/derived.json``.
"""
from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path
from typing import Any


from pytorch_lightning.utilities.rank_zero import rank_zero_only

from search_space.counting import param_flop_report
from search_space.supernet import build
from strategies.goal_target import resolve_goal_target
from strategies.multitrial import run_multitrial
from strategies.oneshot import run_oneshot
from strategies.prune_rate import run_prune_rate
from strategies.registry import STRATEGIES, describe, strategy_names
from trainers.network.arch_file import load_arch
from trainers.network.build import build_network, spec_from_arch
from trainers.config.schema import Config
from trainers.config.experiment import load_config
from trainers.cli import ArgumentParser, cli_errors, devices
from trainers.engine.module import BrokenEvaluationError, NonFiniteLossError
from trainers.report import format_table
from trainers.report import format_report

__all__ = ["run_search"]

logger = logging.getLogger(__name__)


def run_search(cfg: Config, strategy_name: str, out: Path, resume: bool = False,
               progress: bool = True, show_arch_value: bool = False) -> dict[str, Any]:
    """Run ``strategy_name`` (see :data:`~strategies.registry.STRATEGIES`)."""
    kind = STRATEGIES[strategy_name].kind
    if cfg.search.inheritance.enabled and kind != "multitrial":
        logger.warning(f"search.inheritance: weight inheritance applies to the multi-trial "
                       f"strategies; {strategy_name} ignores it")
    if kind == "oneshot":
        return run_oneshot(cfg, strategy_name, out, resume, progress, show_arch_value)
    if kind == "multitrial":
        return run_multitrial(cfg, strategy_name, out, resume)
    return run_prune_rate(cfg, out, resume)


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m strategies.search",
                       description=__doc__ + "\nstrategies:\n" + describe(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", required=True, help="experiment config with a space section (YAML)")
    p.add_argument("--strategy", required=True, choices=strategy_names(), metavar="NAME",
                   help="one of: " + ", ".join(strategy_names()))
    p.add_argument("--out", help="output folder (default: output_dir/name/search_STRATEGY)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--param_flop", action="store_true",
                   help="print params/GFLOPs of the supernet and of the result")
    p.add_argument("--show_arch_value", action="store_true",
                   help="print the softmax of alpha/beta per label after each epoch")
    p.add_argument("--devices", type=devices, help="one-shot strategies: a device count or 'auto' (sets "
                   "train.devices); N > 1 searches with DDP (gloo over N CPU processes without CUDA)")
    p.add_argument("--distill_config", metavar="TEACHER_CFG", help="a teacher-guided search "
                   "(sets distill.config and search.distill true; weights: distill.weights W)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", help="config overrides: KEY VALUE or KEY=VALUE")
    return p


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_intermixed_args(argv)  # flags after KEY VALUE pairs too
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="nni")
    extra = (["train.devices", args.devices] if args.devices else []) + \
        (["distill.config", args.distill_config, "search.distill", "true"]
         if args.distill_config else [])
    cfg = resolve_goal_target(load_config(args.cfg, args.overrides + extra, require=("space",)),
                              args.cfg)
    out = Path(args.out) if args.out else Path(cfg.output_dir) / cfg.name / f"search_{args.strategy}"
    if args.param_flop and rank_zero_only.rank == 0:
        space = build(cfg.space, cfg.dataset.name)
        print(format_report(param_flop_report(space, cfg.model.input_size),
                            "supernet (default choices: largest widths, first candidates)"))
    try:
        summary = run_search(cfg, args.strategy, out, args.resume, not args.no_progress,
                             args.show_arch_value)
    except (NonFiniteLossError, BrokenEvaluationError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    if rank_zero_only.rank != 0:
        return 0  # DDP (train.devices N): rank 0 reports
    metric = summary["metric"]
    rows = [[r.get("epoch", r.get("trial")), r.get("train_loss"), r.get(metric)]
            for r in summary["history"]]
    if rows:
        print(format_table(["epoch/trial", "train loss", metric], rows))
    if not summary.get("arch") or not Path(summary["arch"]).is_file():
        print(f"error: {out}: the search wrote no architecture", file=sys.stderr)
        return 3
    history = out / "history.jsonl"
    print(f"architecture: {summary['arch']}" + (f"; history: {history}" if history.is_file() else ""))
    if args.param_flop:
        network = build_network(spec_from_arch(load_arch(summary["arch"])))
        print(format_report(param_flop_report(network, cfg.model.input_size),
                            "exported architecture"))
    print(f"next: python -m strategies.prune --arch {summary['arch']} --out {out / 'derived.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
