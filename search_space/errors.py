"""The one exception type for bad user input, for every layer.

A config section's check, an architecture label outside the space, a bad annotation, image,
checkpoint or output path: each raises :class:`UserInputError`. Code that knows the file names
it at once; a check that does not (a dataclass's ``__post_init__``, a space checking its
labels) raises it with the field only (:meth:`UserInputError.at_field`), and the code that read
the file re-raises it located (:meth:`UserInputError.located`). Every command turns it into one
line on stderr and exit code 2 (``trainers.cli.cli_errors``).
"""
from __future__ import annotations

__all__ = ["UserInputError", "first_line"]


class UserInputError(ValueError):
    """Bad input from the user: a config, annotation file, image, architecture or checkpoint.

    Args:
        source: the file (or ``"override"``/``"argument"``) the bad value came from; ``""``
            while no code has named it yet.
        message: what is wrong, in words a user can act on.
        field: the key, label, annotation id or field inside ``source`` that is wrong, if any.
    """

    def __init__(self, source: str, message: str, field: str | None = None) -> None:
        self.source = str(source)
        self.field = field
        self.message = message
        where = ": ".join(part for part in (self.source, field) if part)
        super().__init__(f"{where}: {message}" if where else message)

    @classmethod
    def at_field(cls, field: str, message: str) -> UserInputError:
        """An error about ``field`` whose file the caller does not know (yet)."""
        return cls("", message, field=field)

    def located(self, source: str, prefix: str = "") -> UserInputError:
        """This error naming ``source``, its field under ``prefix`` (e.g. ``"choices."``)."""
        field = f"{prefix}{self.field}" if self.field else prefix.rstrip(".") or None
        return UserInputError(source, self.message, field=field)


def first_line(err: BaseException, limit: int | None = 200) -> str:
    """The first line of an exception's message, cut at ``limit`` characters ("" when the
    message is empty: a library's exception quoted in one of our one-line errors)."""
    lines = str(err).strip().splitlines()
    return lines[0][:limit] if lines else ""
