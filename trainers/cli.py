"""What every command shares: bad user input as one line and exit code 2, and logging set up
so library progress reaches the user.

Library modules never print: they log through their module logger. A command calls
:func:`configure_logging` once; INFO records (progress, "resuming from …", the tables a library
step reports) then go to stdout as plain lines and warnings and errors to stderr, on rank zero
only under DDP. :class:`~search_space.errors.UserInputError` is the one error type for bad
input (defined in the lowest layer, so every layer raises it); :func:`cli_errors` turns it into
``error: FILE: FIELD: what is wrong`` and exit code 2.
"""
from __future__ import annotations

import functools
import logging
import os
import sys
from typing import Callable, TypeVar

from search_space.errors import UserInputError

__all__ = ["cli_errors", "configure_logging"]

F = TypeVar("F", bound=Callable[..., object])

#: our packages: their INFO records are the commands' progress lines
_OWN = ("search_space", "strategies", "trainers", "visualize", "benchmarks", "__main__")


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


def configure_logging(level: int = logging.INFO) -> None:
    """Our INFO lines to stdout (plain), every WARNING and above to stderr (``LEVEL name:
    message``); other libraries' INFO records stay silent; rank zero only under DDP."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_posenas", False):
            root.removeHandler(handler)
    out = logging.StreamHandler(sys.stdout)
    out.setFormatter(logging.Formatter("%(message)s"))
    out.addFilter(_OwnInfo())
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.WARNING)
    err.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    for handler in (out, err):
        handler.addFilter(_RankZero())
        handler._posenas = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(min(level, logging.WARNING))
    for name in _OWN:
        logging.getLogger(name).setLevel(level)
