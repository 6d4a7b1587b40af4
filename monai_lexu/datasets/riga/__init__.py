"""RIGA retinal fundus optic disc / cup with 6 raters: everything specific to this data set.

Modules:

- :mod:`~monai_lexu.datasets.riga.format`: sources, mask values, structures (:data:`RIGA_STRUCTURES`, the one
  definition) and the CSV reader.
- :mod:`~monai_lexu.datasets.riga.convert`: the release -> PNGs + datalist (:func:`convert_riga`,
  :func:`ensure_riga_dataset` with its synthetic fallback).
- :mod:`~monai_lexu.datasets.riga.synthetic`: the RIGA-like synthetic stand-in in the release's layout.
- :mod:`~monai_lexu.datasets.riga.cli`: the command line (``python -m monai_lexu.datasets.riga``, also
  ``python -m data_prep.riga`` and ``python -m data_prep.synthetic riga-like``).

Every name below is importable from this package; the modules are imported on first use.
"""

from __future__ import annotations

from monai_lexu.datasets._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "RIGA_CSV_HEADER": "format",
    "RIGA_MASK_VALUES": "format",
    "RIGA_NUM_RATERS": "format",
    "RIGA_SOURCES": "format",
    "RIGA_STRUCTURES": "format",
    "RIGA_TEST_SOURCES": "format",
    "RIGA_TRAIN_SOURCES": "format",
    "read_riga_csv": "format",
    "riga_csv_path": "format",
    "convert_riga": "convert",
    "ensure_riga_dataset": "convert",
    "make_riga_like_sample": "synthetic",
    "write_riga_like": "synthetic",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
