"""Export a trained checkpoint to ONNX and check it against PyTorch with onnxruntime.

    python -m trainers.export --weights W [--model NAME | --cfg CFG] --onnx OUT.onnx
                              [--input-size 256x192] [--opset 17]
                              [--int8 | --no-int8] [--calib-root DIR] [--calib-batches 8]

``W``: a posenas checkpoint, or a released one (official HRNet, Lite-HRNet, mmpose), read as
``--model`` (or the ``--cfg``'s model.name) and converted on the fly.

The exported graph takes a normalised float image batch (N, 3, H, W) — N is dynamic — and returns
heatmaps (N, K, H/4, W/4). The same random batch is run through PyTorch and onnxruntime; the
maximum absolute difference is printed, and the export fails if it exceeds ``--atol``.

Beside ``OUT.onnx`` goes ``OUT.json`` (:mod:`trainers.deploy_meta`): input size, normalisation,
joints, flip pairs, skeleton, crop margin and decoding switches — what ``python -m trainers.infer``
(onnxruntime, no torch) reads. File sizes are printed.

A QAT checkpoint (``quant.method pact``, 8 bits) is written as the int8 model of
:mod:`trainers.int8` — BatchNorm folded, int8 weights, uint8 activations calibrated on
validation crops (its config's dataset, or ``--calib-root``), run by onnxruntime's int8 kernels —
compared with the fake-quantized network on held-out crops. ``--no-int8`` writes its
fake-quantized graph instead (QuantizeLinear/DequantizeLinear around float weights, float-sized),
checked value by value; ``--int8`` on a float or 4-bit checkpoint is an error.
"""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.utils.parametrize as parametrize

from search_space.joints import keypoint_spec
from trainers.int8 import export_int8, float_twin, int8_kernels
from trainers.onnx_graph import check_onnx, export_onnx
from trainers.build import load_any_network
from trainers.config import HEATMAP_STRIDE, Config, load_config
from trainers.data.datasets import build_dataset
from trainers.data.loader import build_loader
from trainers.data.topdown import IMAGENET_MEAN, IMAGENET_STD, normalize_images
from trainers.deploy_meta import DeployMeta, write_meta
from trainers.config_loader import coerce_value
from trainers.errors import UserInputError, cli_errors
from trainers.quant import pact_modules
from trainers.report import format_table

__all__ = ["export_onnx", "check_onnx", "deploy_meta", "main"]

logger = logging.getLogger(__name__)


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
    p.add_argument("--int8", action=argparse.BooleanOptionalAction, default=None,
                   help="the int8 model of a QAT (quant.method pact, 8 bits) checkpoint: BN "
                   "folded, int8 weights, uint8 activations calibrated on validation crops "
                   "(trainers/int8.py); the default for such a checkpoint. --no-int8: its "
                   "fake-quantized float graph")
    p.add_argument("--calib-root", help="--int8: the dataset root whose validation crops "
                   "calibrate the activation ranges (default: the checkpoint's dataset.root)")
    p.add_argument("--calib-batches", type=int, default=8, help="--int8: calibration batches")
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
    acts = pact_modules(model)
    int8 = args.int8 if args.int8 is not None else bool(acts) and acts[0].bits == 8
    if int8:
        return _export_int8(args, cfg, spec.name, model, size)
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


def _export_int8(args, cfg: Config, name: str, model: torch.nn.Module,
                 size: tuple[int, int]) -> int:
    """``--int8``: the QAT network as an int8 model, checked against its fake-quantized self."""
    import onnxruntime as ort

    acts = pact_modules(model)
    if not acts:
        raise UserInputError(args.weights, "a float checkpoint: --int8 needs a quantization-aware "
                             "one (train it with quant.method pact from this checkpoint)",
                             field="--int8")
    if acts[0].bits != 8:
        raise UserInputError(args.weights, f"trained with quant.bits {acts[0].bits}: an int8 "
                             "model needs quant.bits 8", field="--int8")
    if args.calib_root:
        cfg = replace(cfg, dataset=replace(cfg.dataset, root=args.calib_root))
    try:
        dataset = build_dataset(cfg, "val", use_gt_bbox=True)
    except UserInputError as err:
        raise UserInputError(err.source, f"{err.message} — the int8 model calibrates on validation "
                             "crops: pass --calib-root DIR (or --no-int8 for the fake-quantized "
                             "float graph)", field=err.field) from None
    loader = build_loader(dataset, 8, shuffle=False, num_workers=0)
    batches = [normalize_images(b["image"], cfg.dataset.color_rgb).contiguous().numpy()
               for b, _ in zip(loader, range(args.calib_batches + 1)) if b["size"]]
    if len(batches) < 2:
        raise UserInputError(cfg.dataset.root, "too few validation crops to calibrate and check "
                             "the int8 model", field="--calib-root")
    held, calibration = batches[-1], batches[:-1]
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(held)).numpy()
    per_channel = all(
        p.per_channel for m in model.modules() if parametrize.is_parametrized(m, "weight")
        for p in m.parametrizations.weight)
    float_bytes = export_int8(float_twin(model), args.onnx, size, calibration, per_channel)
    got = ort.InferenceSession(args.onnx, providers=["CPUExecutionProvider"]).run(
        None, {"image": held})[0]
    diff = float(np.abs(got - expected).max())
    peaks = (got.reshape(*got.shape[:2], -1).argmax(-1)
             == expected.reshape(*expected.shape[:2], -1).argmax(-1)).mean()
    kernels = int8_kernels(args.onnx)
    meta = write_meta(args.onnx, deploy_meta(cfg, name, size, quantized=True))
    int8_bytes = Path(args.onnx).stat().st_size
    print(format_table(["model", "input", "onnx", "float (MB)", "int8 (MB)", "int8 kernels",
                        "max |int8 - fake-quant|", "same peak"],
                       [[f"{name} (PACT int8)", f"{size[0]}x{size[1]}", args.onnx,
                         f"{float_bytes / 1e6:.2f}", f"{int8_bytes / 1e6:.2f}", kernels,
                         f"{diff:.3g}", f"{peaks:.1%}"]]))
    print(f"calibrated on {len(calibration)} batches of {dataset.num_joints}-joint validation "
          f"crops, checked on another; inference settings: {meta}")
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
