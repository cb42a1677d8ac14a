"""PaddlePaddle ``.pdparams`` files, read without Paddle, and PaddleDetection's HRNet names.

A ``.pdparams`` file (``paddle.save(model.state_dict())``) is a pickle of a dict: structured name →
NumPy array, plus Paddle's ``"StructuredToParameterName@@"`` table (structured name → internal
parameter name). It is read by :class:`_ArraysOnly`, an unpickler that admits NumPy arrays, their
dtypes and plain containers and nothing else: any other object in the file (a class, a function,
``os.system``) is refused by name before anything is built or called.

PaddleDetection's ``TopDownHRNet`` (the PaddlePaddle seed's ``hrnet_w32_256x192.pdparams``) is the
official HRNet under other names — ``backbone.conv_layer1_{1,2}`` (the stem), ``la1.block_layer2_k``
(layer1), ``tr{t}.transition_tr{t}_layer_i``, ``st{s}.stage_st{s}_m.branches_func.bb_…`` and
``fuse_func.residual_…``, ``final_conv`` (the 1×1 heatmap head) — with every ``ConvNormLayer`` a
``conv`` + ``norm`` pair whose BatchNorm keeps ``_mean`` / ``_variance`` for PyTorch's
``running_mean`` / ``running_var``. Paddle convolutions store (out, in, kh, kw) like PyTorch; a
``Linear`` stores (in, out) and is transposed (HRNet has none).

PaddleDetection's Lite-HRNet (``lite_hrnet_30_256x192_coco.pdparams``) has mmpose's module tree
(``stem``, ``transition{i}``, ``stage{i}.{m}.layers`` / ``fuse_layers``, ``head_layer``) with a
``ConvNormLayer``'s ``norm`` where mmcv's ConvModule has ``bn``, and ``final_conv`` for the head:
:func:`paddle_litehrnet_key` renames those and hands the key to the mmpose Lite-HRNet rules.
"""
from __future__ import annotations

import io
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["read_pdparams", "is_paddle_hrnet", "paddle_hrnet_key", "is_paddle_litehrnet",
           "paddle_to_mmpose_litehrnet_key", "PaddleFileError"]

#: the one table Paddle adds beside the arrays
STRUCTURE_TABLE = "StructuredToParameterName@@"

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("collections", "OrderedDict"),
}


class PaddleFileError(ValueError):
    """A ``.pdparams`` file that cannot be read as arrays (one line, for the caller to locate)."""


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise PaddleFileError(f"holds a {module}.{name} object, which a parameter file has no "
                              "need of: refused without running it")


def read_pdparams(path: str | Path) -> dict[str, torch.Tensor]:
    """The arrays of a ``.pdparams`` file as CPU tensors (float64 stays float64), the structure
    table dropped.

    Raises:
        PaddleFileError: an object other than arrays and plain containers, a file that is not a
            pickle, or no arrays in it.
    """
    data = Path(path).read_bytes()
    try:
        obj = _ArraysOnly(io.BytesIO(data)).load()
    except PaddleFileError:
        raise
    except Exception as err:  # noqa: BLE001 - pickle raises many types for foreign bytes
        raise PaddleFileError(f"not a readable .pdparams pickle ({type(err).__name__})") from None
    if not isinstance(obj, dict):
        raise PaddleFileError(f"holds a {type(obj).__name__}, not a dict of arrays")
    state = {}
    for key, value in obj.items():
        if key == STRUCTURE_TABLE:
            continue
        if not isinstance(value, np.ndarray):
            raise PaddleFileError(f"{key!r} is a {type(value).__name__}, not an array")
        state[str(key)] = torch.from_numpy(np.ascontiguousarray(value))
    if not state:
        raise PaddleFileError("holds no arrays")
    return state


# ----------------------------------------------------------------------------------------------
# PaddleDetection HRNet → posenas

_BN = {"weight": "weight", "bias": "bias", "_mean": "running_mean", "_variance": "running_var"}
_CN = r"\.(?P<cn>conv|norm)\.(?P<p>weight|bias|_mean|_variance)$"


def _cn(m: re.Match, conv: str, norm: str) -> str:
    """A ConvNormLayer's ``conv``/``norm`` tensor under our ``conv``/``norm`` module names."""
    return f"{conv}.{m['p']}" if m["cn"] == "conv" else f"{norm}.{_BN[m['p']]}"


_B = "backbone.stages"
_RULES: list[tuple[re.Pattern, Any]] = [
    (re.compile(r"^conv_layer1_(?P<n>[12])" + _CN),
     lambda m: _cn(m, f"backbone.stem.{int(m['n']) - 1}.0", f"backbone.stem.{int(m['n']) - 1}.1")),
    (re.compile(r"^la1\.block_layer2_(?P<k>\d+)\.(?P<c>conv[123]|conv_down)" + _CN),
     lambda m: _cn(m, *_block_names(f"{_B}.0.modules_.0.branches.0.{int(m['k']) - 1}", m["c"]))),
    (re.compile(r"^tr(?P<t>\d)\.transition_tr\d_layer_(?P<i>\d+)" + _CN),
     lambda m: _cn(m, *_transition_names(int(m["t"]), int(m["i"]) - 1))),
    (re.compile(r"^st(?P<s>\d)\.stage_st\d_(?P<m>\d+)\.branches_func\.bb_st\d_\d+_branch_layer_"
                r"(?P<b>\d+)_(?P<k>\d+)\.(?P<c>conv[12])" + _CN),
     lambda m: _cn(m, *_block_names(f"{_B}.{int(m['s']) - 1}.modules_.{int(m['m']) - 1}."
                                    f"branches.{int(m['b']) - 1}.{int(m['k']) - 1}", m["c"]))),
    (re.compile(r"^st(?P<s>\d)\.stage_st\d_(?P<m>\d+)\.fuse_func\.residual_st\d_\d+_layer_"
                r"(?P<i>\d+)_(?P<j>\d+)(?:_(?P<k>\d+))?" + _CN),
     lambda m: _cn(m, *_fuse_names(m))),
]


def _block_names(block: str, conv: str) -> tuple[str, str]:
    if conv == "conv_down":
        return f"{block}.downsample.0", f"{block}.downsample.1"
    return f"{block}.{conv}", f"{block}.bn{conv[-1]}"


def _transition_names(t: int, i: int) -> tuple[str, str]:
    layer = f"{_B}.{t}.transition.layers.{i}"
    # stage t has t branches: branch i < t changes width, branch t is new (a stride-2 chain of one)
    return (f"{layer}.0", f"{layer}.1") if i < t else (f"{layer}.0.0", f"{layer}.0.1")


def _fuse_names(m: re.Match) -> tuple[str, str]:
    path = (f"{_B}.{int(m['s']) - 1}.modules_.{int(m['m']) - 1}.fuse.{int(m['i']) - 1}."
            f"paths.{int(m['j']) - 1}")
    if m["k"] is None:  # from a lower resolution: 1×1 conv + BN, then upsampling
        return f"{path}.0", f"{path}.1"
    return f"{path}.{int(m['k']) - 1}.0", f"{path}.{int(m['k']) - 1}.1"


def paddle_hrnet_key(key: str) -> str | None:
    """Our key for a PaddleDetection ``TopDownHRNet`` key, or None (no counterpart)."""
    if key.startswith("final_conv."):
        return "head." + key[len("final_conv."):]
    if not key.startswith("backbone."):
        return None
    rest = key[len("backbone."):]
    for pattern, new in _RULES:
        m = pattern.match(rest)
        if m:
            return new(m)
    return None


def is_paddle_hrnet(keys: set[str]) -> bool:
    """PaddleDetection's HRNet: its stem and layer1 names."""
    return ("backbone.conv_layer1_1.conv.weight" in keys
            and any(k.startswith("backbone.la1.block_layer2_") for k in keys))


# ----------------------------------------------------------------------------------------------
# PaddleDetection Lite-HRNet → mmpose's names (then ours, by the mmpose rules)

_NORM = re.compile(r"\.norm\.(weight|bias|_mean|_variance)$")


def paddle_to_mmpose_litehrnet_key(key: str) -> str:
    """mmpose 0.x's name for a PaddleDetection Lite-HRNet key: ConvNormLayer ``norm`` → ``bn``,
    Paddle's BN statistics → PyTorch's, ``final_conv`` → ``keypoint_head.final_layer``."""
    if key.startswith("final_conv."):
        return "keypoint_head.final_layer." + key[len("final_conv."):]
    key = _NORM.sub(lambda m: f".bn.{m[1]}", key)
    if key.endswith("._mean"):
        return key[:-len("_mean")] + "running_mean"
    if key.endswith("._variance"):
        return key[:-len("_variance")] + "running_var"
    return key


def is_paddle_litehrnet(keys: set[str]) -> bool:
    """PaddleDetection's Lite-HRNet: its stem with a ``norm`` and the iterative head."""
    return "backbone.stem.conv1.norm.weight" in keys and any(
        k.startswith("backbone.head_layer.") for k in keys)
