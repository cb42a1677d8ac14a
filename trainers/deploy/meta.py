"""The JSON that travels beside an exported ONNX model: what inference needs besides the graph.

``trainers.deploy.export`` writes ``OUT.json`` next to ``OUT.onnx``; ``trainers.deploy.infer`` (no torch) reads
it. Format (version 1)::

    {"format": "posenas-onnx", "version": 1, "model": "hrnet_w32", "dataset": "coco",
     "input_size": [256, 192], "heatmap_size": [64, 48], "sigma": 2.0,
     "color_rgb": true, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
     "joints": [...names...], "flip_pairs": [[1, 2], ...], "skeleton": [[15, 13], ...],
     "margin": 1.25, "shift_heatmap": true, "post_process": true, "quantized": false}

``mean``/``std`` are per channel of the network's input order (RGB when ``color_rgb``), on
pixel values scaled to [0, 1]. Plain JSON and NumPy-free, so a deployment needs neither torch
nor posenas's training code to read it.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainers.atomic import write_json_atomic
from search_space.errors import UserInputError

__all__ = ["DeployMeta", "meta_path", "write_meta", "read_meta", "FORMAT", "VERSION"]

FORMAT = "posenas-onnx"
VERSION = 1


@dataclass(frozen=True)
class DeployMeta:
    """What inference needs to know about an exported model (see the module docstring)."""

    model: str
    dataset: str
    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    sigma: float
    color_rgb: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    joints: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    skeleton: tuple[tuple[int, int], ...]
    margin: float
    shift_heatmap: bool
    post_process: bool
    quantized: bool = False


def meta_path(onnx_path: str | Path) -> Path:
    """``OUT.json`` for ``OUT.onnx``."""
    return Path(onnx_path).with_suffix(".json")


def write_meta(onnx_path: str | Path, meta: DeployMeta) -> Path:
    """Write the JSON beside ``onnx_path`` atomically; return its path."""
    path = meta_path(onnx_path)
    write_json_atomic(path, {"format": FORMAT, "version": VERSION, **asdict(meta)}, indent=2)
    return path


def _pairs(value: Any, n: int, source: str, field: str) -> tuple[tuple[int, int], ...]:
    if not isinstance(value, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(i, int) and 0 <= i < n for i in p)
            for p in value):
        raise UserInputError(source, f"must be a list of [i, j] joint indices below {n}", field=field)
    return tuple((a, b) for a, b in value)


def _size(value: Any, source: str, field: str) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2 or not all(
            isinstance(v, int) and v > 0 for v in value):
        raise UserInputError(source, "must be [height, width] in pixels", field=field)
    return (value[0], value[1])


def _triple(value: Any, source: str, field: str) -> tuple[float, float, float]:
    if not isinstance(value, list) or len(value) != 3 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise UserInputError(source, "must be 3 numbers (one per channel)", field=field)
    if field == "std" and not all(v > 0 for v in value):
        raise UserInputError(source, "must be positive", field=field)
    return (float(value[0]), float(value[1]), float(value[2]))


def read_meta(onnx_path: str | Path) -> DeployMeta:
    """The JSON beside ``onnx_path``, checked field by field.

    Raises:
        UserInputError: the file is missing (export writes it), unreadable, of another format
            or version, or a field is missing or malformed — naming the file and the field.
    """
    path = meta_path(onnx_path)
    source = str(path)
    if not path.is_file():
        raise UserInputError(str(onnx_path), f"no {path.name} beside it: the input size, "
                             "normalisation and joints come from the JSON that "
                             "python -m trainers.export writes with the model")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserInputError(source, f"not readable JSON ({err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UserInputError(source, f"not a {FORMAT} file", field="format")
    if data.get("version") != VERSION:
        raise UserInputError(source, f"unsupported version {data.get('version')!r}", field="version")
    for key in ("model", "dataset", "input_size", "heatmap_size", "sigma", "color_rgb", "mean",
                "std", "joints", "flip_pairs", "skeleton", "margin", "shift_heatmap",
                "post_process"):
        if key not in data:
            raise UserInputError(source, "missing", field=key)
    joints = data["joints"]
    if not isinstance(joints, list) or not joints or not all(isinstance(j, str) for j in joints):
        raise UserInputError(source, "must be a non-empty list of joint names", field="joints")
    for key in ("color_rgb", "shift_heatmap", "post_process"):
        if not isinstance(data[key], bool):
            raise UserInputError(source, "must be true or false", field=key)
    for key in ("sigma", "margin"):
        if not isinstance(data[key], (int, float)) or isinstance(data[key], bool) or data[key] <= 0:
            raise UserInputError(source, "must be a positive number", field=key)
    n = len(joints)
    return DeployMeta(
        model=str(data["model"]), dataset=str(data["dataset"]),
        input_size=_size(data["input_size"], source, "input_size"),
        heatmap_size=_size(data["heatmap_size"], source, "heatmap_size"),
        sigma=float(data["sigma"]), color_rgb=data["color_rgb"],
        mean=_triple(data["mean"], source, "mean"), std=_triple(data["std"], source, "std"),
        joints=tuple(joints), flip_pairs=_pairs(data["flip_pairs"], n, source, "flip_pairs"),
        skeleton=_pairs(data["skeleton"], n, source, "skeleton"), margin=float(data["margin"]),
        shift_heatmap=data["shift_heatmap"], post_process=data["post_process"],
        quantized=bool(data.get("quantized", False)))
