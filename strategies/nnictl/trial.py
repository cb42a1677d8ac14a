"""One trial of an ``nnictl`` experiment: train and evaluate the architecture NNI sampled.

    python trainers/trial.py --cfg CFG [--params P.json] [KEY VALUE ...]

1. reads the sampled choices (``nni.get_next_parameter()``; ``--params`` outside NNI);
2. checks them against the config's space — a stale experiment search space (one label missing,
   unknown or out of range) stops with the command that regenerates it;
3. runs the one trial path (``strategies.trials.run_trial``, the same function the in-process
   ``random``/``evolution`` strategies call): freezes the network (optionally from a one-shot
   supernet's weights, ``search.inherit_from``, to rank candidates cheaply), trains
   ``search.trial_epochs`` epochs at ``search.batch_size`` with the config's recipe, reporting
   the metric (AP or PCKh) each epoch (``nni.report_intermediate_result``, for the assessor);
5. reports ``{"default": objective, "AP"/"Mean", "params", "gflops"}`` as the final result and
   writes ``arch.json`` into the trial's output directory (``NNI_OUTPUT_DIR``).

Extra overrides can also come from the environment, ``POSENAS_TRIAL_OVERRIDES="KEY VALUE ..."``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any


import search_space  # noqa: F401  (first: it silences NNI's import-time warnings)
import nni
import pytorch_lightning as pl

from strategies.goal_target import resolve_goal_target
from strategies.nnictl.space_json import choices_from_parameters
from strategies.prune_rate import pruned_choices
from strategies.trials import run_trial
from trainers.network.arch_file import ArchFile, check_choices, save_arch
from trainers.config.schema import Config
from trainers.config.experiment import load_config
from trainers.data.registry import primary_metric
from search_space.errors import UserInputError
from trainers.cli import ArgumentParser, cli_errors

logger = logging.getLogger("posenas.trial")


class ReportIntermediate(pl.Callback):
    """``nni.report_intermediate_result`` of the metric after each validation."""

    def __init__(self, metric: str) -> None:
        self.metric = metric

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        value = pl_module.last_metrics.get(self.metric)
        if trainer.is_global_zero and value is not None:
            nni.report_intermediate_result(float(value))


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    if args.params:
        try:
            params = json.loads(Path(args.params).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise UserInputError(args.params, f"cannot read the choices JSON ({err})",
                                 field="--params") from None
    else:
        params = nni.get_next_parameter()
    if not isinstance(params, dict) or not params:
        raise UserInputError("NNI", "no parameters: run this under nnictl, or give --params FILE")
    return params


def _check(cfg: Config, choices: dict[str, Any], cfg_path: str) -> None:
    try:
        check_choices(cfg, choices, "NNI parameters")
    except UserInputError as err:
        raise UserInputError("NNI parameters", f"{err.message} ({err.field}): the experiment's "
                             "search space does not match the config's space; regenerate it with "
                             f"python -m search_space.export --cfg {cfg_path} --out SPACE.json",
                             field=err.field) from None


def _stage_rates(choices: dict[str, Any]) -> dict[int, float] | None:
    """``{stage: rate}`` for a per-stage pruning-rate trial (``stage{s}/rate`` parameters)."""
    if not choices or not all(k.endswith("/rate") for k in choices):
        return None
    try:
        return {int(k.split("/")[0][len("stage"):]): float(v) for k, v in choices.items()}
    except ValueError:
        raise UserInputError("NNI parameters", "expected stage{s}/rate labels") from None


def run_nni_trial(cfg: Config, choices: dict[str, Any], out: Path,
                  cfg_path: str = "CFG") -> dict[str, Any]:
    """Check, train and score ``choices`` through the one trial path
    (:func:`strategies.trials.run_trial`); report to NNI; write ``out/arch.json``.

    Parameters named ``stage{s}/rate`` (``experiments/prune_rate.yml``) instead prune the
    trained network of ``search.prune_rate.weights`` at those per-stage rates and fine-tune it.
    """
    metric = primary_metric(cfg)
    channels: dict[str, list[int]] = {}
    rates = _stage_rates(choices)
    if rates is not None:
        choices, channels = pruned_choices(cfg, rates)
    else:
        _check(cfg, choices, cfg_path)
    scored = run_trial(cfg, choices, out, channels=channels,
                       callbacks=[ReportIntermediate(metric)])
    result = {"default": scored["objective"],  # over a hard budget: 0, untrained
              **{k: scored[k] for k in (metric, "params", "gflops", "over_budget") if k in scored}}
    save_arch(out / "arch.json", ArchFile(cfg, choices, "search", {},
                                          {"strategy": "nnictl", **result,
                                           "trial": os.environ.get("NNI_TRIAL_JOB_ID", "")},
                                          channels=channels))
    nni.report_final_result(result)
    return result


@cli_errors
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python trainers/trial.py", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", required=True, help="experiment config with a space section")
    p.add_argument("--params", help="choices JSON (outside NNI; under nnictl the tuner's)")
    p.add_argument("--out", help="output folder (default: NNI_OUTPUT_DIR, else runs/trial)")
    p.add_argument("overrides", nargs="*", help="config overrides: KEY VALUE or KEY=VALUE")
    args = p.parse_args(argv)
    overrides = list(args.overrides) + shlex.split(os.environ.get("POSENAS_TRIAL_OVERRIDES", ""))
    cfg = resolve_goal_target(load_config(args.cfg, overrides, require=("space",)), args.cfg)
    choices = choices_from_parameters(_parameters(args))
    out = Path(args.out or os.environ.get("NNI_OUTPUT_DIR") or "runs/trial")
    result = run_nni_trial(cfg, choices, out, args.cfg)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
