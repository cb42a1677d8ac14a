"""The range of a config field, declared in the schema beside its default.

    epochs: int = bounded(210, ge=1)
    input_size: tuple[int, int] = bounded((256, 192), gt=0, multiple_of=4, why="the heatmap stride")

:func:`bounded` stores a :class:`Bounds` in the dataclass field's metadata; the config loader
(:mod:`trainers.config.loader`) checks every value against it when a file or override is read,
before any work starts, and names the file and the dotted key. A tuple's bounds hold for each of
its values.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Bounds", "bounded", "field_bounds", "DEVICES_PATTERN"]

_KEY = "bounds"

#: Lightning's ``devices`` as a config value or ``--devices``: "auto", a count (-1: all) or
#: comma-separated GPU indices ("0,1")
DEVICES_PATTERN = re.compile(r"auto|-1|[1-9]\d*|\d+(,\d+)+,?")


@dataclass(frozen=True)
class Bounds:
    """``ge``/``gt`` and ``le``/``lt``: inclusive / exclusive limits; ``multiple_of``: an integer
    step the value must be a multiple of (``why`` says whose step it is)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    multiple_of: int | None = None
    why: str = ""

    def describe(self) -> str:
        """The range in words, e.g. ``in [0, 1)`` or ``≥ 1``."""
        n = _number
        low = (f"[{n(self.ge)}" if self.ge is not None else f"({n(self.gt)}"
               if self.gt is not None else None)
        high = (f"{n(self.le)}]" if self.le is not None else f"{n(self.lt)})"
                if self.lt is not None else None)
        if low and high:
            text = f"in {low}, {high}"
        elif low:
            text = f"≥ {n(self.ge)}" if self.ge is not None else f"> {n(self.gt)}"
        elif high:
            text = f"≤ {n(self.le)}" if self.le is not None else f"< {n(self.lt)}"
        else:
            text = ""
        if self.multiple_of:
            step = f"a multiple of {self.multiple_of}" + (f" ({self.why})" if self.why else "")
            text = f"{text} and {step}" if text else step
        return text

    def violated_by(self, value: Any) -> bool:
        """Whether ``value`` (a number, or a tuple of numbers) lies outside the range."""
        if isinstance(value, (tuple, list)):
            return any(self.violated_by(v) for v in value)
        if isinstance(value, float) and not math.isfinite(value):
            return True
        return ((self.ge is not None and value < self.ge) or (self.gt is not None and value <= self.gt)
                or (self.le is not None and value > self.le) or (self.lt is not None and value >= self.lt)
                or (self.multiple_of is not None and value % self.multiple_of != 0))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def bounded(default: Any, *, ge: float | None = None, gt: float | None = None,
            le: float | None = None, lt: float | None = None, multiple_of: int | None = None,
            why: str = "") -> Any:
    """A dataclass field with ``default`` whose values must lie in the given range."""
    bounds = Bounds(ge=ge, gt=gt, le=le, lt=lt, multiple_of=multiple_of, why=why)
    if bounds.violated_by(default):
        raise ValueError(f"default {default!r} outside its own range {bounds.describe()}")
    return dataclasses.field(default=default, metadata={_KEY: bounds})


def field_bounds(fld: dataclasses.Field) -> Bounds | None:
    """The :class:`Bounds` a field was declared with (``None``: any value of its type)."""
    return fld.metadata.get(_KEY)
