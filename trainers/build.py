"""The one network builder: every command gets its frozen network here.

A network is named by a :class:`NetworkSpec` — the point of the space it is (space config,
dataset, choices, kept channels) — made from one of:

- a registered model (``model.name``, ``--model``): :func:`spec_from_model`;
- an architecture file (``arch.json`` / ``derived.json``, ``--arch``): :func:`spec_from_arch`;
- architecture choices of a config's space (a trial, the Prune step): :func:`spec_from_choices`;
- the record a checkpoint stores (``posenas.model``): :func:`spec_from_record`.

:func:`build_network` freezes it (:func:`search_space.pose_space.freeze`) and optionally loads
weights: the exact state dict of this network (``model.pretrained``, a checkpoint), or weights
inherited from a bigger network (a one-shot supernet, or the full-width network of channel
pruning). Supernets are :func:`search_space.pose_space.build`.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from search_space.choices import ArchitectureError
from search_space.config import SpaceConfig
from search_space.inherit import inherit_weights
from search_space.models import MODELS, model_names
from search_space.pose_space import freeze
from trainers.arch_file import ArchFile, load_arch
from trainers.checkpoint import load_checkpoint, model_state_dict, read_state_dict
from trainers.config import Config, config_from_dict
from trainers.config_loader import build_dataclass, to_plain
from trainers.errors import UserInputError

__all__ = ["NetworkSpec", "spec_from_model", "spec_from_arch", "spec_from_choices",
           "spec_from_record", "network_spec", "build_network", "load_trained_network", "load_exact"]


@dataclass(frozen=True)
class NetworkSpec:
    """Which network to build: a point of the space.

    Attributes:
        name: ``hrnet_w32`` (a registered model) or ``arch:<config name>`` (an architecture).
        space: the space config.
        dataset: "coco" or "mpii" (the joints of the heads).
        choices: label → value of every decision of ``space`` ({} for registered models).
        channels: inner-width label → kept channel indices (channel-pruned architectures).
    """

    name: str
    space: SpaceConfig
    dataset: str
    choices: Mapping[str, Any] = field(default_factory=dict)
    channels: Mapping[str, list[int]] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """What a checkpoint stores to rebuild this network (:func:`spec_from_record`)."""
        if self.name in MODELS and not self.choices:
            return {"name": self.name}
        arch = {"space": to_plain(self.space), "choices": dict(self.choices)}
        if self.channels:
            arch["channels"] = {k: list(v) for k, v in self.channels.items()}
        return {"name": self.name, "arch": arch}


def spec_from_model(name: str, dataset: str, source: str = "config",
                    field_name: str = "model.name") -> NetworkSpec:
    """A registered model. Raises :class:`UserInputError` naming ``source``/``field_name``."""
    if name not in MODELS:
        raise UserInputError(source, f"unknown model {name!r}; known: {', '.join(model_names())}",
                             field=field_name)
    return NetworkSpec(name, MODELS[name].space, dataset)


def spec_from_arch(arch: ArchFile | str | Path, dataset: str | None = None) -> NetworkSpec:
    """An architecture file (its path or the loaded file); ``dataset``, when given, must be the
    one the architecture was searched for."""
    if not isinstance(arch, ArchFile):
        arch = load_arch(arch)
    if dataset is not None and arch.config.dataset.name != dataset:
        raise UserInputError(arch.path, f"the architecture is for {arch.config.dataset.name!r}, "
                             f"the config trains on {dataset!r}", field="config.dataset.name")
    return NetworkSpec(f"arch:{arch.config.name}", arch.config.space, arch.config.dataset.name,
                       dict(arch.choices), dict(arch.channels))


def spec_from_choices(cfg: Config, choices: Mapping[str, Any],
                      channels: Mapping[str, list[int]] | None = None) -> NetworkSpec:
    """The architecture ``choices`` of ``cfg``'s space."""
    return NetworkSpec(f"arch:{cfg.name}", cfg.space, cfg.dataset.name, dict(choices),
                       dict(channels or {}))


def spec_from_record(record: Any, dataset: str, source: str) -> NetworkSpec:
    """The network a checkpoint's model record describes (see :meth:`NetworkSpec.record`)."""
    if not isinstance(record, Mapping) or not record.get("name"):
        raise UserInputError(source, "no model name in the checkpoint metadata",
                             field="posenas.model.name")
    if "arch" not in record:
        return spec_from_model(record["name"], dataset, source, "posenas.model.name")
    arch = record["arch"]
    if not isinstance(arch, Mapping) or not isinstance(arch.get("space"), Mapping) \
            or not isinstance(arch.get("choices"), Mapping):
        raise UserInputError(source, "malformed architecture record (needs space and choices)",
                             field="posenas.model.arch")
    try:
        space = build_dataclass(SpaceConfig, arch["space"], source=source)
    except UserInputError as err:
        raise UserInputError(source, err.message, field=f"posenas.model.arch.space.{err.field}") from None
    return NetworkSpec(record["name"], space, dataset, dict(arch["choices"]),
                       dict(arch.get("channels") or {}))


def network_spec(cfg: Config, model: str | None = None, arch: str | None = None,
                 source: str = "config") -> NetworkSpec:
    """What a training or evaluation command builds: ``arch`` (an architecture file), else the
    registered ``model`` (a command-line name), else ``cfg.model.name``."""
    if arch is not None:
        return spec_from_arch(arch, cfg.dataset.name)
    if model is not None:
        return spec_from_model(model, cfg.dataset.name, "argument", "--model")
    return spec_from_model(cfg.model.name, cfg.dataset.name, source)


def load_trained_network(path: str | Path, cfg: Config | None = None
                         ) -> tuple[Config, NetworkSpec, nn.Module]:
    """The trained network of a posenas checkpoint: (config, spec, network with its weights).

    The config is ``cfg`` (a command's, e.g. to evaluate on other data) or, by default, the one
    the checkpoint was trained with.
    """
    ckpt = load_checkpoint(path)
    meta = ckpt["posenas"]
    if cfg is None:
        cfg = config_from_dict(meta["config"], source=f"{path} (posenas.config)")
    spec = spec_from_record(meta.get("model"), cfg.dataset.name, str(path))
    return cfg, spec, build_network(spec, model_state_dict(ckpt), field="--weights")


def build_network(spec: NetworkSpec, weights: str | Path | Mapping[str, torch.Tensor] | None = None,
                  *, inherit: bool = False, field: str = "model.pretrained",
                  device: str | torch.device | None = None) -> nn.Module:
    """Freeze ``spec`` into a plain PyTorch network and load ``weights``.

    Args:
        spec: the network.
        weights: a checkpoint / state-dict file (or a loaded state dict), or ``None`` for the
            initial weights.
        inherit: ``weights`` are a bigger network's (a one-shot supernet, or the full-width
            network of channel pruning): take each tensor's leading — or, with
            ``spec.channels``, its kept — channels. Otherwise they must fit exactly.
        field: the config key or option the weights came from, for error messages.
        device: build on this device (``"meta"``: structure only, no memory).

    Raises:
        UserInputError: choices that do not fit the space, or weights that do not fit the
            network, naming the file and ``field``.
    """
    try:
        with torch.device(device) if device is not None else nullcontext():
            network = freeze(spec.space, spec.dataset, spec.choices)
    except ArchitectureError as err:
        raise UserInputError(spec.name, err.message, field=f"choices.{err.label}") from None
    if weights is None:
        return network
    source = "<state dict>" if isinstance(weights, Mapping) else str(weights)
    state = dict(weights) if isinstance(weights, Mapping) else read_state_dict(weights, field=field)
    if inherit:
        try:
            inherit_weights(network, state, spec.channels or None)
        except (KeyError, IndexError, RuntimeError) as err:
            message = err.args[0] if isinstance(err, KeyError) else str(err).splitlines()[0]
            raise UserInputError(source, f"does not fit the architecture's space ({message})",
                                 field=field) from None
    else:
        load_exact(network, state, source, field)
    return network


def load_exact(network: nn.Module, state: Mapping[str, torch.Tensor], source: str,
               field: str) -> None:
    """Load a state dict that must fit ``network`` key for key and shape for shape.

    Raises:
        UserInputError: naming the first missing and unexpected keys and shape mismatches.
    """
    own = network.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {unexpected[0]})")
        if shapes:
            parts.append(f"{len(shapes)} of another shape (first: {shapes[0]})")
        raise UserInputError(source, "weights do not fit the network: " + "; ".join(parts),
                             field=field)
    network.load_state_dict(state)
