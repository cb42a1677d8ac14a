"""Export a trained checkpoint to ONNX and check it against PyTorch with onnxruntime.

    python -m trainers.export --weights W [--model NAME | --cfg CFG] --onnx OUT.onnx
                              [--input-size 256x192] [--opset 17]

``W``: a posenas checkpoint, or a released one (official HRNet, Lite-HRNet, mmpose), read as
``--model`` (or the ``--cfg``'s model.name) and converted on the fly.

The exported graph takes a normalised float image batch (N, 3, H, W) — N is dynamic — and returns
heatmaps (N, K, H/4, W/4). The same random batch is run through PyTorch and onnxruntime; the
maximum absolute difference is printed, and the export fails if it exceeds ``--atol``.

Beside ``OUT.onnx`` goes ``OUT.json`` (:mod:`trainers.deploy_meta`): input size, normalisation,
joints, flip pairs, skeleton, crop margin and decoding switches — what ``python -m trainers.infer``
(onnxruntime, no torch) reads. File sizes are printed.
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

from search_space.joints import keypoint_spec
from trainers.atomic import atomic_path
from trainers.build import load_any_network
from trainers.config import HEATMAP_STRIDE, Config, load_config
from trainers.data.topdown import IMAGENET_MEAN, IMAGENET_STD
from trainers.deploy_meta import DeployMeta, write_meta
from trainers.config_loader import coerce_value
from trainers.errors import UserInputError, cli_errors
from trainers.quant import pact_modules
from trainers.report import format_table

__all__ = ["export_onnx", "check_onnx", "deploy_meta", "main"]

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
               batch: int = 2, seed: int = 0, atol: float | None = None) -> float:
    """Max |PyTorch − onnxruntime| over a random batch of ``batch`` images (batch 2 also checks
    that the batch axis is dynamic: the graph was traced with batch 1); with ``atol``, the
    share of heatmap values within it instead."""
    import onnxruntime as ort

    torch.manual_seed(seed)
    x = torch.randn(batch, 3, *input_size)
    with torch.no_grad():
        ref = model.eval()(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(["heatmaps"], {"image": x.numpy()})[0]
    diff = np.abs(out - ref)
    return float(diff.max()) if atol is None else float((diff <= atol).mean())


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
    p.add_argument("--atol", type=float, default=1e-4, help="allowed abs difference: for every "
                   "heatmap value of a float network; for 99 %% of them in a QAT network, whose "
                   "quantizers turn a float rounding difference at a quantization boundary into "
                   "a whole step")
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
    qat = bool(pact_modules(model))
    agree = check_onnx(model, args.onnx, size, atol=args.atol)
    if not (agree >= 0.99 if qat else diff <= args.atol):
        Path(args.onnx).unlink(missing_ok=True)  # never leave a model that computes otherwise
        raise UserInputError(args.onnx, f"onnxruntime differs from PyTorch by up to {diff:.3g}; "
                             f"{agree:.2%} of heatmap values within --atol {args.atol}")
    meta = write_meta(args.onnx, deploy_meta(cfg, spec.name, size, quantized=qat))
    print(format_table(["model", "input", "onnx", "size (MB)", "max |torch - onnxruntime|",
                        f"within {args.atol:g}"],
                       [[spec.name + (" (QAT)" if qat else ""), f"{size[0]}x{size[1]}", args.onnx,
                         f"{Path(args.onnx).stat().st_size / 1e6:.2f}", f"{diff:.3g}",
                         f"{agree:.2%}"]]))
    print(f"inference settings: {meta}; run without torch: python -m trainers.infer "
          f"--model {args.onnx} --image IMG --out VIS.png")
    return 0


def deploy_meta(cfg: Config, name: str, size: tuple[int, int], quantized: bool = False) -> DeployMeta:
    """What ``trainers.infer`` needs of ``cfg`` for a model exported at input ``size``."""
    spec = keypoint_spec(cfg.dataset.name)
    mean = tuple(round(float(v), 6) for v in IMAGENET_MEAN)
    std = tuple(round(float(v), 6) for v in IMAGENET_STD)
    if not cfg.dataset.color_rgb:  # the network reads OpenCV's BGR order
        mean, std = mean[::-1], std[::-1]
    return DeployMeta(model=name, dataset=cfg.dataset.name, input_size=(size[0], size[1]),
                      heatmap_size=(size[0] // HEATMAP_STRIDE, size[1] // HEATMAP_STRIDE),
                      sigma=cfg.model.sigma, color_rgb=cfg.dataset.color_rgb, mean=mean, std=std,
                      joints=spec.names, flip_pairs=spec.flip_pairs, skeleton=spec.skeleton,
                      margin=cfg.test.margin, shift_heatmap=cfg.test.shift_heatmap,
                      post_process=cfg.test.post_process, quantized=quantized)


if __name__ == "__main__":
    sys.exit(main())
