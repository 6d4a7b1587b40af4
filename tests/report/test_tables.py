"""Tests for monai_lexu.report.tables."""

from __future__ import annotations

import csv
import math

from monai_lexu.report import format_value, markdown_table, mean_std, write_csv, write_markdown


def test_format_value():
    assert format_value(0.12345) == "0.123"
    assert format_value(0.12345, digits=1) == "0.1"
    assert format_value(float("nan")) == "nan"
    assert format_value(3) == "3"
    assert format_value("cup") == "cup"


def test_mean_std_known_answer():
    # values 1, 2, 3: mean 2, population std sqrt(2/3) = 0.816
    assert mean_std([1.0, 2.0, 3.0]) == "2.000 ± 0.816"


def test_mean_std_skips_and_counts_non_finite():
    assert mean_std([1.0, float("nan"), 3.0]) == "2.000 ± 1.000 (n=2/3)"
    assert mean_std([float("nan")]) == "nan"


def test_markdown_table_layout():
    text = markdown_table([{"metric": "SR", "disc": 0.5, "cup": float("nan")}], ["metric", "disc", "cup"])
    assert text.splitlines() == ["| metric | disc | cup |", "|---|---|---|", "| SR | 0.500 | nan |"]
    assert markdown_table([]) == ""


def test_write_csv_and_markdown(tmp_path):
    path = write_csv(tmp_path / "sub" / "t.csv", [{"a": 1, "b": 0.25}, {"a": 2, "b": math.pi}])
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert rows[1]["a"] == "2" and float(rows[1]["b"]) == math.pi  # full precision in CSV
    md = write_markdown(tmp_path / "x" / "t.md", "# hi\n")
    assert md.read_text() == "# hi\n"


def test_too_small_cell():
    from monai_lexu.report.tables import TOO_SMALL, too_small_cell

    assert TOO_SMALL == "n too small"
    assert too_small_cell(3, 5) == "n too small (n=3 < 5)"
