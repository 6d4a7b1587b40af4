"""Tables (CSV/Markdown) and figures (PNG) a person reads."""

from __future__ import annotations

from .figures import plot_reliability_diagram
from .tables import format_value, markdown_table, mean_std, write_csv, write_markdown

__all__ = ["plot_reliability_diagram", "format_value", "markdown_table", "mean_std", "write_csv", "write_markdown"]
