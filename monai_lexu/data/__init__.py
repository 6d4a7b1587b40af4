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
from .dicom import (
    DEFAULT_ROI_PATTERNS,
    ROI_LABEL_VALUES,
    dicom_to_layout_a,
    match_roi_label,
    read_dicom_case,
    suv_bw_scale_factor,
)
from .hecktor import (
    HECKTOR_LABEL_VALUES,
    HECKTOR_SINGLE_RATER,
    HECKTOR_STRUCTURES,
    HecktorCase,
    check_hecktor_case,
    convert_hecktor,
    ensure_hecktor_dataset,
    find_hecktor_cases,
    hecktor_folds,
    mean_pairwise_dice,
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
from .slices import ensure_axial_slices, extract_axial_slices
from .synthetic import (
    JUNGO_VARIANTS,
    RIGA_CSV_HEADER,
    RIGA_MASK_VALUES,
    ensure_jungo_dataset,
    make_jungo_sample,
    make_riga_like_sample,
    write_jungo_dataset,
    write_riga_like,
)
from .synthetic_petct import (
    SYNTHETIC_HECKTOR_BOX_MM,
    SYNTHETIC_HECKTOR_RATERS,
    SYNTHETIC_HECKTOR_SPACING,
    disagreement_band,
    make_synthetic_petct_case,
    write_synthetic_hecktor,
)


def __getattr__(name: str):
    # the collate imports MONAI (several seconds); keep `data_prep` command lines fast by importing it on first use
    if name == "pad_rater_collate":
        from .collate import pad_rater_collate

        return pad_rater_collate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_ROI_PATTERNS",
    "ROI_LABEL_VALUES",
    "dicom_to_layout_a",
    "match_roi_label",
    "read_dicom_case",
    "suv_bw_scale_factor",
    "HECKTOR_LABEL_VALUES",
    "HECKTOR_SINGLE_RATER",
    "HECKTOR_STRUCTURES",
    "HecktorCase",
    "check_hecktor_case",
    "convert_hecktor",
    "ensure_hecktor_dataset",
    "find_hecktor_cases",
    "hecktor_folds",
    "mean_pairwise_dice",
    "ensure_axial_slices",
    "extract_axial_slices",
    "SYNTHETIC_HECKTOR_BOX_MM",
    "SYNTHETIC_HECKTOR_RATERS",
    "SYNTHETIC_HECKTOR_SPACING",
    "disagreement_band",
    "make_synthetic_petct_case",
    "write_synthetic_hecktor",
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
    "JUNGO_VARIANTS",
    "ensure_jungo_dataset",
    "make_jungo_sample",
    "make_riga_like_sample",
    "pad_rater_collate",
    "read_riga_csv",
    "validate_structures",
    "write_jungo_dataset",
    "write_multirater_datalist",
    "write_riga_like",
]
