"""Export targets: what ``python -m trainers.export --target NAME`` can write, in one table.

Each target turns a loaded network (an :class:`ExportJob`) into a file, checks the file against
the network, writes the deployment metadata (:mod:`trainers.deploy.meta`) beside it and returns
one summary row. ``onnx``: the float (or QAT fake-quantized) graph, checked value by value with
onnxruntime; ``int8``: the int8 model of a QAT checkpoint (:mod:`trainers.deploy.int8`).

To add a target: a function ``(ExportJob) -> dict`` (column → value of the summary row) and one
entry in :data:`EXPORT_TARGETS` (README "Extending").
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.utils.parametrize as parametrize

from search_space.errors import UserInputError
from search_space.joints import keypoint_spec
from trainers.config.schema import HEATMAP_STRIDE, Config
from trainers.data.codec import get_max_preds
from trainers.data.loader import build_loader
from trainers.data.registry import build_dataset
from trainers.data.topdown import IMAGENET_MEAN, IMAGENET_STD, normalize_images
from trainers.deploy.int8 import export_int8, float_twin, int8_kernels
from trainers.deploy.meta import DeployMeta, write_meta
from trainers.deploy.onnx_graph import export_onnx, onnx_difference
from trainers.engine.qat import pact_modules

__all__ = ["validation_crops", "keypoint_agreement", "ExportJob", "ExportTarget", "EXPORT_TARGETS", "target_names", "deploy_meta"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportJob:
    """What a target exports: the network, its config and name, the input size, the output
    path and the command's arguments (``--atol``, ``--opset``, ``--calib-root`` …)."""

    model: torch.nn.Module
    cfg: Config
    name: str
    size: tuple[int, int]
    out: str
    args: argparse.Namespace


@dataclass(frozen=True)
class ExportTarget:
    """One registered export target: a line for ``--help`` and the function that writes it."""

    description: str
    export: Callable[[ExportJob], dict[str, Any]]


def deploy_meta(cfg: Config, name: str, size: tuple[int, int], quantized: bool = False) -> DeployMeta:
    """What ``trainers.deploy.infer`` needs of ``cfg`` for a model exported at input ``size``."""

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


#: a QAT graph agrees with PyTorch when this share of its decoded keypoints do
QAT_KEYPOINT_AGREEMENT = 0.99
#: a keypoint agrees: argmax within this many heatmap pixels (either axis) …
QAT_KEYPOINT_PIXELS = 1
#: … and confidence within this fraction of the batch's highest confidence
QAT_CONFIDENCE_SHARE = 0.05


def validation_crops(cfg: Config, size: tuple[int, int], root: str | None, batches: int,
                     purpose: str) -> list[np.ndarray]:
    """Up to ``batches`` batches of 8 normalised validation crops (N, 3, H, W) of ``cfg``'s
    dataset (or ``root``'s) cut at ``size``; a missing dataset is one line naming
    ``--calib-root`` and what the crops are for (``purpose``)."""
    cfg = replace(cfg, model=replace(cfg.model, input_size=tuple(size)))
    if root:
        cfg = replace(cfg, dataset=replace(cfg.dataset, root=root))
    try:
        dataset = build_dataset(cfg, "val", use_gt_bbox=True)
    except UserInputError as err:
        raise UserInputError(err.source, f"{err.message} — {purpose}", field=err.field) from None
    loader = build_loader(dataset, 8, shuffle=False, num_workers=0)
    return [normalize_images(b["image"], cfg.dataset.color_rgb).contiguous().numpy()
            for b, _ in zip(loader, range(batches)) if b["size"]]


def keypoint_agreement(expected: np.ndarray, got: np.ndarray) -> dict[str, float]:
    """How far ``got``'s decoded keypoints are from ``expected``'s (both (N, K, H, W) heatmaps):
    the share of the N·K keypoints whose argmax is within :data:`QAT_KEYPOINT_PIXELS` heatmap
    pixels on both axes and whose confidence (the heatmap maximum) is within
    :data:`QAT_CONFIDENCE_SHARE` of the largest expected confidence; the largest pixel distance
    and confidence difference."""
    ref_xy, ref_conf = get_max_preds(expected.astype(np.float32))
    got_xy, got_conf = get_max_preds(got.astype(np.float32))
    pixels = np.abs(ref_xy - got_xy).max(-1)
    conf = np.abs(ref_conf - got_conf)[..., 0]
    scale = max(float(np.abs(ref_conf).max()), 1e-12)
    agree = (pixels <= QAT_KEYPOINT_PIXELS) & (conf <= QAT_CONFIDENCE_SHARE * scale)
    return {"share": float(agree.mean()), "max_pixels": float(pixels.max()),
            "max_confidence": float(conf.max()), "keypoints": int(agree.size)}


def _qat_check(job: ExportJob) -> tuple[dict[str, float], str]:
    """A QAT graph judged by its decoded keypoints on validation crops (its config's dataset,
    or ``--calib-root``): its quantizers turn a float rounding difference at a quantization
    boundary into a whole step, which moves heatmap values by up to a step but (when the export
    is right) keeps the keypoints. Without a dataset: the random batch, with a warning."""
    import onnxruntime as ort

    args, model = job.args, job.model
    try:
        batches = validation_crops(job.cfg, job.size, args.calib_root, args.calib_batches,
                                   "the QAT graph is checked on validation crops")
    except UserInputError as err:
        logger.warning("%s: %s; checking the QAT graph's keypoints on a random batch instead "
                       "(pass --calib-root DIR for real crops)", err.source, err.message)
        batches = []
    if not batches:
        torch.manual_seed(0)
        batches, where = [torch.randn(8, 3, *job.size).numpy()], "a random batch of 8"
    else:
        where = f"{sum(len(b) for b in batches)} validation crops"
    session = ort.InferenceSession(job.out, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = np.concatenate([model.eval()(torch.from_numpy(b)).numpy() for b in batches])
    got = np.concatenate([session.run(["heatmaps"], {"image": b})[0] for b in batches])
    return keypoint_agreement(expected, got), where


def export_float_onnx(job: ExportJob) -> dict[str, Any]:
    """The network as an ONNX graph (a QAT network: its fake-quantized graph), checked against
    PyTorch with onnxruntime: a float network on a random batch, every heatmap value within
    ``--atol``; a QAT network by its decoded keypoints on validation crops
    (:func:`keypoint_agreement`: ≥ 99 % within one heatmap pixel and 5 % of the peak confidence),
    since its quantizers turn a rounding difference at a boundary into a whole step."""
    args, model, size = job.args, job.model, job.size
    export_onnx(model, job.out, size, args.opset)
    values = onnx_difference(model, job.out, size)  # one batch through both
    diff, agree = float(values.max()), float((values <= args.atol).mean())
    qat = bool(pact_modules(model))
    row: dict[str, Any] = {}
    if qat:
        keypoints, where = _qat_check(job)
        row = {"keypoints agreeing": f"{keypoints['share']:.2%}",
               "max Δ px / Δ confidence": f"{keypoints['max_pixels']:.0f} / "
                                          f"{keypoints['max_confidence']:.3g}"}
        if keypoints["share"] < QAT_KEYPOINT_AGREEMENT:
            Path(job.out).unlink(missing_ok=True)  # never leave a model that computes otherwise
            raise UserInputError(job.out, f"onnxruntime's keypoints differ from PyTorch's on "
                                 f"{where}: {keypoints['share']:.2%} of "
                                 f"{keypoints['keypoints']} within {QAT_KEYPOINT_PIXELS} heatmap "
                                 f"px and {QAT_CONFIDENCE_SHARE:.0%} confidence (needs "
                                 f"{QAT_KEYPOINT_AGREEMENT:.0%}); max Δ "
                                 f"{keypoints['max_pixels']:.0f} px")
        logger.info("QAT graph checked on %s", where)
    elif diff > args.atol:
        Path(job.out).unlink(missing_ok=True)  # never leave a model that computes otherwise
        raise UserInputError(job.out, f"onnxruntime differs from PyTorch by up to {diff:.3g}; "
                             f"{agree:.2%} of heatmap values within --atol {args.atol}")
    meta = write_meta(job.out, deploy_meta(job.cfg, job.name, size, quantized=qat))
    return {"model": job.name + (" (QAT)" if qat else ""), "input": f"{size[0]}x{size[1]}",
            "onnx": job.out, "size (MB)": f"{Path(job.out).stat().st_size / 1e6:.2f}",
            "max |torch - onnxruntime|": f"{diff:.3g}", f"within {args.atol:g}": f"{agree:.2%}",
            **row,
            "note": f"inference settings: {meta}; run without torch: python -m trainers.infer "
                    f"--model {job.out} --image IMG --out VIS.png"}


def export_int8_onnx(job: ExportJob) -> dict[str, Any]:
    """The QAT network as an int8 model, checked against its fake-quantized self on held-out
    validation crops (the int8 model calibrates on others)."""
    import onnxruntime as ort

    args, cfg, name, model, size = job.args, job.cfg, job.name, job.model, job.size
    acts = pact_modules(model)
    if not acts:
        raise UserInputError(args.weights, "a float checkpoint: --int8 needs a quantization-aware "
                             "one (train it with quant.method pact from this checkpoint)",
                             field="--int8")
    if acts[0].bits != 8:
        raise UserInputError(args.weights, f"trained with quant.bits {acts[0].bits}: an int8 "
                             "model needs quant.bits 8", field="--int8")
    # calibration crops at the exported input size (not necessarily the trained one)
    batches = validation_crops(cfg, size, args.calib_root, args.calib_batches + 1,
                               "the int8 model calibrates on validation crops: pass --calib-root "
                               "DIR (or --no-int8 for the fake-quantized float graph)")
    if len(batches) < 2:
        raise UserInputError(args.calib_root or cfg.dataset.root, "too few validation crops to "
                             "calibrate and check the int8 model", field="--calib-root")
    held, calibration = batches[-1], batches[:-1]
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(held)).numpy()
    per_channel = all(
        p.per_channel for m in model.modules() if parametrize.is_parametrized(m, "weight")
        for p in m.parametrizations.weight)
    float_bytes = export_int8(float_twin(model), job.out, size, calibration, per_channel)
    got = ort.InferenceSession(job.out, providers=["CPUExecutionProvider"]).run(
        None, {"image": held})[0]
    diff = float(np.abs(got - expected).max())
    peaks = (got.reshape(*got.shape[:2], -1).argmax(-1)
             == expected.reshape(*expected.shape[:2], -1).argmax(-1)).mean()
    kernels = int8_kernels(job.out)
    meta = write_meta(job.out, deploy_meta(cfg, name, size, quantized=True))
    int8_bytes = Path(job.out).stat().st_size
    return {"model": f"{name} (PACT int8)", "input": f"{size[0]}x{size[1]}", "onnx": job.out,
            "float (MB)": f"{float_bytes / 1e6:.2f}", "int8 (MB)": f"{int8_bytes / 1e6:.2f}",
            "int8 kernels": kernels, "max |int8 - fake-quant|": f"{diff:.3g}",
            "same peak": f"{peaks:.1%}",
            "note": f"calibrated on {len(calibration)} batches of {expected.shape[1]}-joint "
                    f"validation crops, checked on another; inference settings: {meta}"}


#: target name → :class:`ExportTarget`
EXPORT_TARGETS: dict[str, ExportTarget] = {
    "onnx": ExportTarget("ONNX graph (float, or a QAT network's fake-quantized graph), checked "
                         "against PyTorch with onnxruntime", export_float_onnx),
    "int8": ExportTarget("int8 ONNX model of an 8-bit QAT (PACT) checkpoint: BN folded, int8 "
                         "weights, calibrated uint8 activations, onnxruntime's int8 kernels",
                         export_int8_onnx),
}


def target_names() -> list[str]:
    """Registered export targets."""
    return list(EXPORT_TARGETS)
