"""The RIGA format (retinal optic disc / cup, 6 raters): sources, mask values, structures and the CSV reader.

The preprocessed RIGA release read by the official LEXU code (``Katalip/grader_soup``, ``dataset/DiscRegion.py``):
``root/Glaucoma_multirater_{BinRushed,MESSIDOR,Magrabia}.csv``. After a header row, each CSV has blocks of 7 rows
per image: the image path is column 1 of the block's first row (rater 0, the final label), the 6 rater mask paths are
column 2 of the next 6 rows. Paths are relative to ``root`` and may use ``\\``. Masks hold
:data:`RIGA_MASK_VALUES`: 0 (background), 150 (disc outside the cup) and 255 (cup); disc = non-zero, cup = 255
(:data:`RIGA_STRUCTURES`, the one definition of this mapping).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

__all__ = [
    "RIGA_CSV_HEADER",
    "RIGA_MASK_VALUES",
    "RIGA_NUM_RATERS",
    "RIGA_SOURCES",
    "RIGA_STRUCTURES",
    "RIGA_TEST_SOURCES",
    "RIGA_TRAIN_SOURCES",
    "read_riga_csv",
    "riga_csv_path",
]

RIGA_TRAIN_SOURCES: tuple[str, ...] = ("BinRushed", "MESSIDOR")
"""Sources of the training / validation pool."""

RIGA_TEST_SOURCES: tuple[str, ...] = ("Magrabia",)
"""Sources of the test set."""

RIGA_SOURCES: tuple[str, ...] = RIGA_TRAIN_SOURCES + RIGA_TEST_SOURCES
"""Every source (one CSV each)."""

RIGA_NUM_RATERS = 6
"""Raters per image."""

RIGA_MASK_VALUES: dict[str, int] = {"background": 0, "rim": 150, "cup": 255}
"""Raw mask values of the RIGA release: background 0, disc outside the cup 150, cup 255 (disc = non-zero)."""

RIGA_CSV_HEADER: tuple[str, ...] = (
    "",
    "imgName",
    "maskName",
    "label",
    "center",
    "xmin",
    "ymin",
    "xmax",
    "ymax",
    "width",
    "height",
    "discFlag",
    "rater",
)
"""Header of ``Glaucoma_multirater_<source>.csv`` (a pandas ``to_csv`` with its unnamed index column)."""

RIGA_STRUCTURES: dict[str, Any] = {"disc": "nonzero", "cup": [RIGA_MASK_VALUES["cup"]]}
"""Structure mapping of the RIGA masks: channel 0 disc (every non-zero value, it contains the cup), channel 1 cup."""


def riga_csv_path(root: str | os.PathLike, source: str) -> Path:
    """``root/Glaucoma_multirater_<source>.csv``."""
    return Path(root) / f"Glaucoma_multirater_{source}.csv"


def read_riga_csv(csv_path: str | os.PathLike, num_raters: int = RIGA_NUM_RATERS) -> list[tuple[str, list[str]]]:
    """Read one ``Glaucoma_multirater_<source>.csv`` the way the reference does, with checks.

    Args:
        csv_path: the CSV file.
        num_raters: raters per image (RIGA: 6); blocks have ``1 + num_raters`` rows.

    Returns:
        one ``(image path, [rater mask paths])`` per image, in CSV order; paths as written in the CSV (relative to
        the CSV's directory) with ``\\`` replaced by ``/``.

    Raises:
        FileNotFoundError: if the CSV does not exist.
        ValueError: (naming the CSV and row) if it is empty, its row count is not a multiple of ``1 + num_raters``,
            a row has too few columns, a path is empty, or a ``rater`` column does not run 0..num_raters per block.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"RIGA CSV not found: {csv_path}")
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        rows = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    if len(rows) < 2:
        raise ValueError(f"{csv_path}: no data rows after the header.")
    header, body = rows[0], rows[1:]
    block = 1 + num_raters
    if len(body) % block != 0:
        raise ValueError(
            f"{csv_path}: {len(body)} data rows is not a multiple of {block} (1 image row + {num_raters} rater rows)."
        )
    rater_col = header.index("rater") if "rater" in header else None
    cases: list[tuple[str, list[str]]] = []
    for b in range(len(body) // block):
        rows_b = body[b * block : (b + 1) * block]
        for i, row in enumerate(rows_b):
            line = 2 + b * block + i  # 1-based line number in the file (header is line 1)
            if len(row) < 3:
                raise ValueError(f"{csv_path}: line {line} has {len(row)} columns; need >= 3 (index, image, mask).")
            if rater_col is not None and rater_col < len(row) and row[rater_col].strip() != str(i):
                raise ValueError(
                    f"{csv_path}: line {line} has rater {row[rater_col]!r}, expected {i} "
                    f"(blocks of rater 0..{num_raters})."
                )
        image = rows_b[0][1].strip().replace("\\", "/")
        masks = [row[2].strip().replace("\\", "/") for row in rows_b[1:]]
        if not image or not all(masks):
            raise ValueError(f"{csv_path}: empty image or mask path in the block starting at line {2 + b * block}.")
        cases.append((image, masks))
    return cases
