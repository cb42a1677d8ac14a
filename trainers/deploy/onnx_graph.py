"""Writing a network as ONNX and checking it against PyTorch with onnxruntime."""
from __future__ import annotations

import inspect
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from trainers.atomic import atomic_path

__all__ = ["export_onnx", "check_onnx", "onnx_difference"]

logger = logging.getLogger(__name__)


def export_onnx(model: torch.nn.Module, path: str | Path, input_size: tuple[int, int],
                opset: int = 17, channels: int = 3) -> None:
    """Write ``model`` (eval mode) as ONNX with a dynamic batch axis, atomically (its input: a
    (N, ``channels``, H, W) batch)."""
    model = model.eval()
    example = torch.randn(1, channels, *input_size)
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
            # weights inside the file: the default external-data file would keep the temporary name
            torch.onnx.export(model, (example,), str(tmp), dynamo=True, **names,
                              dynamic_shapes={arg: {0: batch}}, external_data=False)


def onnx_difference(model: torch.nn.Module, path: str | Path, input_size: tuple[int, int],
                    batch: int = 2, seed: int = 0) -> np.ndarray:
    """|PyTorch − onnxruntime| of every heatmap value over a random batch of ``batch`` images
    (batch 2 also checks that the batch axis is dynamic: the graph was traced with batch 1)."""
    import onnxruntime as ort

    torch.manual_seed(seed)
    x = torch.randn(batch, 3, *input_size)
    with torch.no_grad():
        ref = model.eval()(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(["heatmaps"], {"image": x.numpy()})[0]
    return np.abs(out - ref)


def check_onnx(model: torch.nn.Module, path: str | Path, input_size: tuple[int, int],
               batch: int = 2, seed: int = 0, atol: float | None = None) -> float:
    """Max |PyTorch − onnxruntime| (:func:`onnx_difference`); with ``atol``, the share of heatmap
    values within it instead."""
    diff = onnx_difference(model, path, input_size, batch, seed)
    return float(diff.max()) if atol is None else float((diff <= atol).mean())
