"""Tables (CSV/Markdown) and figures (PNG) a person reads."""

from __future__ import annotations

from .tables import format_value, markdown_table, mean_std, write_csv, write_markdown

__all__ = ["format_value", "markdown_table", "mean_std", "write_csv", "write_markdown"]
