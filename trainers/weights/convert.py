"""Convert a checkpoint released by another code into a posenas checkpoint.

    python -m trainers.convert [--from auto|hrnet|hrnet_imagenet|timm|litehrnet|mmpose|pnfs]
                               --model NAME IN OUT [--cfg CFG] [--dataset coco|mpii]
                               [--arch-out ARCH.json]

``IN``: official pose HRNet (``pose_hrnet_w32_256x192.pth``), ImageNet HRNet
(``hrnet_w32-36af842e.pth``, timm ``hrnet_w32``), Lite-HRNet as HRNet/Lite-HRNet and mmpose 0.x /
1.x release it (``litehrnet_18_coco_256x192.pth``), mmpose's HRNet; with or without ``module.``
prefixes or a ``state_dict`` wrapper; PoseNFS's ``*_ckpt.tar`` (weights under ``model``).
``--model``: the registered posenas model the weights are for (``hrnet_w32``, ``litehrnet_30``,
``pnfs_hrnet_w32_cnf5``, ...).

A PoseNFS checkpoint becomes the fixed-mixture PNFS network (every operation and input kept,
weighted by its learned α/β, computing what PoseNFS computes); its α/β also give an
architecture file (``--arch-out``, default ``OUT`` with ``.arch.json``) whose choices are their
argmax, for ``python -m strategies.prune --arch`` and ``train_derived.py --arch``.

A pose checkpoint becomes a posenas checkpoint (``OUT``, e.g. ``.ckpt``) that ``test.py
--weights``, ``trainers.deploy.export --weights``, ``visualize.demo --weights`` and ``model.pretrained``
accept; it carries the config (``--cfg``, or the defaults with ``model.name NAME``) and the model
record. An ImageNet checkpoint has no pose head: ``OUT`` is then the backbone's state dict under
posenas names, for ``model.pretrained`` (loaded as the backbone). Prints tensors mapped, skipped
and missing.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

from trainers.network.arch_file import ArchFile, check_choices, save_arch
from trainers.atomic import atomic_path
from trainers.network.build import load_backbone, load_exact, network_spec, spec_with_structure
from trainers.weights.checkpoint import checkpoint_record, read_weights, seal
from trainers.config.experiment import config_from_dict, config_to_dict, load_config
from search_space.errors import UserInputError
from trainers.cli import ArgumentParser, cli_errors, existing_file, input_size, output_file
from trainers.weights.aprcp import read_prune_txt
from search_space.counting import param_flop_report
from trainers.weights.formats import EXTERNAL_FORMATS, format_names
from search_space.pose_space import freeze


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m trainers.convert", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--from", dest="fmt", default="auto", choices=["auto", *format_names()],
                   help="the checkpoint's layout (default: detected from its keys)")
    p.add_argument("--model", help="the registered posenas model (default: the config's)")
    p.add_argument("--cfg", help="a config to store in the checkpoint (default: the defaults)")
    p.add_argument("--dataset", default="coco", help="without --cfg: the dataset (default coco)")
    p.add_argument("input", help="the released checkpoint")
    p.add_argument("output", help="the posenas checkpoint to write")
    p.add_argument("--arch-out", help="PoseNFS: where the architecture of its α/β goes "
                   "(default: OUTPUT with the suffix .arch.json); APRCP: where the pruned "
                   "architecture goes (for train_derived.py --arch)")
    p.add_argument("--structure",
                   help="APRCP: its pruneXXX.txt, checked against the widths of the weights")
    p.add_argument("--input-size", type=input_size, default=None,
                   help="HxW for the parameter / GFLOPs lines (default: the config's)")
    return p


@cli_errors
def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    output_file(args.output, "output")
    if args.arch_out:
        output_file(args.arch_out, "--arch-out")
    if args.cfg:
        cfg = load_config(args.cfg, ["model.name", args.model] if args.model else [])
    else:
        if not args.model:
            raise UserInputError("argument", "give --model (or --cfg)", field="--model")
        cfg = config_from_dict({"dataset": {"name": args.dataset, "root": ""},
                                "model": {"name": args.model}}, source="arguments")
    spec = network_spec(cfg)
    conversion = read_weights(args.input, field="input", fmt=args.fmt,
                              target=(spec.space, spec.dataset))
    full_spec = spec
    if conversion.structure is not None:
        if args.structure:
            _check_structure(str(existing_file(args.structure, "--structure")),
                             list(conversion.structure[1].values()))
        spec = spec_with_structure(spec, conversion, "input")
    elif args.structure:
        raise UserInputError(str(args.input), "--structure given, but the weights have the "
                             f"full widths of {spec.name} (not a pruned HRNet)", field="--structure")
    network = freeze(spec.space, spec.dataset, spec.choices)
    out = Path(args.output)
    fmt = EXTERNAL_FORMATS[conversion.format].description
    if conversion.backbone_only:
        report = load_backbone(network, conversion.state, args.input, field="input")
        state = {k: v for k, v in network.state_dict().items() if k.startswith("backbone.")}
        with atomic_path(out) as tmp:
            torch.save(state, tmp)
        mapped, missing = report.total(0), report.total(2)
        what = "backbone state dict (use as model.pretrained)"
    else:
        load_exact(network, conversion.state, args.input, "input")
        state = network.state_dict()
        meta = checkpoint_record(config_to_dict(cfg), spec.record(), converted_from={
            "path": str(args.input), "format": conversion.format})
        with atomic_path(out) as tmp:
            torch.save(seal({"state_dict": {f"model.{k}": v for k, v in state.items()},
                             "posenas": meta, "epoch": -1}), tmp)
        mapped, missing = len(state), 0
        what = "posenas checkpoint"
    summary = {"format": conversion.format, "mapped": mapped, "skipped": len(conversion.skipped),
               "missing": missing, "output": str(out)}
    print(f"{args.input}: {fmt}")
    print(f"tensors mapped {mapped}, skipped {len(conversion.skipped)}"
          + (f" (e.g. {conversion.skipped[0]})" if conversion.skipped else "")
          + f", missing {missing}")
    print(f"wrote {what} for {spec.name}: {out}")
    if conversion.structure is not None:
        size = tuple(args.input_size or cfg.model.input_size)
        with torch.device("meta"):
            full = freeze(full_spec.space, full_spec.dataset, {})
        ours, theirs = param_flop_report(network, size), param_flop_report(full, size)
        summary.update(params=ours["params"], gflops=ours["gflops"])
        print(f"APRCP pruned {full_spec.name} at {size[0]}x{size[1]}: params {ours['params']:,} "
              f"({ours['params'] / 1e6:.1f}M, {1 - ours['params'] / theirs['params']:.1%} pruned), "
              f"GFLOPs {ours['gflops']:.2f} (full: {theirs['params'] / 1e6:.1f}M, "
              f"{theirs['gflops']:.2f})")
        arch_path = Path(args.arch_out) if args.arch_out else out.with_suffix(".arch.json")
        arch_cfg = replace(cfg, space=spec.space)
        save_arch(arch_path, ArchFile(arch_cfg, dict(spec.choices), "derived", {}, {},
                                      str(arch_path)))
        summary["arch"] = str(arch_path)
        print(f"its architecture: {arch_path} (fine-tune with train_derived.py --arch "
              f"{arch_path} model.pretrained {out})")
    if conversion.arch is not None:
        arch_path = Path(args.arch_out) if args.arch_out else out.with_suffix(".arch.json")
        arch_cfg = replace(cfg, space=conversion.arch["space"])
        check_choices(arch_cfg, conversion.arch["choices"], str(args.input))
        save_arch(arch_path, ArchFile(arch_cfg, conversion.arch["choices"], "search",
                                      conversion.arch["weights"], {}, str(arch_path)))
        summary["arch"] = str(arch_path)
        print(f"architecture of its α/β (argmax): {arch_path}; derive a network with "
              f"python -m strategies.prune --arch {arch_path} --out DERIVED.json")
    return summary


def _check_structure(path: str, widths: list[int]) -> None:
    """APRCP's ``pruneXXX.txt`` must list the widths the weights have, in its order."""
    listed, _ = read_prune_txt(path)
    if len(listed) != len(widths):
        raise UserInputError(path, f"line 2 lists {len(listed)} inner widths, the weights have "
                             f"{len(widths)}", field="--structure")
    for i, (a, b) in enumerate(zip(listed, widths)):
        if a != b:
            raise UserInputError(path, f"line 2, width {i + 1}: {a}, but the weights have {b}",
                                 field="--structure")


def command() -> int:
    """The console entry point (``posenas-convert``): exit code 0 when a file was written."""
    return 0 if main() is not None else 1


if __name__ == "__main__":
    sys.exit(command())
