"""Parameters and GFLOPs of a model, per component and in total.

    python -m visualize.param_flop --model NAME [--input-size 256x192] [--dataset coco] [--json]
    python -m visualize.param_flop --cfg CFG [KEY VALUE ...] [--json]

Counted by :func:`search_space.counting.param_flop_report`: multiply-adds of convolutions and
linear layers for one image, ``gflops`` = MACs / 2^30 (the HRNet convention).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from search_space.counting import param_flop_report
from search_space.models import model_names
from trainers.network.arch_file import load_arch
from trainers.network.build import build_network, spec_from_arch, spec_from_model
from trainers.config.experiment import load_config
from trainers.data.registry import dataset_names
from trainers.cli import ArgumentParser, cli_errors, input_size
from trainers.report import format_report

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m visualize.param_flop", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", help="an experiment config (its model.name and model.input_size)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", help=f"a registered model: {', '.join(model_names())}")
    src.add_argument("--arch", help="an architecture file (arch.json / derived.json): its frozen "
                     "network, at its config's input size unless --cfg or --input-size say")
    p.add_argument("--input-size", type=input_size, default=None, help="HxW, e.g. 256x192 (default: config or 256x192)")
    p.add_argument("--dataset", choices=dataset_names(), default=None,
                   help="joint count of the head (default: config or coco)")
    p.add_argument("--json", action="store_true", help="end with one JSON line")
    p.add_argument("overrides", nargs="*", help="config overrides KEY VALUE ...")
    return p


@cli_errors
def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not (args.cfg or args.model or args.arch):
        parser.error("give --cfg, --model or --arch")
    arch = None
    if args.arch:
        arch = load_arch(args.arch)
        name, size, dataset = Path(args.arch).name, arch.config.model.input_size, arch.config.dataset.name
    if args.cfg:
        cfg = load_config(args.cfg, args.overrides)
        size = cfg.model.input_size
        if arch is None:
            name, dataset = args.model or cfg.model.name, cfg.dataset.name
    elif arch is None:
        name, size, dataset = args.model, (256, 192), "coco"
    if args.input_size:
        size = args.input_size
    if args.dataset and arch is None:
        dataset = args.dataset
    if arch is not None:
        spec = spec_from_arch(arch)
    else:
        spec = spec_from_model(name, dataset, "argument" if args.model or not args.cfg
                               else args.cfg, "--model" if args.model else "model.name")
    model = build_network(spec)
    report = param_flop_report(model, tuple(size))
    print(format_report(report, name))
    if args.json:
        print(json.dumps({"model": name, **report}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
