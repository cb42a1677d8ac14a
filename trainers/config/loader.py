"""YAML config files validated into frozen dataclasses: the machinery, for any schema.

A file is a mapping of sections; it may start from other files with ``_base_: [relative/path.yaml,
...]`` (later files, then command-line overrides, win). Overrides are ``KEY VALUE`` pairs or
``KEY=VALUE`` tokens with dotted lower-snake-case keys (``dataset.root /data/coco
train.epochs=3``); values are parsed as YAML scalars/lists. A section's own checks raise
:class:`~search_space.errors.UserInputError` naming the field only; the loader adds the file.

Every problem (unknown key, wrong type, missing value, unreadable file) raises
:class:`~search_space.errors.UserInputError` naming the file and the dotted key. The experiment
schema itself is :class:`trainers.config.schema.Config`.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence, TypeVar

import yaml

from search_space.bounds import field_bounds
from search_space.errors import UserInputError

__all__ = ["load_into", "build_dataclass", "to_plain", "parse_overrides", "coerce_value",
           "value_source"]

T = TypeVar("T")

_BASE_KEY = "_base_"
_ORIGIN_ATTR = "_posenas_origin"
_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


class _Yaml12Floats(yaml.SafeLoader):
    """PyYAML's safe loader, reading ``1e-4`` as the number YAML 1.2 says it is (YAML 1.1, which
    PyYAML follows, needs ``1.0e-4`` and reads ``1e-4`` as a string)."""


_Yaml12Floats.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_NUMBER, list("-+0123456789."))


def load_into(schema: type[T], path: str | Path, overrides: Sequence[str] = (),
              require: Sequence[str] = ()) -> T:
    """Load ``path`` (with its ``_base_`` files), apply command-line ``overrides`` and validate
    the result into the dataclass ``schema``.

    Args:
        schema: the root dataclass (its fields are the file's sections).
        path: the YAML file.
        overrides: trailing command-line tokens, ``KEY VALUE`` pairs or ``KEY=VALUE``.
        require: sections the file (with its bases and overrides) must set itself, rather
            than take the schema's defaults (a search needs its ``space``).

    Raises:
        UserInputError: naming the file (or ``override``) and the dotted key.
    """
    data, origin = _load_with_bases(Path(path), chain=())
    for key, value in parse_overrides(overrides, keep_text=True):
        _set_dotted(schema, data, origin, key, value, source="override")
    for section in require:
        if section not in data:
            raise UserInputError(str(path), f"missing: this command needs a {section} section "
                                 "(set it, or start from a file that has one with _base_)",
                                 field=section)
    return build_dataclass(schema, data, source=str(path), origin=origin)


def build_dataclass(schema: type[T], data: Mapping[str, Any], source: str = "<dict>",
                    origin: Mapping[str, str] | None = None) -> T:
    """Validate a plain mapping into the dataclass ``schema`` (sections are nested dataclasses).

    ``origin`` maps dotted keys to the file that set them, for error messages (later ones too:
    :func:`value_source`).
    """
    obj = _build(schema, data, prefix="", source=source, origin=origin or {})
    object.__setattr__(obj, _ORIGIN_ATTR, dict(origin or {}))  # frozen: set past __setattr__
    return obj


def value_source(obj: Any, dotted: str, default: str) -> str:
    """Where ``dotted``'s value in a loaded config came from: its file, ``"override"``, or
    ``default`` (a default value, or a config not made by this loader)."""
    return getattr(obj, _ORIGIN_ATTR, {}).get(dotted, default)


def to_plain(obj: Any) -> Any:
    """A dataclass as plain YAML/JSON-serialisable data (tuples become lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(obj))


def parse_overrides(tokens: Sequence[str], keep_text: bool = False) -> list[tuple[str, Any]]:
    """Parse ``KEY VALUE`` / ``KEY=VALUE`` tokens into ``(dotted_key, value)`` pairs.

    Values are YAML scalars or lists (``1e-4`` a number, as YAML 1.2 reads it). ``keep_text``:
    a number also keeps the text it was typed as, which a ``str`` field takes (``name 007``).
    """
    pairs: list[tuple[str, Any]] = []
    i = 0
    tokens = list(tokens)
    while i < len(tokens):
        token = tokens[i]
        if "=" in token and not token.startswith("="):
            key, raw = token.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(tokens):
                raise UserInputError("override", f"key {token!r} has no value "
                                     "(use KEY VALUE or KEY=VALUE)")
            key, raw = token, tokens[i + 1]
            i += 2
        if not key or not all(part.replace("_", "").isalnum() and part == part.lower()
                               for part in key.split(".")):
            raise UserInputError("override", "keys are dotted lower_snake_case, "
                                 "e.g. dataset.root or train.epochs", field=key)
        try:
            value = yaml.load(raw, Loader=_Yaml12Floats) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        if keep_text and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = _TypedToken(value, raw)
        pairs.append((key, value))
    return pairs


class _TypedToken:
    """A scalar override with the text it was typed as: a ``str`` field takes the text
    (``name 007`` is ``"007"``, not ``"7"``), any other field the parsed value."""

    def __init__(self, value: Any, raw: str) -> None:
        self.value, self.raw = value, raw

    def __repr__(self) -> str:
        return repr(self.raw)


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as err:
        raise UserInputError(str(path), f"cannot read config file ({err.strerror})") from None
    try:
        data = yaml.load(text, Loader=_Yaml12Floats)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserInputError(str(path), f"invalid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserInputError(str(path), "a config file must be a mapping of sections")
    return data


def _load_with_bases(path: Path, chain: tuple[Path, ...]) -> tuple[dict, dict[str, str]]:
    resolved = path.resolve()
    if resolved in chain:
        raise UserInputError(str(path), "circular _base_ reference", field=_BASE_KEY)
    raw = _load_yaml(path)
    bases = raw.pop(_BASE_KEY, [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise UserInputError(str(path), "must be a path or a list of paths", field=_BASE_KEY)
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for base in bases:
        base_data, base_origin = _load_with_bases(path.parent / base, chain + (resolved,))
        _merge(merged, origin, base_data, base_origin)
    own_origin = {key: str(path) for key in _dotted_keys(raw)}
    _merge(merged, origin, raw, own_origin)
    return merged, origin


def _dotted_keys(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(value, dict):
            keys.extend(_dotted_keys(value, dotted + "."))
    return keys


def _merge(dst: dict, dst_origin: dict, src: Mapping, src_origin: Mapping, prefix: str = "") -> None:
    for key, value in src.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge(dst[key], dst_origin, value, src_origin, dotted + ".")
        else:
            dst[key] = copy.deepcopy(value)
        dst_origin[dotted] = src_origin.get(dotted, dst_origin.get(dotted, "<unknown>"))
        if isinstance(value, dict):
            for sub in _dotted_keys(value, dotted + "."):
                dst_origin[sub] = src_origin.get(sub, dst_origin.get(sub, "<unknown>"))


def _set_dotted(schema: type, data: dict, origin: dict, key: str, value: Any,
                source: str) -> None:
    parts = key.split(".")
    cls: Any = schema
    node = data
    for depth, part in enumerate(parts):
        names = {f.name: f for f in dataclasses.fields(cls)}
        if part not in names:
            _unknown_key(source, ".".join(parts[: depth + 1]), list(names))
        hint = typing.get_type_hints(cls)[part]
        if depth == len(parts) - 1:
            node[part] = value
        else:
            if not dataclasses.is_dataclass(hint):
                raise UserInputError(source, f"{part!r} is a value, not a section",
                                     field=".".join(parts[: depth + 1]))
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserInputError(source, "must be a mapping", field=".".join(parts[: depth + 1]))
            cls = hint
    origin[key] = source


def _unknown_key(source: str, dotted: str, known: list[str]) -> typing.NoReturn:
    leaf = dotted.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(leaf, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(known))})"
    raise UserInputError(source, f"unknown key{hint}", field=dotted)


def _build(cls: type, data: Any, prefix: str, source: str, origin: Mapping[str, str]) -> Any:
    where = prefix.rstrip(".") or "<top level>"
    if not isinstance(data, Mapping):
        raise UserInputError(origin.get(prefix.rstrip("."), source), "must be a mapping", field=where)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            _unknown_key(origin.get(f"{prefix}{key}", source), f"{prefix}{key}", list(fields))
    kwargs = {}
    for name, fld in fields.items():
        dotted = f"{prefix}{name}"
        if name not in data:
            if fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING:
                raise UserInputError(source, "missing value (required)", field=dotted)
            continue
        file = origin.get(dotted, source)
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, data[name], dotted + ".", source, origin)
        else:
            kwargs[name] = coerce_value(data[name], hint, file, dotted)
            bounds = field_bounds(fld)
            if bounds is not None and bounds.violated_by(kwargs[name]):
                shown = ("x".join(str(v) for v in kwargs[name]) if isinstance(kwargs[name], tuple)
                         else repr(kwargs[name]))
                raise UserInputError(file, f"must be {bounds.describe()}, got {shown}", field=dotted)
    try:
        return cls(**kwargs)
    except UserInputError as err:
        if err.source:
            raise
        dotted = f"{prefix}{err.field}"
        raise err.located(origin.get(dotted, source), prefix) from None


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def coerce_value(value: Any, tp: Any, file: str, dotted: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert lists to tuples and ints to floats."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if isinstance(value, _TypedToken):
        if tp is str or (origin is Literal and all(isinstance(a, str) for a in args)):
            value = value.raw  # the text as typed: "007", "32"
        else:
            value = value.value

    def fail(expected: str) -> typing.NoReturn:
        raise UserInputError(file, f"expected {expected}, got {value!r}", field=dotted)

    if origin is Literal:
        if (isinstance(value, (int, float)) and not isinstance(value, bool)
                and all(isinstance(a, str) for a in args)):
            value = str(value)  # "precision: 32" in a file
        if value not in args:
            fail(_type_name(tp))
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce_value(value, inner[0], file, dotted)
    if origin is tuple:
        if isinstance(value, str) and "x" in value:  # "256x192"
            parts = value.lower().split("x")
            try:
                value = [int(p) for p in parts]
            except ValueError:
                fail("a list such as [256, 192] or 256x192")
        if not isinstance(value, (list, tuple)):
            fail("a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce_value(v, args[0], file, f"{dotted}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            fail(f"a list of {len(args)} values")
        return tuple(coerce_value(v, a, file, f"{dotted}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is list:
        if not isinstance(value, (list, tuple)):
            fail("a list")
        return [coerce_value(v, args[0], file, f"{dotted}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            fail("a mapping")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            fail("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail("an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            fail("a finite number")
        return float(value)
    if tp is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            fail("a string")
        return value
    raise TypeError(f"unsupported config annotation {tp!r} for {dotted}")  # programming error
