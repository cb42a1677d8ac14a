"""Plain-text summary tables printed at the end of long work."""
from __future__ import annotations

from typing import Any, Sequence

__all__ = ["format_table", "format_metrics"]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A fixed-width table in the markdown pipe style (also pastes into a README)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h))
              for i, h in enumerate(headers)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line([str(h) for h in headers]), sep, *(line(r) for r in cells)])


def format_metrics(metrics: dict[str, float]) -> str:
    """One-row table of named metrics."""
    return format_table(list(metrics), [list(metrics.values())])
