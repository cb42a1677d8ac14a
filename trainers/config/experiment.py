"""Loading a whole experiment config: a YAML file (with ``_base_`` files and ``KEY VALUE``
overrides) or a plain mapping (the ``config`` of an arch file or checkpoint) into a
:class:`~trainers.config.schema.Config`, checked against the registries it names.

The schema (:mod:`trainers.config.schema`) knows no registry, so the dataset readers can take a
``Config`` without a cycle; this module is where a dataset name meets the dataset registry.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from trainers.config.loader import build_dataclass, load_into, to_plain
from trainers.config.schema import RENAMED_KEYS, Config
from trainers.data.registry import register_config_dataset
from search_space.errors import UserInputError

__all__ = ["load_config", "config_from_dict", "config_to_dict"]


def _renamed(err: UserInputError) -> UserInputError:
    """An unknown key that an older version had: say where it lives now."""
    new = RENAMED_KEYS.get(err.field or "")
    if new is None or not err.message.startswith("unknown key"):
        return err
    return UserInputError(err.source, f"renamed to {new}", field=err.field)


def _check_registered(cfg: Config, source: str) -> Config:
    origin = getattr(cfg, "_posenas_origin", None)
    checked = register_config_dataset(cfg, source)
    if checked is not cfg and origin is not None:  # dataclasses.replace drops the origins
        object.__setattr__(checked, "_posenas_origin", origin)
    return checked


def load_config(path: str | Path, overrides: Sequence[str] = (), require: Sequence[str] = ()) -> Config:
    """Load the experiment config ``path`` (with its ``_base_`` files) and apply command-line
    ``overrides`` (``KEY VALUE`` pairs or ``KEY=VALUE``); ``require``: sections that must be
    set rather than defaulted (``("space",)`` for the search commands).

    Raises:
        UserInputError: naming the file (or ``override``) and the dotted key.
    """
    try:
        cfg = load_into(Config, path, overrides, require)
    except UserInputError as err:
        raise _renamed(err) from None
    return _check_registered(cfg, str(path))


def config_from_dict(data: Mapping[str, Any], source: str = "<dict>",
                     origin: Mapping[str, str] | None = None) -> Config:
    """Validate a plain mapping (e.g. the ``config`` of an arch.json) into a :class:`Config`."""
    try:
        cfg = build_dataclass(Config, data, source=source, origin=origin)
    except UserInputError as err:
        raise _renamed(err) from None
    return _check_registered(cfg, source)


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The config as plain YAML/JSON-serialisable data (tuples become lists)."""
    return to_plain(cfg)
