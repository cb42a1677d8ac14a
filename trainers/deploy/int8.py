"""An int8 ONNX model from a QAT (PACT) network, with onnxruntime's own quantization tools.

1. The *float twin* of the QAT network: each PACT activation becomes ``clip(x, 0, α)`` and each
   convolution keeps its fake-quantized weight (values on the int8 grid) as a plain weight.
2. It is exported to ONNX; ``onnxruntime.quantization.quant_pre_process`` folds BatchNorm into
   the convolutions (per output channel: a per-channel int8 grid stays one).
3. ``onnxruntime.quantization.quantize_static`` writes the QDQ model: int8 weights per channel
   (or per tensor), uint8 activations whose ranges are calibrated (min/max) on real crops —
   except the PACT outputs, which keep PACT's own range [0, α] (:func:`pact_ranges`), and the
   two ends the QAT network never quantized, which stay float (:func:`float_ends`): the
   convolutions reading the image and those writing the heatmaps.
   onnxruntime fuses the QDQ pairs into int8 kernels (``QLinearConv``) when it loads the model.
4. Graph clean-up: a ``Shape`` that reads a dequantized tensor reads the quantized one instead
   (:func:`shapes_before_dequantize`: the same shape, without dequantizing a whole feature map
   to learn it), initializers of equal type, shape and bytes are stored once
   (:func:`shared_initializers`: the quantizer writes a scale and a zero point per tensor, many
   of them equal), the shape annotations (``value_info``; onnxruntime infers shapes when it
   loads a model) are dropped, and node and tensor names are shortened (:func:`compact_names`).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch
import torch.nn.utils.parametrize as parametrize
from torch import nn

from trainers.atomic import atomic_path
from trainers.deploy.onnx_graph import export_onnx
from trainers.engine.qat import PACT

__all__ = ["ClipActivation", "float_twin", "export_int8", "int8_kernels", "pact_ranges",
           "float_ends",
           "shapes_before_dequantize", "shared_initializers", "compact_names"]


class ClipActivation(nn.Module):
    """``clip(x, 0, α)``: a PACT activation without its rounding (onnxruntime quantizes)."""

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, 0.0, self.alpha)


def float_twin(network: nn.Module) -> nn.Module:
    """Turn a QAT network (in place) into its float twin (see the module docstring)."""
    for module in list(network.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, PACT):
                setattr(module, name, ClipActivation(float(child.alpha.detach())))
    for module in [m for m in network.modules() if parametrize.is_parametrized(m, "weight")]:
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return network


def export_int8(twin: nn.Module, path: str | Path, input_size: tuple[int, int],
                calibration: Iterable[np.ndarray], per_channel: bool = True) -> int:
    """Write the int8 QDQ model of ``twin`` (a :func:`float_twin`) to ``path``, activation
    ranges calibrated on ``calibration`` (normalised float batches (N, 3, H, W)); returns the
    size in bytes of the float ONNX model it was made from."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Reader(CalibrationDataReader):
        def __init__(self, batches: Iterator[np.ndarray]) -> None:
            self.batches = batches

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"image": np.ascontiguousarray(batch, np.float32)}

    with tempfile.TemporaryDirectory() as tmp:
        fp32, prepared = Path(tmp) / "float.onnx", Path(tmp) / "prepared.onnx"
        quantized = Path(tmp) / "int8.onnx"
        export_onnx(twin, fp32, input_size)
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(quantized), _Reader(iter(calibration)),
                        quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax,
                        nodes_to_exclude=float_ends(prepared),
                        extra_options={"TensorQuantOverrides": pact_ranges(prepared)})
        model = onnx.load(str(quantized))
        shapes_before_dequantize(model)
        shared_initializers(model)
        del model.graph.value_info[:]
        compact_names(model)
        with atomic_path(path, suffix=".onnx") as out:
            onnx.save(model, str(out))
        return fp32.stat().st_size


def pact_ranges(path: str | Path) -> dict[str, list[dict[str, np.ndarray]]]:
    """onnxruntime's ``TensorQuantOverrides`` for the model at ``path``: the output of every
    ``Clip(x, 0, α)`` (a PACT activation of the float twin) is quantized on [0, α] — PACT's
    own grid of 2^8 − 1 steps — rather than on the range calibration happens to see."""
    import onnx

    model = onnx.load(str(path))
    consts = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = onnx.numpy_helper.to_array(node.attribute[0].t)
    ranges = {}
    for node in model.graph.node:
        if node.op_type != "Clip" or len(node.input) < 3:
            continue
        low, high = consts.get(node.input[1]), consts.get(node.input[2])
        if low is None or high is None or float(low) != 0.0 or float(high) <= 0:
            continue
        ranges[node.output[0]] = [{"rmin": np.array(0.0, np.float32),
                                   "rmax": np.array(float(high), np.float32)}]
    return ranges


#: operators that only move, reorder or reshape values: :func:`float_ends` walks back through
#: them from the graph's outputs to the nodes that compute the heatmaps
_VALUE_MOVES = frozenset({"Concat", "Gather", "GatherElements", "ScatterElements", "Reshape",
                          "Transpose", "Slice", "Split", "Squeeze", "Unsqueeze", "Flatten",
                          "Identity"})


def float_ends(path: str | Path) -> list[str]:
    """The names of the nodes of the model at ``path`` that stay float in the int8 model: those
    reading a graph input (the normalised image), and those computing a graph output (the
    heatmaps) — found by walking back from each output through nodes that only move values
    (:data:`_VALUE_MOVES`: a fabric network assembles its parts' heatmaps with Concat and
    Gather) to the nodes that compute them.

    The QAT network quantizes neither end: its activations are fake-quantized at the PACT clips
    only, so its first convolution reads the float image and its last ones write float
    heatmaps. Quantized by onnxruntime all the same, the two ends cost `hrnet_tiny` 0.9–7.3 AP
    points against the fake-quantized torch network over 5 training seeds
    (``benchmarks/compress.py --seeds 5``), nearly all of it the image's doing (one uint8 grid
    over the normalised range, steps of ~0.019, coarser than the pixels' own ~0.017: with only
    the image float, −0.6 to +0.1); with both ends float, −0.65 to +0.01. Both
    ends are cheap in float: a 3-channel input convolution and 1×1 heatmap convolutions.
    """
    import onnx

    graph = onnx.load(str(path)).graph
    inputs = {v.name for v in graph.input}
    producers = {out: node for node in graph.node for out in node.output}
    keep: dict[str, None] = {n.name: None for n in graph.node if inputs & set(n.input)}
    pending = [v.name for v in graph.output]
    seen: set[str] = set()
    while pending:
        node = producers.get(pending.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        keep[node.name] = None
        if node.op_type in _VALUE_MOVES:
            pending.extend(node.input)
    if "" in keep:
        raise ValueError(f"{path}: a node without a name among the float ends")
    return list(keep)


def shapes_before_dequantize(model: Any) -> int:
    """Rewire, in place, every ``Shape`` whose input is a ``DequantizeLinear`` output to read that
    node's (quantized) input, and drop the ``DequantizeLinear`` nodes nothing reads any more;
    returns how many ``Shape`` nodes were rewired.

    A resampling to another branch's size (``F.interpolate(size=…)``, with a dynamic batch)
    exports as ``Shape → Slice → Concat → Resize``; after quantization every such ``Shape``
    dequantized the whole feature map only to read its dimensions, which
    ``DequantizeLinear`` never changes. Measured on hrnet_tiny and a derived fabric network
    (128×96): 11 and 16 such nodes."""
    graph = model.graph
    dequantized = {n.output[0]: n for n in graph.node if n.op_type == "DequantizeLinear"}
    rewired = 0
    for node in graph.node:
        if node.op_type == "Shape" and node.input[0] in dequantized:
            node.input[0] = dequantized[node.input[0]].input[0]
            rewired += 1
    read = {name for n in graph.node for name in n.input} | {v.name for v in graph.output}
    unused = [n for n in dequantized.values() if n.output[0] not in read]
    for node in unused:
        graph.node.remove(node)
    # their scales and zero points, unless another node reads them too
    params = ({name for n in unused for name in n.input[1:]}
              - {name for n in graph.node for name in n.input})
    for tensor in [t for t in graph.initializer if t.name in params]:
        graph.initializer.remove(tensor)
    return rewired


def shared_initializers(model: Any) -> int:
    """Store, in place, every set of initializers with the same data type, shape and bytes once:
    the nodes that read a duplicate read the first of its set instead, and the duplicate goes.
    Returns how many were removed. The graph computes the same function (every input reads the
    same values); only the file shrinks. Measured on a derived fabric network's int8 model:
    129 of 419 initializers (zero points and scales the quantizer wrote per tensor).

    An initializer that is also a graph input or output (a default a caller may override, or a
    value read out) is never merged, and a graph with subgraphs (``If``, ``Loop``, which may read
    initializers by name) is left as it is."""
    from onnx import AttributeProto, numpy_helper

    graph = model.graph
    if any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS)
           for node in graph.node for a in node.attribute):
        return 0
    exposed = {v.name for v in graph.input} | {v.name for v in graph.output}
    first: dict[tuple, str] = {}
    alias: dict[str, str] = {}
    for tensor in graph.initializer:
        if tensor.name in exposed:
            continue
        key = (tensor.data_type, tuple(tensor.dims), numpy_helper.to_array(tensor).tobytes())
        alias_of = first.setdefault(key, tensor.name)
        if alias_of != tensor.name:
            alias[tensor.name] = alias_of
    if alias:
        for node in graph.node:
            node.input[:] = [alias.get(x, x) for x in node.input]
        kept = [t for t in graph.initializer if t.name not in alias]
        del graph.initializer[:]
        graph.initializer.extend(kept)
    return len(alias)


def compact_names(model: Any) -> None:
    """Short node and tensor names (``n12``, ``t34``) in place: the quantizer's generated names
    make up a sixth of a small int8 file. The graph's inputs and outputs keep theirs."""
    graph = model.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in keep:
            return name
        return names.setdefault(name, f"t{len(names)}")

    for tensor in graph.initializer:
        tensor.name = short(tensor.name)
    for i, node in enumerate(graph.node):
        node.name = f"n{i}"
        node.doc_string = ""
        node.input[:] = [short(x) for x in node.input]
        node.output[:] = [short(x) for x in node.output]
    for info in graph.value_info:
        info.name = short(info.name)


def int8_kernels(path: str | Path) -> int:
    """How many ``QLinearConv``/``ConvInteger`` nodes onnxruntime runs for the model at
    ``path`` (its graph after the session's own optimisation)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.log_severity_level = 3
        options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        graph = onnx.load(options.optimized_model_filepath).graph
    return sum(n.op_type in ("QLinearConv", "ConvInteger") for n in graph.node)
