"""The one exception type for bad user input, and the helper that turns it into one line."""
from __future__ import annotations

import functools
import logging
import sys
from typing import Callable, TypeVar

__all__ = ["UserInputError", "cli_errors"]

logger = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., object])


class UserInputError(Exception):
    """Bad input from the user: a config, annotation file, image, architecture or checkpoint.

    Args:
        source: the file (or ``"override"``/``"argument"``) the bad value came from.
        field: the key, annotation id or field inside ``source`` that is wrong, if any.
        message: what is wrong, in words a user can act on.
    """

    def __init__(self, source: str, message: str, field: str | None = None) -> None:
        self.source = str(source)
        self.field = field
        self.message = message
        where = f"{self.source}: {field}" if field else self.source
        super().__init__(f"{where}: {message}")


def cli_errors(main: F) -> F:
    """Decorate a ``main()`` so user errors end the program with one line and exit code 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserInputError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]
