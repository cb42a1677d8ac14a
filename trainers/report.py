"""Plain-text summary tables printed at the end of long work (metrics, params/GFLOPs reports)."""
from __future__ import annotations

from typing import Any, Sequence

__all__ = ["format_table", "format_metrics", "format_report"]


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


def format_report(report: dict[str, Any], title: str = "") -> str:
    """The report as a table (params in M, GFLOPs = MACs / 2^30)."""
    rows = [[c["name"], f"{c['params'] / 1e6:.3f}", f"{c['gflops']:.3f}"] for c in report["components"]]
    rows.append(["total", f"{report['params'] / 1e6:.3f}", f"{report['gflops']:.3f}"])
    h, w = report["input_size"]
    head = f"{title} at {h}x{w}: " if title else f"at {h}x{w}: "
    return (format_table(["component", "params (M)", "GFLOPs"], rows) +
            f"\n{head}{report['params']:,} params, {report['macs']:,} MACs "
            f"= {report['gflops']:.2f} GFLOPs (conv + linear multiply-adds / 2^30, HRNet convention)")
