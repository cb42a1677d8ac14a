"""Posenas checkpoints: the ``posenas`` record they carry (written in one place,
:func:`checkpoint_record`), loading them safely, and reading the weights of any supported file.

Checkpoints hold state dicts and plain metadata only, so they load with
``torch.load(..., weights_only=True)``. Writing them during training is
:class:`trainers.engine.checkpointing.AtomicCheckpoint`.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import torch

from torch import nn

from trainers.atomic import atomic_path
from search_space.errors import UserInputError
from trainers.weights.formats import Conversion, Target, convert_state, unwrap

__all__ = ["CHECKPOINT_FORMAT", "checkpoint_record", "load_checkpoint", "model_state_dict", "read_state_dict",
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


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a posenas checkpoint with ``weights_only=True`` and check its format.

    Raises:
        UserInputError: missing, unreadable, truncated or not a posenas checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(str(path), "checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt / foreign files
        raise UserInputError(str(path), f"not a loadable checkpoint ({type(err).__name__}: "
                             f"{str(err).splitlines()[0][:200]})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise UserInputError(str(path), "not a posenas checkpoint", field="state_dict")
    meta = ckpt.get("posenas")
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise UserInputError(str(path), "not a posenas checkpoint (no posenas metadata)",
                             field="posenas")
    return ckpt


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
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - missing, foreign or corrupt file
        raise UserInputError(str(path), f"not a loadable checkpoint or state dict "
                             f"({type(err).__name__}: {str(err).splitlines()[0][:200]})",
                             field=field) from None
    if fmt in ("auto", "posenas") and isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        inner = obj["state_dict"]
        for prefix in _NETWORK_PREFIXES:
            if inner and all(isinstance(v, torch.Tensor) for v in inner.values()) \
                    and any(k.startswith(prefix + "backbone.") for k in inner):
                return Conversion("posenas", {k[len(prefix):]: v for k, v in inner.items()
                                              if k.startswith(prefix)})
    state = unwrap(obj)
    if state is None:
        raise UserInputError(str(path), "not a checkpoint or state dict (no tensors found)",
                             field=field)
    try:
        return convert_state(state, fmt, target)
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
