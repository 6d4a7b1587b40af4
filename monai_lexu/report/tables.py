"""Tables a person reads: CSV and Markdown from lists of row dicts."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "TOO_SMALL",
    "finite_mean_std",
    "format_value",
    "mean_std",
    "markdown_table",
    "too_small_cell",
    "write_csv",
    "write_markdown",
]

TOO_SMALL = "n too small"
"""What a table shows instead of a statistic over fewer cases than its stated minimum (e.g. SR/DC over < 5 images,
:data:`monai_lexu.metrics.correlation.MIN_CASES_FOR_CORRELATION`)."""


def too_small_cell(n: int, minimum: int) -> str:
    """The table cell of a statistic over ``n`` cases when it needs ``minimum``, e.g. ``"n too small (n=3 < 5)"``."""
    return f"{TOO_SMALL} (n={int(n)} < {int(minimum)})"


def format_value(value: object, digits: int = 3) -> str:
    """Format one table cell: floats to ``digits`` decimals, NaN as ``nan``, anything else with ``str``."""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def finite_mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean and population std (ddof=0) of the finite values, and how many there were (NaN, NaN, 0 if none)."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return float("nan"), float("nan"), 0
    m = sum(finite) / len(finite)
    return m, math.sqrt(sum((v - m) ** 2 for v in finite) / len(finite)), len(finite)


def mean_std(values: Sequence[float], digits: int = 3) -> str:
    """``"mean ± std"`` of the finite values (population std, ddof=0), with ``(n=k/N)`` when some were not finite.

    Args:
        values: per-image or per-run values; NaN/inf entries are left out and counted.
        digits: decimals.
    """
    m, s, n = finite_mean_std(values)
    if not n:
        return "nan"
    text = f"{m:.{digits}f} ± {s:.{digits}f}"
    if n != len(values):
        text += f" (n={n}/{len(values)})"
    return text


def markdown_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str] | None = None, digits: int = 3) -> str:
    """Render rows as a GitHub Markdown table.

    Args:
        rows: one mapping per row.
        columns: column order; defaults to the keys of the first row.
        digits: decimals for float cells.
    """
    if not rows:
        return ""
    cols = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(format_value(row.get(c, ""), digits) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def write_csv(path: str | Path, rows: Sequence[Mapping[str, object]], columns: Sequence[str] | None = None) -> Path:
    """Write rows as CSV (full float precision); creates the parent directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = list(columns or (rows[0].keys() if rows else []))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_markdown(path: str | Path, text: str) -> Path:
    """Write Markdown text; creates the parent directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
