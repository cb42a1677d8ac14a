"""Export a trained checkpoint to ONNX and check it against PyTorch with onnxruntime.

    python -m trainers.export --weights W [--model NAME | --cfg CFG] --onnx OUT.onnx
                              [--input-size 256x192] [--opset 17] [--target NAME]
                              [--int8 | --no-int8] [--calib-root DIR] [--calib-batches 8]

``W``: a posenas checkpoint, or a released one (official HRNet, Lite-HRNet, mmpose), read as
``--model`` (or the ``--cfg``'s model.name) and converted on the fly.

The exported graph takes a normalised float image batch (N, 3, H, W) — N is dynamic — and returns
heatmaps (N, K, H/4, W/4). The same random batch is run through PyTorch and onnxruntime; the
maximum absolute difference is printed, and the export fails if it exceeds ``--atol``.

Beside ``OUT.onnx`` goes ``OUT.json`` (:mod:`trainers.deploy.meta`): input size, normalisation,
joints, flip pairs, skeleton, crop margin and decoding switches — what ``python -m trainers.infer``
(onnxruntime, no torch) reads. File sizes are printed.

A QAT checkpoint (``quant.method pact``, 8 bits) is written as the int8 model of
:mod:`trainers.deploy.int8` — BatchNorm folded, int8 weights, uint8 activations calibrated on
validation crops (its config's dataset, or ``--calib-root``), run by onnxruntime's int8 kernels —
compared with the fake-quantized network on held-out crops. ``--no-int8`` writes its
fake-quantized graph instead (QuantizeLinear/DequantizeLinear around float weights, float-sized),
checked by its decoded keypoints on the same validation crops (≥ 99 % of them within one heatmap
pixel and 5 % of the peak confidence of PyTorch's: its quantizers turn a float rounding difference
at a quantization boundary into a whole step, so values may differ by a step where keypoints
do not; without a dataset, on a random batch, with a warning); ``--int8`` on a float or 4-bit checkpoint is an error.

``--target NAME`` picks a registered export target (:mod:`trainers.deploy.targets`; ``--int8``
is ``--target int8``); ``--out`` is ``--onnx`` for targets that write another format.
"""
from __future__ import annotations

import argparse
import logging
import sys

from search_space.errors import UserInputError
from trainers.cli import (ArgumentParser, cli_errors, configure_logging, input_size,
                          nonnegative_float, output_file, positive_int)
from trainers.config.experiment import load_config
from trainers.deploy.targets import EXPORT_TARGETS, ExportJob, target_names
from trainers.engine.qat import pact_modules
from trainers.network.build import load_any_network
from trainers.report import format_table

__all__ = ["main"]

logger = logging.getLogger(__name__)


def opset(text: str) -> int:
    """``--opset``: 11 (ONNX's Resize, which the fabrics' upsampling needs) or later."""
    value = positive_int(text)
    if value < 11:
        raise argparse.ArgumentTypeError(f"expected an ONNX opset ≥ 11, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m trainers.export", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, help="a posenas checkpoint, or a released one "
                   "(official HRNet, Lite-HRNet, mmpose) with --model")
    p.add_argument("--model", help="for a released checkpoint: the registered model it holds")
    p.add_argument("--cfg", help="for a released checkpoint: a config (model, input size)")
    p.add_argument("--onnx", "--out", dest="out", required=True, help="output file (.onnx)")
    p.add_argument("--target", choices=target_names(), metavar="NAME",
                   help="export target: " + "; ".join(f"{n}: {t.description}"
                                                      for n, t in EXPORT_TARGETS.items())
                   + " (default: int8 for an 8-bit QAT checkpoint, else onnx)")
    p.add_argument("--input-size", type=input_size,
                   help="HxW (default: the checkpoint's model.input_size)")
    p.add_argument("--opset", type=opset, default=17, help="ONNX opset (≥ 11: Resize)")
    p.add_argument("--int8", action=argparse.BooleanOptionalAction, default=None,
                   help="the int8 model of a QAT (quant.method pact, 8 bits) checkpoint: BN "
                   "folded, int8 weights, uint8 activations calibrated on validation crops "
                   "(trainers/deploy/int8.py); the default for such a checkpoint. --no-int8: its "
                   "fake-quantized float graph")
    p.add_argument("--calib-root", help="a QAT checkpoint: the dataset root whose validation "
                   "crops calibrate the int8 model's activation ranges (--int8) or check the "
                   "fake-quantized graph's keypoints (--no-int8) (default: the checkpoint's "
                   "dataset.root)")
    p.add_argument("--calib-batches", type=positive_int, default=8, help="a QAT checkpoint: "
                   "batches of 8 validation crops, to calibrate (--int8) or check (--no-int8)")
    p.add_argument("--atol", type=nonnegative_float, default=1e-4, help="a float network: allowed "
                   "abs difference of every heatmap value (a QAT graph is judged by its decoded "
                   "keypoints instead)")
    return p


def _target(args: argparse.Namespace, model) -> str:
    """``--target``, else ``--int8``/``--no-int8``, else int8 for an 8-bit QAT network."""
    if args.target is not None:
        if args.int8 is not None and (args.target == "int8") != args.int8:
            raise UserInputError("argument", f"--target {args.target} contradicts "
                                 f"--{'' if args.int8 else 'no-'}int8", field="--target")
        return args.target
    acts = pact_modules(model)
    int8 = args.int8 if args.int8 is not None else bool(acts) and acts[0].bits == 8
    return "int8" if int8 else "onnx"


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(logging.WARNING)
    output_file(args.out, "--out")
    cfg = load_config(args.cfg) if args.cfg else None
    cfg, spec, model = load_any_network(args.weights, cfg, args.model)
    size = args.input_size or tuple(cfg.model.input_size)
    target = _target(args, model)
    row = EXPORT_TARGETS[target].export(ExportJob(model, cfg, spec.name, size, args.out, args))
    note = row.pop("note", "")
    print(format_table(list(row), [list(row.values())]))
    if note:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
