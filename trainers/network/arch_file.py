"""Architecture files: ``arch.json`` (a search result) and ``derived.json`` (after the Prune step).

An architecture file embeds the whole experiment config, so it is read here, where the whole
config is known; :func:`search_space.pose_space.check_architecture` checks its choices and
:mod:`trainers.network.build` builds its network.

Format (version 1)::

    {"format": "posenas-arch", "version": 1,
     "kind": "search" | "derived",
     "config": {...the whole experiment config...},
     "choices": {label: value},              # widths: ints, operations: names, inputs: [index]
     "weights": {"alpha": {label: {candidate: prob}}, "beta": {label: [prob, prob, prob]}},
     "channels": {label: [kept channel indices]},   # optional: channel pruning (prune_rate)
     "metrics": {...}}

``weights`` (the softmax of a one-shot search's α/β) is optional; ``choices`` must give every
label of the space the config describes, and nothing else. Loading checks all of it and names
the file and the offending field or label.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from search_space.pose_space import check_architecture
from trainers.atomic import write_json_atomic
from trainers.config.schema import Config
from trainers.config.experiment import config_from_dict, config_to_dict
from search_space.errors import UserInputError

__all__ = ["ArchFile", "FORMAT", "VERSION", "load_arch", "save_arch", "check_choices",
           "arch_from_dict"]

FORMAT = "posenas-arch"
VERSION = 1


@dataclass
class ArchFile:
    """A loaded architecture file."""

    config: Config
    choices: dict[str, Any]
    kind: str = "search"
    weights: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    path: str = "<memory>"
    channels: dict[str, list[int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = {"format": FORMAT, "version": VERSION, "kind": self.kind,
                "config": config_to_dict(self.config), "choices": self.choices,
                "weights": self.weights, "metrics": self.metrics}
        if self.channels:
            data["channels"] = self.channels
        return data



def check_choices(cfg: Config, choices: Mapping[str, Any], source: str) -> None:
    """Check ``choices`` against the space of ``cfg`` (built on the meta device: no memory).

    Raises:
        UserInputError: naming ``source`` and ``choices.<label>``.
    """
    try:
        check_architecture(cfg.space, cfg.dataset.name, choices)
    except UserInputError as err:
        raise err.located(source) from None
    except ValueError as err:  # e.g. a head that does not fit the cell width
        raise UserInputError(source, str(err), field="config.space") from None


def _check_weights(weights: Any, source: str) -> dict[str, Any]:
    if not isinstance(weights, dict) or not set(weights) <= {"alpha", "beta"}:
        raise UserInputError(source, "must be a mapping with 'alpha' and/or 'beta'", field="weights")
    for group, table in weights.items():
        if not isinstance(table, dict):
            raise UserInputError(source, "must map labels to probabilities", field=f"weights.{group}")
        for label, probs in table.items():
            values = list(probs.values()) if isinstance(probs, dict) else probs
            if not isinstance(values, list) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    for v in values):
                raise UserInputError(source, "must be a list or mapping of finite numbers",
                                     field=f"weights.{group}.{label}")
    return weights


def arch_from_dict(data: Any, source: str) -> ArchFile:
    """Validate a parsed architecture file (see the module docstring)."""
    if not isinstance(data, dict):
        raise UserInputError(source, "an architecture file is a JSON object")
    if data.get("format") != FORMAT:
        raise UserInputError(source, f"not a posenas architecture file (expected format "
                             f"{FORMAT!r}, got {data.get('format')!r})", field="format")
    if data.get("version") != VERSION:
        raise UserInputError(source, f"unsupported version {data.get('version')!r} "
                             f"(this posenas reads version {VERSION})", field="version")
    unknown = sorted(set(data) - {"format", "version", "kind", "config", "choices", "weights",
                                  "metrics", "channels"})
    if unknown:
        raise UserInputError(source, "unknown key", field=unknown[0])
    kind = data.get("kind", "search")
    if kind not in ("search", "derived"):
        raise UserInputError(source, f"must be 'search' or 'derived', got {kind!r}", field="kind")
    if "config" not in data:
        raise UserInputError(source, "missing (the experiment config)", field="config")
    config = _config(data["config"], source)
    choices = data.get("choices")
    if not isinstance(choices, dict):
        raise UserInputError(source, "must be a mapping of label to value", field="choices")
    check_choices(config, choices, source)
    weights = _check_weights(data.get("weights", {}), source)
    metrics = data.get("metrics", {})
    if not isinstance(metrics, dict):
        raise UserInputError(source, "must be a mapping", field="metrics")
    channels = _check_channels(data.get("channels", {}), choices, source)
    return ArchFile(config, dict(choices), kind, weights, metrics, source, channels)


def _check_channels(channels: Any, choices: Mapping[str, Any], source: str) -> dict[str, list[int]]:
    if not isinstance(channels, dict):
        raise UserInputError(source, "must map width labels to channel indices", field="channels")
    for label, kept in channels.items():
        where = f"channels.{label}"
        if label not in choices or not isinstance(choices[label], int):
            raise UserInputError(source, "not a width label of the choices", field=where)
        if (not isinstance(kept, list) or not all(isinstance(i, int) and not isinstance(i, bool)
                                                  and i >= 0 for i in kept)
                or len(set(kept)) != len(kept)):
            raise UserInputError(source, "must be a list of distinct channel indices", field=where)
        if len(kept) != choices[label]:
            raise UserInputError(source, f"{len(kept)} indices for width {choices[label]}",
                                 field=where)
    return {k: list(v) for k, v in channels.items()}


def _config(data: Any, source: str) -> Config:
    try:
        return config_from_dict(data, source=source)
    except UserInputError as err:
        raise UserInputError(source, err.message, field=f"config.{err.field}" if err.field
                             else "config") from None


def load_arch(path: str | Path) -> ArchFile:
    """Read and validate an architecture file.

    Raises:
        UserInputError: unreadable file, invalid JSON, or any field/label that does not fit.
    """
    source = str(path)
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise UserInputError(source, f"cannot read architecture file ({err.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserInputError(source, f"invalid JSON at line {err.lineno}") from None
    return arch_from_dict(data, source)


def save_arch(path: str | Path, arch: ArchFile) -> None:
    """Write ``arch`` atomically (a reader never sees half a file)."""
    write_json_atomic(path, arch.to_dict(), indent=2)
