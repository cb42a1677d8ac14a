"""The space of a config as an NNI search-space JSON, for ``nnictl`` experiments.

    python -m search_space.export --cfg CFG --out FILE [--check] [KEY VALUE ...]

NNI 3.0's ``nnictl`` runs HPO-style experiments only, so a multi-trial NAS experiment gives its
tuner this file — one ``{"_type": "choice", "_value": [...]}`` per label of ``PoseSpace`` — and
each trial (``trainers/trial.py``) freezes what the tuner sampled. Input choices are the slot
indices 0, 1, 2. ``--check`` compares with an existing FILE instead of writing it (exit 1 when
it is out of date).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


from search_space.config import SpaceConfig
from search_space.supernet import space_labels
from strategies.prune_rate import prune_rate_search_space
from trainers.atomic import atomic_path
from trainers.config.experiment import load_config
from search_space.errors import UserInputError
from trainers.cli import ArgumentParser, cli_errors

__all__ = ["nni_search_space", "choices_from_parameters"]


def nni_search_space(space: SpaceConfig, dataset: str) -> dict[str, Any]:
    """``{label: {"_type": "choice", "_value": candidates}}`` for every label of the space."""
    return {label: {"_type": "choice", "_value": list(values)}
            for label, values in space_labels(space, dataset).items()}


def choices_from_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """A tuner's parameters as architecture choices (input slots become NNI's ``[index]``)."""
    return {label: ([value] if label.endswith("/input") and not isinstance(value, list) else value)
            for label, value in parameters.items()}


@cli_errors
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m search_space.export", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", required=True, help="experiment config with a space section")
    p.add_argument("--out", required=True, help="the search-space JSON to write")
    p.add_argument("--check", action="store_true", help="only check that --out is up to date")
    p.add_argument("--prune-rates", action="store_true",
                   help="the per-stage pruning-rate space (experiments/prune_rate.yml) instead: "
                   "rates 0 to search.prune_rate.max_rate in steps of search.prune_rate.step")
    p.add_argument("overrides", nargs="*", help="config overrides: KEY VALUE or KEY=VALUE")
    args = p.parse_args(argv)
    cfg = load_config(args.cfg, args.overrides, require=("space",))
    if args.prune_rates:
        space = prune_rate_search_space(cfg)
    else:
        space = nni_search_space(cfg.space, cfg.dataset.name)
    text = json.dumps(space, indent=1) + "\n"
    out = Path(args.out)
    if args.check:
        if not out.is_file():
            raise UserInputError(str(out), "missing: generate it with python -m search_space.export")
        if out.read_text() != text:
            print(f"{out} is out of date for {args.cfg}: regenerate it with "
                  f"python -m search_space.export --cfg {args.cfg} --out {out}"
                  + (" --prune-rates" if args.prune_rates else ""), file=sys.stderr)
            return 1
        print(f"{out} is up to date ({len(space)} labels)")
        return 0
    with atomic_path(out) as tmp:
        tmp.write_text(text)
    print(f"wrote {out}: {len(space)} labels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
