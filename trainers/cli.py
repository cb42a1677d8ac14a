"""What every command shares: bad user input as one line and exit code 2, and logging set up
so library progress reaches the user.

Library modules never print: they log through their module logger. A command calls
:func:`configure_logging` once; INFO records (progress, "resuming from …", the tables a library
step reports) then go to stdout as plain lines and warnings and errors to stderr, on rank zero
only under DDP. :class:`~search_space.errors.UserInputError` is the one error type for bad
input (defined in the lowest layer, so every layer raises it); :func:`cli_errors` turns it into
``error: FILE: FIELD: what is wrong`` and exit code 2.

Arguments are checked where they enter, before any work: :class:`ArgumentParser` reports
argparse's own errors the same way, the argument types (:func:`positive_float`,
:func:`input_size`, :data:`devices`, …) refuse values out of range, and :func:`output_file` /
:func:`output_dir` refuse output paths that cannot be written (a folder for a file, a file for a
folder, a read-only or missing file system) without creating anything.
"""
from __future__ import annotations

import argparse
import functools
import logging
import math
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Callable, NoReturn, TypeVar

from search_space.bounds import DEVICES_PATTERN
from search_space.errors import UserInputError
from search_space.joints import HEATMAP_STRIDE

__all__ = ["cli_errors", "configure_logging", "ArgumentParser", "positive_float", "finite_float",
           "nonnegative_float", "positive_int", "nonnegative_int", "input_size", "devices",
           "output_file", "output_dir", "existing_file", "LIGHTNING_LOGGERS"]

F = TypeVar("F", bound=Callable[..., object])

#: our packages: their INFO records are the commands' progress lines
_OWN = ("search_space", "strategies", "trainers", "visualize", "benchmarks", "__main__")
#: Lightning's loggers (both package names, and Fabric's)
LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric",
                     "lightning.fabric")


def cli_errors(main: F) -> F:
    """Decorate a command's ``main()``: logging set up (:func:`configure_logging`; a command may
    call it again with another level), and user errors end the program with one line and exit
    code 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        configure_logging()
        try:
            return main(*args, **kwargs)
        except UserInputError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose errors are ours: ``error: argument: --margin: must be > 0, got
    '0'`` and exit code 2, one line like every other bad input (argparse's own prints the usage
    first)."""

    _ARGUMENT = re.compile(r"argument (\S+?)(?:/\S+)?: (.*)", re.S)

    def error(self, message: str) -> NoReturn:
        match = self._ARGUMENT.fullmatch(message)
        field, text = (match.group(1), match.group(2)) if match else (None, message)
        raise UserInputError("argument", f"{text} (see {self.prog} --help)", field=field)


def _typed(check: Callable[[str], object], expected: str) -> Callable[[str], object]:
    def parse(text: str):
        try:
            value = check(text)
        except ValueError:
            value = None
        if value is None:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    parse.__name__ = expected
    return parse


def _number(text: str, kind: type, ok: Callable[[float], bool]):
    value = kind(text)
    return value if math.isfinite(value) and ok(value) else None


positive_float = _typed(lambda t: _number(t, float, lambda v: v > 0), "a number > 0")
nonnegative_float = _typed(lambda t: _number(t, float, lambda v: v >= 0), "a number ≥ 0")
finite_float = _typed(lambda t: _number(t, float, lambda v: True), "a finite number")
positive_int = _typed(lambda t: _number(t, int, lambda v: v >= 1), "an integer ≥ 1")
nonnegative_int = _typed(lambda t: _number(t, int, lambda v: v >= 0), "an integer ≥ 0")


#: ``--devices``: "auto", a count (-1: all) or GPU indices "0,1" (as ``train.devices``)
devices = _typed(lambda t: t if DEVICES_PATTERN.fullmatch(t) else None,
                 "'auto', a device count (-1: all) or GPU indices such as 0,1")


def _size(text: str) -> tuple[int, int] | None:
    parts = text.lower().split("x")
    if len(parts) != 2:
        return None
    h, w = int(parts[0]), int(parts[1])
    return (h, w) if h > 0 and w > 0 and h % HEATMAP_STRIDE == 0 and w % HEATMAP_STRIDE == 0 else None


#: ``HxW``: positive and multiples of the heatmap stride, e.g. 256x192
input_size = _typed(_size, f"HxW, both > 0 and multiples of {HEATMAP_STRIDE} (the heatmap "
                    "stride), e.g. 256x192")


def output_file(path: str | Path, field: str, suffixes: tuple[str, ...] = ()) -> Path:
    """Check before any work that ``path`` can be written as a file: not a folder, a known
    ``suffixes`` extension (if given), its folder creatable and writable.

    Raises:
        UserInputError: naming the path and ``field`` (the argument, e.g. ``--out``).
    """
    path = Path(path)
    if path.is_dir():
        raise UserInputError(str(path), "is a folder; give a file name", field=field)
    if suffixes and path.suffix.lower() not in suffixes:
        known = ", ".join(suffixes[:-1]) + " or " + suffixes[-1] if len(suffixes) > 1 else suffixes[0]
        raise UserInputError(str(path), f"unknown file type {path.suffix or '(none)'!r}; use "
                             f"{known}", field=field)
    _writable_folder(path.parent, path, field)
    return path


def output_dir(path: str | Path, field: str) -> Path:
    """Check before any work that ``path`` can be used as an output folder (it may exist).

    Raises:
        UserInputError: naming the path and ``field`` when it is a file or cannot be created
            or written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserInputError(str(path), "is a file, not a folder", field=field)
    _writable_folder(path, path, field)
    return path


def _writable_folder(folder: Path, shown: Path, field: str) -> None:
    """``folder``'s nearest existing ancestor is a folder in which a file can be created (so
    ``folder`` can be made there later; nothing is created now)."""
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise UserInputError(str(shown), f"{existing} is a file, not a folder", field=field)
    try:  # a real write: permissions, read-only and special file systems alike
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise UserInputError(str(shown), f"cannot write in {existing} ({err.strerror or err})",
                             field=field) from None


def existing_file(path: str | Path, field: str) -> Path:
    """``path`` as an existing regular file.

    Raises:
        UserInputError: naming the path and ``field`` when it is missing or a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise UserInputError(str(path), "is a folder, not a file", field=field)
    if not path.is_file():
        raise UserInputError(str(path), "no such file", field=field)
    return path


def _rank() -> int:
    """This process's global rank under DDP/torchrun/SLURM (0 without)."""
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return 0


class _RankZero(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _rank() == 0


class _OwnInfo(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING and record.name.split(".")[0] in _OWN


class _CurrentStreamHandler(logging.StreamHandler):
    """A handler writing to whatever ``sys.<name>`` is when a record is emitted (as logging's
    own last-resort handler does), not to the stream of the moment it was made: a command run
    in-process under ``contextlib.redirect_stdout``/``redirect_stderr`` logs into the redirect,
    and no handler is left holding the redirect's file once it is closed."""

    def __init__(self, name: str) -> None:
        self._sys_attr = name  # not _name: logging.Handler's own name
        super().__init__()

    @property
    def stream(self):  # type: ignore[override]
        return getattr(sys, self._sys_attr)

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it: always sys.<name>
        pass


def configure_logging(level: int = logging.INFO) -> None:
    """Our INFO lines to stdout (plain), every WARNING and above to stderr (``LEVEL name:
    message``); other libraries' INFO records stay silent; rank zero only under DDP."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_posenas", False):
            root.removeHandler(handler)
    out = _CurrentStreamHandler("stdout")
    out.setFormatter(logging.Formatter("%(message)s"))
    out.addFilter(_OwnInfo())
    err = _CurrentStreamHandler("stderr")
    err.setLevel(logging.WARNING)
    err.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    for handler in (out, err):
        handler.addFilter(_RankZero())
        handler._posenas = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(min(level, logging.WARNING))
    for name in _OWN:
        logging.getLogger(name).setLevel(level)
    # Lightning logs its INFO lines ("GPU available: ...", a tip advertising its cloud logger)
    # through a handler of its own that the root's filters never see: warnings only from it
    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning 2.6's utilities/_pytree.py tests ``isinstance(spec, LeafSpec)``, which torch 2.13
    # deprecates: a warning at every fit and evaluation that concerns Lightning's code, not the
    # user's run, and changes nothing in it
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
