"""HECKTOR 2022 head-and-neck PET/CT with 2-4 raters (GTVp, GTVn): everything specific to this data set.

Modules:

- :mod:`~monai_lexu.datasets.hecktor.format`: structures (:data:`HECKTOR_STRUCTURES`, the one definition), the
  NIfTI layout ("layout A") and the per-case checks.
- :mod:`~monai_lexu.datasets.hecktor.recipe`: the ONE preprocessing recipe (:class:`HecktorRecipe`,
  :data:`DEFAULT_RECIPE`, :data:`SYNTHETIC_RECIPE`), recorded with converted data and read by training and inference
  (:func:`load_recipe`).
- :mod:`~monai_lexu.datasets.hecktor.convert`: layout A -> processed NIfTI + datalist (:func:`convert_hecktor`,
  :func:`ensure_hecktor_dataset` with its synthetic fallback).
- :mod:`~monai_lexu.datasets.hecktor.dicom`: DICOM (CT, PET, RTSTRUCT / SEG per rater) -> layout A.
- :mod:`~monai_lexu.datasets.hecktor.synthetic`: the synthetic PET/CT stand-in in layout A.
- :mod:`~monai_lexu.datasets.hecktor.transforms`: neck crop, CT / PET normalisation, the preprocessing chain.
- :mod:`~monai_lexu.datasets.hecktor.slices`: axial slices of the converted volumes (the paper's 2D protocol).
- :mod:`~monai_lexu.datasets.hecktor.cli`: the command line (``python -m monai_lexu.datasets.hecktor``, also
  ``python -m data_prep.hecktor``).

Every name below is importable from this package; the modules are imported on first use, so ``import
monai_lexu.datasets.hecktor`` and reading :data:`HECKTOR_STRUCTURES` or a recipe stay cheap (no torch / MONAI).
"""

from __future__ import annotations

from monai_lexu.datasets._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    # format
    "HECKTOR_LABELS": "format",
    "HECKTOR_LABEL_VALUES": "format",
    "HECKTOR_SINGLE_RATER": "format",
    "HECKTOR_STRUCTURES": "format",
    "HecktorCase": "format",
    "check_hecktor_case": "format",
    "find_hecktor_cases": "format",
    "has_layout_a": "format",
    # recipe
    "DEFAULT_RECIPE": "recipe",
    "RECIPE_FILE": "recipe",
    "SYNTHETIC_RECIPE": "recipe",
    "HecktorRecipe": "recipe",
    "RecipeMismatchError": "recipe",
    "default_recipe": "recipe",
    "load_model_recipe": "recipe",
    "load_recipe": "recipe",
    "write_recipe": "recipe",
    # convert
    "convert_hecktor": "convert",
    "ensure_hecktor_dataset": "convert",
    "hecktor_folds": "convert",
    "mean_pairwise_dice": "convert",
    # dicom
    "DEFAULT_ROI_PATTERNS": "dicom",
    "dicom_to_layout_a": "dicom",
    "match_roi_label": "dicom",
    "read_dicom_case": "dicom",
    "suv_bw_scale_factor": "dicom",
    # synthetic
    "SYNTHETIC_HECKTOR_RATERS": "synthetic",
    "disagreement_band": "synthetic",
    "make_synthetic_petct_case": "synthetic",
    "structure_distance": "synthetic",
    "write_synthetic_hecktor": "synthetic",
    # transforms
    "CTWindowNormalize": "transforms",
    "CTWindowNormalized": "transforms",
    "HecktorNeckCrop": "transforms",
    "HecktorNeckCropd": "transforms",
    "HecktorNormalize": "transforms",
    "HecktorNormalized": "transforms",
    "PETNormalize": "transforms",
    "PETNormalized": "transforms",
    "hecktor_box_preprocess": "transforms",
    "hecktor_neck_box": "transforms",
    "hecktor_preprocessing": "transforms",
    "resample_region": "transforms",
    # slices
    "ensure_axial_slices": "slices",
    "extract_axial_slices": "slices",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
