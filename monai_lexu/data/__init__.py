"""Multi-rater data: datalists, synthetic data sets, RIGA conversion, and the padding collate."""

from __future__ import annotations

from .datalist import (
    PATH_KEYS,
    RESERVED_KEYS,
    load_multirater_datalist,
    load_structures,
    validate_structures,
    write_multirater_datalist,
)
from .riga import (
    RIGA_NUM_RATERS,
    RIGA_SOURCES,
    RIGA_STRUCTURES,
    RIGA_TEST_SOURCES,
    RIGA_TRAIN_SOURCES,
    convert_riga,
    ensure_riga_dataset,
    read_riga_csv,
)
from .synthetic import (
    RIGA_CSV_HEADER,
    RIGA_MASK_VALUES,
    make_jungo_sample,
    make_riga_like_sample,
    write_jungo_dataset,
    write_riga_like,
)


def __getattr__(name: str):
    # the collate imports MONAI (several seconds); keep `data_prep` command lines fast by importing it on first use
    if name == "pad_rater_collate":
        from .collate import pad_rater_collate

        return pad_rater_collate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PATH_KEYS",
    "RESERVED_KEYS",
    "RIGA_CSV_HEADER",
    "RIGA_MASK_VALUES",
    "RIGA_NUM_RATERS",
    "RIGA_SOURCES",
    "RIGA_STRUCTURES",
    "RIGA_TEST_SOURCES",
    "RIGA_TRAIN_SOURCES",
    "convert_riga",
    "ensure_riga_dataset",
    "load_multirater_datalist",
    "load_structures",
    "make_jungo_sample",
    "make_riga_like_sample",
    "pad_rater_collate",
    "read_riga_csv",
    "validate_structures",
    "write_jungo_dataset",
    "write_multirater_datalist",
    "write_riga_like",
]
