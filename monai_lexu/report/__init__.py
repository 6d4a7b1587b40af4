"""Tables (CSV/Markdown) and figures (PNG) a person reads."""

from __future__ import annotations

from .cv import cross_validation_summary
from .figures import plot_reliability_diagram
from .tables import format_value, markdown_table, mean_std, write_csv, write_markdown

__all__ = [
    "cross_validation_summary",
    "format_value",
    "markdown_table",
    "mean_std",
    "plot_reliability_diagram",
    "write_csv",
    "write_markdown",
]
