"""Generic multi-rater data: the datalist format and the padding collate.

Data-set code (converters, synthetic generators, format constants) lives in :mod:`monai_lexu.datasets`; the
structure-mapping validator in :mod:`monai_lexu.contract`.
"""

from __future__ import annotations

from typing import Any

from .checks import as_flag, check_fold, check_may_generate, synthetic_wanted
from .datalist import (
    PATH_KEYS,
    RESERVED_KEYS,
    load_multirater_datalist,
    load_structures,
    write_multirater_datalist,
)
from .runtime import (
    NUM_THREADS_ENV,
    SYNTHETIC_MARKER,
    available_cores,
    configure_backends,
    default_num_threads,
    loader_workers,
    set_num_threads,
    speed_options,
    synthetic_marker,
)


def __getattr__(name: str) -> Any:
    # the collate imports MONAI (several seconds); keep datalist readers and command lines fast by importing it on
    # first use
    if name == "pad_rater_collate":
        from .collate import pad_rater_collate

        return pad_rater_collate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "NUM_THREADS_ENV",
    "SYNTHETIC_MARKER",
    "as_flag",
    "available_cores",
    "configure_backends",
    "default_num_threads",
    "set_num_threads",
    "speed_options",
    "check_fold",
    "check_may_generate",
    "synthetic_marker",
    "synthetic_wanted",
    "PATH_KEYS",
    "RESERVED_KEYS",
    "load_multirater_datalist",
    "load_structures",
    "loader_workers",
    "pad_rater_collate",
    "write_multirater_datalist",
]
