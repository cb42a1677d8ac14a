"""Export a trained checkpoint to ONNX and check it against PyTorch with onnxruntime.

    python -m trainers.export --weights W [--model NAME | --cfg CFG] --onnx OUT.onnx
                              [--input-size 256x192] [--opset 17]

``W``: a posenas checkpoint, or a released one (official HRNet, Lite-HRNet, mmpose), read as
``--model`` (or the ``--cfg``'s model.name) and converted on the fly.

The exported graph takes a normalised float image batch (N, 3, H, W) — N is dynamic — and returns
heatmaps (N, K, H/4, W/4). The same random batch is run through PyTorch and onnxruntime; the
maximum absolute difference is printed, and the export fails if it exceeds ``--atol``.
"""
from __future__ import annotations

import argparse
import inspect
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from trainers.atomic import atomic_path
from trainers.build import load_any_network
from trainers.config import load_config
from trainers.config_loader import coerce_value
from trainers.errors import UserInputError, cli_errors
from trainers.report import format_table

__all__ = ["export_onnx", "check_onnx", "main"]

logger = logging.getLogger(__name__)


def export_onnx(model: torch.nn.Module, path: str | Path, input_size: tuple[int, int],
                opset: int = 17) -> None:
    """Write ``model`` (eval mode) as ONNX with a dynamic batch axis, atomically."""
    model = model.eval()
    example = torch.randn(1, 3, *input_size)
    names = dict(input_names=["image"], output_names=["heatmaps"], opset_version=opset)
    with atomic_path(path, suffix=".onnx") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # the TorchScript exporter: fast, and enough for HRNet
            torch.onnx.export(model, (example,), str(tmp), dynamo=False, **names,
                              dynamic_axes={"image": {0: "batch"}, "heatmaps": {0: "batch"}})
        except Exception as err:  # e.g. Lite-HRNet's adaptive pooling to a traced size
            logger.info("TorchScript ONNX export failed (%s); using the torch.export exporter",
                        type(err).__name__)
            batch = torch.export.Dim("batch", min=1, max=4096)
            arg = next(iter(inspect.signature(model.forward).parameters))
            torch.onnx.export(model, (example,), str(tmp), dynamo=True, **names,
                              dynamic_shapes={arg: {0: batch}})


def check_onnx(model: torch.nn.Module, path: str | Path, input_size: tuple[int, int],
               batch: int = 2, seed: int = 0) -> float:
    """Max |PyTorch − onnxruntime| over a random batch of ``batch`` images (batch 2 also checks
    that the batch axis is dynamic: the graph was traced with batch 1)."""
    import onnxruntime as ort

    torch.manual_seed(seed)
    x = torch.randn(batch, 3, *input_size)
    with torch.no_grad():
        ref = model.eval()(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(["heatmaps"], {"image": x.numpy()})[0]
    return float(np.abs(out - ref).max())


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainers.export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, help="a posenas checkpoint, or a released one "
                   "(official HRNet, Lite-HRNet, mmpose) with --model")
    p.add_argument("--model", help="for a released checkpoint: the registered model it holds")
    p.add_argument("--cfg", help="for a released checkpoint: a config (model, input size)")
    p.add_argument("--onnx", required=True, help="output .onnx file")
    p.add_argument("--input-size", help="HxW (default: the checkpoint's model.input_size)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--atol", type=float, default=1e-4, help="allowed max abs difference")
    return p


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(args.cfg) if args.cfg else None
    cfg, spec, model = load_any_network(args.weights, cfg, args.model)
    size = tuple(cfg.model.input_size)
    if args.input_size:
        size = coerce_value(args.input_size, tuple[int, int], "argument", "--input-size")
    export_onnx(model, args.onnx, size, args.opset)
    diff = check_onnx(model, args.onnx, size)
    print(format_table(["model", "input", "onnx", "max |torch - onnxruntime|"],
                       [[spec.name, f"{size[0]}x{size[1]}", args.onnx, f"{diff:.3g}"]]))
    if not diff <= args.atol:
        raise UserInputError(args.onnx, f"onnxruntime differs from PyTorch by {diff:.3g} "
                             f"(> --atol {args.atol})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
