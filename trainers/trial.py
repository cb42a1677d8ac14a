"""One trial of an ``nnictl`` experiment: train and evaluate the architecture NNI sampled.

    python trainers/trial.py --cfg CFG [--params P.json] [KEY VALUE ...]

1. reads the sampled choices (``nni.get_next_parameter()``; ``--params`` outside NNI);
2. checks them against the config's space — a stale experiment search space (one label missing,
   unknown or out of range) stops with the command that regenerates it;
3. freezes the network (optionally starting from a one-shot supernet's weights,
   ``search.inherit_from``, to rank candidates cheaply);
4. trains ``search.trial_epochs`` epochs with the config's recipe, reporting the metric (AP or
   PCKh) each epoch (``nni.report_intermediate_result``, for the assessor);
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
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import search_space  # noqa: E402,F401  (first: it silences NNI's import-time warnings)
import nni  # noqa: E402
import pytorch_lightning as pl  # noqa: E402

from trainers.config import Config, load_config  # noqa: E402
from trainers.errors import UserInputError, cli_errors  # noqa: E402

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
            raise UserInputError(args.params, f"cannot read parameters ({err})") from None
    else:
        params = nni.get_next_parameter()
    if not isinstance(params, dict) or not params:
        raise UserInputError("NNI", "no parameters: run this under nnictl, or give --params FILE")
    return params


def _check(cfg: Config, choices: dict[str, Any], cfg_path: str) -> None:
    from search_space.arch import check_choices

    try:
        check_choices(cfg, choices, "NNI parameters")
    except UserInputError as err:
        raise UserInputError("NNI parameters", f"{err.message} ({err.field}): the experiment's "
                             "search space does not match the config's space; regenerate it with "
                             f"python -m search_space.export --cfg {cfg_path} --out SPACE.json",
                             field=err.field) from None


def run_trial(cfg: Config, choices: dict[str, Any], out: Path,
              cfg_path: str = "CFG") -> dict[str, Any]:
    """Freeze, train and evaluate ``choices``; report to NNI; return the final result.

    Parameters named ``stage{s}/rate`` (``experiments/prune_rate.yml``) instead prune the
    trained network of ``search.prune_weights`` at those per-stage rates and fine-tune it.
    """
    from search_space.arch import ArchFile, save_arch
    from search_space.pose_space import freeze, inherit_weights
    from strategies.objective import train_and_score
    from trainers.module import primary_metric

    metric = primary_metric(cfg.dataset.name)
    pl.seed_everything(cfg.seed, verbose=False)
    channels: dict[str, list[int]] = {}
    if choices and all(k.endswith("/rate") for k in choices):
        from strategies.prune_rate import pruned_network

        try:
            rates = {int(k.split("/")[0][len("stage"):]): float(v) for k, v in choices.items()}
        except ValueError:
            raise UserInputError("NNI parameters", "expected stage{s}/rate labels") from None
        model, choices, channels = pruned_network(cfg, rates)
    else:
        _check(cfg, choices, cfg_path)
        model = freeze(cfg.space, cfg.dataset.name, choices)
    if cfg.search.inherit_from and not channels:
        from trainers.checkpoint import read_state_dict

        try:
            inherit_weights(model, read_state_dict(cfg.search.inherit_from,
                                                   field="search.inherit_from"))
        except KeyError as err:
            raise UserInputError(cfg.search.inherit_from, f"not a supernet of this space "
                                 f"({err.args[0]})", field="search.inherit_from") from None
    trial_cfg = replace(cfg, train=replace(cfg.train, epochs=cfg.search.trial_epochs))
    scored = train_and_score(trial_cfg, model, out, "trial", [ReportIntermediate(metric)])
    result = {"default": scored["objective"], metric: scored[metric],
              "params": scored["params"], "gflops": scored["gflops"]}
    save_arch(out / "arch.json", ArchFile(cfg, choices, "search", {},
                                          {"strategy": "nnictl", **result,
                                           "trial": os.environ.get("NNI_TRIAL_JOB_ID", "")},
                                          channels=channels))
    nni.report_final_result(result)
    return result


@cli_errors
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python trainers/trial.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", required=True, help="experiment config with a space section")
    p.add_argument("--params", help="choices JSON (outside NNI; under nnictl the tuner's)")
    p.add_argument("--out", help="output folder (default: NNI_OUTPUT_DIR, else runs/trial)")
    p.add_argument("overrides", nargs="*", help="config overrides: KEY VALUE or KEY=VALUE")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    overrides = list(args.overrides) + shlex.split(os.environ.get("POSENAS_TRIAL_OVERRIDES", ""))
    cfg = load_config(args.cfg, overrides)
    from search_space.export import choices_from_parameters

    choices = choices_from_parameters(_parameters(args))
    out = Path(args.out or os.environ.get("NNI_OUTPUT_DIR") or "runs/trial")
    result = run_trial(cfg, choices, out, args.cfg)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
