"""Posenas checkpoints: the ``posenas`` record they carry (written in one place,
:func:`checkpoint_record`), loading them safely, and reading the weights of any supported file.

Checkpoints hold state dicts and plain metadata only, so they load with
``torch.load(..., weights_only=True)``. Writing them during training is
:class:`trainers.engine.checkpointing.AtomicCheckpoint`. Each carries a SHA-256 of its tensors
(``posenas.tensors_sha256``, :func:`seal`), checked on load: a file damaged on disk or in a copy
is one clear error, not a network that scores AP 0.
"""
from __future__ import annotations

import hashlib
from dataclasses import replace
import logging
from pathlib import Path
from typing import Any, Mapping

import torch

from torch import nn

from trainers.atomic import atomic_path
from search_space.errors import UserInputError, first_line
from trainers.weights.formats import Conversion, Target, convert_state, unwrap
from trainers.weights.paddle import PaddleFileError, read_pdparams

__all__ = ["CHECKPOINT_FORMAT", "checkpoint_record", "seal", "tensor_digest", "load_checkpoint",
           "is_posenas_checkpoint", "check_checkpoint", "read_torch_file", "model_state_dict", "read_state_dict",
           "read_weights", "save_state_dict"]

logger = logging.getLogger(__name__)


#: the ``posenas`` record of a checkpoint: its format name and version
CHECKPOINT_FORMAT, CHECKPOINT_VERSION = "posenas-ckpt", 1


def checkpoint_record(config: Mapping[str, Any], model: Mapping[str, Any],
                      metrics: Mapping[str, float] | None = None, **extra: Any) -> dict[str, Any]:
    """The ``posenas`` record every posenas checkpoint carries (the one place it is written):
    the plain config and network record it rebuilds from, the metrics it scored, and
    ``extra`` (the training RNG states, where it was converted from)."""
    return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": dict(config),
            "model": dict(model), "metrics": dict(metrics or {}), **extra}


def tensor_digest(state: Mapping[str, Any]) -> str:
    """SHA-256 over a state dict's tensors: names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name]
        if not isinstance(tensor, torch.Tensor):
            continue
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(memoryview(flat.view(torch.uint8).numpy()))
    return digest.hexdigest()


def seal(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Record the checksum of ``checkpoint["state_dict"]`` in its ``posenas`` record (the last
    thing done before it is written)."""
    checkpoint["posenas"]["tensors_sha256"] = tensor_digest(checkpoint["state_dict"])
    return checkpoint


def read_torch_file(path: str | Path, field: str | None = None) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU (a PaddlePaddle ``.pdparams``: its arrays,
    :func:`trainers.weights.paddle.read_pdparams`), every failure one error.

    Raises:
        UserInputError: naming ``path`` and ``field``: missing, a folder, unreadable, truncated,
            not a PyTorch file, or holding objects other than tensors and plain data.
    """
    path = Path(path)
    if path.is_dir():
        raise UserInputError(str(path), "is a folder, not a checkpoint file", field=field)
    if not path.is_file():
        raise UserInputError(str(path), "checkpoint not found", field=field)
    if path.stat().st_size == 0:
        raise UserInputError(str(path), "is empty (0 bytes): an interrupted copy or download?",
                             field=field)
    if path.suffix == ".pdparams":  # PaddlePaddle: a pickle of NumPy arrays, read without Paddle
        try:
            return read_pdparams(path)
        except PaddleFileError as err:
            raise UserInputError(str(path), str(err), field=field) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for corrupt / foreign files
        detail = first_line(err)
        raise UserInputError(str(path), f"not a loadable checkpoint ({type(err).__name__}"
                             f"{': ' + detail if detail else ''}): "
                             "truncated, corrupted or not a PyTorch file", field=field) from None


def is_posenas_checkpoint(obj: Any) -> bool:
    """Whether a loaded file says it is a posenas checkpoint (its record may still be bad)."""
    return (isinstance(obj, dict) and "posenas" in obj
            and (not isinstance(obj["posenas"], dict)
                 or obj["posenas"].get("format") == CHECKPOINT_FORMAT))


def check_checkpoint(ckpt: Any, path: str | Path) -> dict[str, Any]:
    """Check a loaded posenas checkpoint: its record's fields and its tensors' checksum.

    Raises:
        UserInputError: naming ``path`` and the field (``posenas.config``, ``state_dict``, …).
    """
    src = str(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise UserInputError(src, "not a posenas checkpoint (no state dict)", field="state_dict")
    meta = ckpt.get("posenas")
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise UserInputError(src, "not a posenas checkpoint (no posenas metadata)", field="posenas")
    for key in ("config", "model"):
        if not isinstance(meta.get(key), dict):
            raise UserInputError(src, "missing or not a mapping: the checkpoint cannot say which "
                                 "network it holds (was it edited?)", field=f"posenas.{key}")
    if not all(isinstance(v, torch.Tensor) for v in ckpt["state_dict"].values()):
        raise UserInputError(src, "holds values other than tensors", field="state_dict")
    expected = meta.get("tensors_sha256")
    if expected is not None and expected != tensor_digest(ckpt["state_dict"]):
        raise UserInputError(src, "the tensors do not match the checksum written with them: the "
                             "file is corrupted (copy it again, or use another checkpoint)",
                             field="posenas.tensors_sha256")
    return ckpt


def load_checkpoint(path: str | Path, field: str | None = None) -> dict[str, Any]:
    """Load a posenas checkpoint with ``weights_only=True`` and check it
    (:func:`check_checkpoint`: its record and its tensors' checksum).

    Raises:
        UserInputError: missing, unreadable, truncated, corrupted or not a posenas checkpoint.
    """
    return check_checkpoint(read_torch_file(path, field), path)


def model_state_dict(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The network's own state dict (the Lightning module stores it under ``model.``)."""
    prefix = "model."
    return {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}


#: where a Lightning checkpoint keeps the network: PoseModule's ``model``, or the one-shot
#: module's ``training_module.model`` (a search supernet)
_NETWORK_PREFIXES = ("training_module.model.", "model.")


def read_weights(path: str | Path, field: str, fmt: str = "auto",
                 target: Target | None = None) -> Conversion:
    """A network's weights from ``path``, in posenas's key layout, with what was converted.

    Reads a posenas/Lightning checkpoint (training or search), a plain state-dict file
    (``derived.pth``, ``pruned.pth``) or a checkpoint released by another code (official HRNet,
    ImageNet HRNet, timm; see :mod:`trainers.weights.formats`), always with ``weights_only=True``.
    ``fmt`` forces a format of :data:`~trainers.weights.formats.EXTERNAL_FORMATS` (default: detected);
    ``target`` (space, dataset) is the network the weights are for (PoseNFS files need it).

    Raises:
        UserInputError: naming ``path`` and the config key or option ``field``.
    """
    obj = read_torch_file(path, field)
    if is_posenas_checkpoint(obj):
        check_checkpoint(obj, path)
    if fmt in ("auto", "posenas") and isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        inner = obj["state_dict"]
        for prefix in _NETWORK_PREFIXES:
            if inner and all(isinstance(v, torch.Tensor) for v in inner.values()) \
                    and any(k.startswith(prefix + "backbone.") for k in inner):
                return Conversion("posenas", {k[len(prefix):]: v for k, v in inner.items()
                                              if k.startswith(prefix)}, source=str(path))
    state = unwrap(obj)
    if state is None:
        raise UserInputError(str(path), "not a checkpoint or state dict (no tensors found)",
                             field=field)
    try:
        return replace(convert_state(state, fmt, target), source=str(path))
    except UserInputError:
        raise
    except ValueError as err:
        raise UserInputError(str(path), str(err), field=field) from None


def read_state_dict(path: str | Path, field: str) -> dict[str, torch.Tensor]:
    """The tensors of :func:`read_weights`, under posenas names."""
    return read_weights(path, field).state


def save_state_dict(network: nn.Module, path: str | Path) -> None:
    """Write ``network``'s state dict atomically (``derived.pth``, ``pruned.pth``): loadable as
    ``model.pretrained`` and by :func:`read_state_dict`."""
    with atomic_path(path) as tmp:
        torch.save(network.state_dict(), tmp)
