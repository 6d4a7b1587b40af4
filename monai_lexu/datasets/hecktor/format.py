"""The HECKTOR 2022 format: its structures, its NIfTI layout ("layout A") and the per-case checks.

Layout A (the NIfTI layout of HECKTOR 2022; :mod:`~monai_lexu.datasets.hecktor.dicom` writes it too, and
:mod:`~monai_lexu.datasets.hecktor.synthetic` writes a synthetic stand-in in it)::

    root/imagesTr/<Case>__CT.nii.gz          CT in HU
    root/imagesTr/<Case>__PT.nii.gz          PET (SUV), on its own grid
    root/labelsTr/<rater>/<Case>.nii.gz      multi-rater layout: one folder per rater, 2-4 raters per case
    root/labelsTr/<Case>.nii.gz              standard single-rater layout (each case then has ONE rater)

Masks hold 0 (background), 1 (GTVp) and 2 (GTVn) on the CT's voxel grid (:data:`HECKTOR_STRUCTURES`, the one
definition of this mapping). ``.nii`` files are accepted as well.

- **Single-rater layout**: accepted (rater name ``labelsTr``); in the multi-rater layout a case with one rater is an
  error (LEXU needs >= 2). If ``labelsTr`` holds both rater folders and files, the files count as one more rater
  ``labelsTr``.
- **Grid tolerance**: a rater mask must have the CT's shape and an affine equal to the CT's within ``affine_tol``
  (default 1e-3, in mm for the translation) on every entry.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "HECKTOR_LABELS",
    "HECKTOR_LABEL_VALUES",
    "HECKTOR_SINGLE_RATER",
    "HECKTOR_STRUCTURES",
    "HecktorCase",
    "check_hecktor_case",
    "find_hecktor_cases",
    "has_layout_a",
]

HECKTOR_STRUCTURES: dict[str, list[int]] = {"GTVp": [1], "GTVn": [2]}
"""Structure mapping of the HECKTOR masks (channel 0 GTVp = label 1, channel 1 GTVn = label 2): the one definition
(the datalist, the DICOM importer, the synthetic set and the bundle configs all read it)."""

HECKTOR_LABELS: dict[str, int] = {name: values[0] for name, values in HECKTOR_STRUCTURES.items()}
"""Label value of each structure in a layout-A mask (``{"GTVp": 1, "GTVn": 2}``)."""

HECKTOR_LABEL_VALUES: tuple[int, ...] = (0, *HECKTOR_LABELS.values())
"""Allowed mask values: background, GTVp, GTVn."""

HECKTOR_SINGLE_RATER = "labelsTr"
"""Rater name given to the masks of the standard single-rater layout ``labelsTr/<Case>.nii.gz``."""

_NII_EXTS = (".nii.gz", ".nii")


@dataclass
class HecktorCase:
    """One case of a layout-A folder.

    Attributes:
        id: case id (``<Case>`` of ``<Case>__CT.nii.gz``).
        ct: CT file, ``None`` if missing.
        pet: PET file, ``None`` if missing.
        raters: ``rater name -> mask file``, sorted by name.
        multi_rater: whether the folder uses the multi-rater layout (rater sub-folders of ``labelsTr``).
    """

    id: str
    ct: Path | None = None
    pet: Path | None = None
    raters: dict[str, Path] = field(default_factory=dict)
    multi_rater: bool = True


def _strip_nii(name: str) -> str | None:
    for ext in _NII_EXTS:
        if name.endswith(ext):
            return name[: -len(ext)]
    return None


def find_hecktor_cases(root: str | os.PathLike) -> list[HecktorCase]:
    """List the cases of a layout-A folder (see the module docstring), sorted by id.

    A case is any ``<Case>`` with ``imagesTr/<Case>__CT`` or ``imagesTr/<Case>__PT``; files are only listed here,
    not read (see :func:`check_hecktor_case`). Masks of ids without images are ignored.

    Args:
        root: the folder holding ``imagesTr`` and ``labelsTr``.

    Returns:
        the cases.

    Raises:
        FileNotFoundError: if ``root/imagesTr`` does not exist or holds no ``*__CT`` / ``*__PT`` NIfTI file.
    """
    root = Path(root)
    images = root / "imagesTr"
    if not images.is_dir():
        raise FileNotFoundError(
            f"{root}: no 'imagesTr' folder; expected the HECKTOR layout imagesTr/<Case>__CT.nii.gz, "
            "imagesTr/<Case>__PT.nii.gz, labelsTr/<rater>/<Case>.nii.gz."
        )
    cases: dict[str, HecktorCase] = {}
    for p in sorted(images.iterdir()):
        stem = _strip_nii(p.name)
        if stem is None or not p.is_file() or p.name.startswith("."):
            continue
        for suffix, attr in (("__CT", "ct"), ("__PT", "pet")):
            if stem.endswith(suffix) and len(stem) > len(suffix):
                case = cases.setdefault(stem[: -len(suffix)], HecktorCase(stem[: -len(suffix)]))
                setattr(case, attr, p)
    if not cases:
        raise FileNotFoundError(f"{images}: no <Case>__CT.nii.gz or <Case>__PT.nii.gz file found.")
    labels = root / "labelsTr"
    rater_dirs = []
    direct: dict[str, Path] = {}
    if labels.is_dir():
        rater_dirs = sorted(p for p in labels.iterdir() if p.is_dir() and not p.name.startswith("."))
        for p in labels.iterdir():
            stem = _strip_nii(p.name)
            if stem is not None and p.is_file() and not p.name.startswith("."):
                direct[stem] = p
    multi = len(rater_dirs) > 0
    per_rater: dict[str, dict[str, Path]] = {}
    for d in rater_dirs:
        per_rater[d.name] = {}
        for p in d.iterdir():
            stem = _strip_nii(p.name)
            if stem is not None and p.is_file() and not p.name.startswith("."):
                per_rater[d.name][stem] = p
    if direct:
        if HECKTOR_SINGLE_RATER in per_rater:
            raise ValueError(
                f"{labels}: holds both label files and a rater folder named {HECKTOR_SINGLE_RATER!r}; "
                "rename the folder."
            )
        per_rater[HECKTOR_SINGLE_RATER] = direct
    for cid, case in cases.items():
        case.multi_rater = multi
        case.raters = {r: files[cid] for r, files in sorted(per_rater.items()) if cid in files}
    return [cases[cid] for cid in sorted(cases)]


def _read_nifti(path: Path, case_id: str, what: str) -> Any:
    """Load a NIfTI file and its data (catches truncated / corrupt files); returns ``(image, data array)``."""
    import nibabel as nib

    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as e:  # nibabel / gzip / zlib / EOF errors all mean "unreadable"
        raise ValueError(
            f"case {case_id!r}: cannot read the {what} {path}: truncated or not a valid NIfTI file "
            f"({type(e).__name__}: {e})."
        ) from e
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"case {case_id!r}: the {what} {path} must be a 3D volume, got shape {data.shape}.")
    return img, data


def _check_finite(data: np.ndarray, path: Path, case_id: str, what: str) -> None:
    """Refuse NaN / Inf voxels: resampling spreads one NaN to its neighbours and the PET normalisation then turns the
    whole channel NaN (a NaN loss from the first batch); casting NaN CT to int16 would silently give 0 HU."""
    if not np.issubdtype(data.dtype, np.floating):
        return
    finite = np.isfinite(data)
    if not finite.all():
        nan, inf = int(np.isnan(data).sum()), int(np.isinf(data).sum())
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(
            f"case {case_id!r}: the {what} {path} holds {nan} NaN and {inf} Inf voxel(s) (first at voxel {first}); "
            "non-finite images are refused: fix the file or leave the case out."
        )


def _world_box(affine: np.ndarray, shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned world (mm) bounding box of a voxel grid, voxel edges included."""
    corners = np.array(np.meshgrid(*[[-0.5, n - 0.5] for n in shape[:3]], indexing="ij")).reshape(3, -1)
    world = affine[:3, :3] @ corners + affine[:3, 3:4]
    return world.min(1), world.max(1)


def check_hecktor_case(case: HecktorCase, affine_tol: float = 1e-3) -> None:
    """Check one case before conversion; every error names the case and the file.

    Checks: CT and PET present; >= 2 raters in the multi-rater layout (>= 1 in the single-rater one); every file
    readable (not truncated) and 3D; CT and PET finite (no NaN / Inf voxel); each rater mask on the CT grid (same
    shape, affine within ``affine_tol``) with values in :data:`HECKTOR_LABEL_VALUES`; CT and PET overlapping in
    physical space.

    Args:
        case: the case (from :func:`find_hecktor_cases`).
        affine_tol: absolute tolerance on every affine entry (mm for the translation).

    Raises:
        FileNotFoundError: CT or PET missing.
        ValueError: any other problem.
    """
    cid = case.id
    if case.ct is None:
        raise FileNotFoundError(f"case {cid!r}: CT file missing (expected imagesTr/{cid}__CT.nii.gz).")
    if case.pet is None:
        raise FileNotFoundError(
            f"case {cid!r}: PET file missing (expected imagesTr/{cid}__PT.nii.gz next to {case.ct.name}); "
            "HECKTOR needs both CT and PET."
        )
    n = len(case.raters)
    if n == 0:
        raise ValueError(
            f"case {cid!r}: no rater mask (expected labelsTr/<rater>/{cid}.nii.gz or labelsTr/{cid}.nii.gz)."
        )
    if case.multi_rater and n < 2:
        (name, path), *_ = case.raters.items()
        raise ValueError(
            f"case {cid!r}: only one rater mask ({name}: {path}) in the multi-rater layout; LEXU learns from the "
            "disagreement of several raters and needs >= 2 raters per case."
        )
    ct_img, ct_data = _read_nifti(case.ct, cid, "CT")
    _check_finite(ct_data, case.ct, cid, "CT")
    del ct_data
    pet_img, pet_data = _read_nifti(case.pet, cid, "PET")
    _check_finite(pet_data, case.pet, cid, "PET")
    del pet_data
    ct_shape = tuple(int(s) for s in ct_img.shape[:3])
    for rater, path in case.raters.items():
        img, data = _read_nifti(path, cid, f"mask of rater {rater!r}")
        if tuple(data.shape) != ct_shape:
            raise ValueError(
                f"case {cid!r}: the mask of rater {rater!r} ({path}) has shape {tuple(data.shape)}, the CT "
                f"{ct_shape}; rater masks must be on the CT grid."
            )
        diff = float(np.abs(np.asarray(img.affine) - np.asarray(ct_img.affine)).max())
        if not diff <= affine_tol:
            raise ValueError(
                f"case {cid!r}: the affine of rater {rater!r}'s mask ({path}) differs from the CT's by up to "
                f"{diff:.4g} (tolerance {affine_tol:g}); rater masks must be on the CT grid."
            )
        values = np.unique(data.ravel(order="K"))  # no C-order copy of the (Fortran-ordered) NIfTI array
        bad = [v for v in values.tolist() if v not in HECKTOR_LABEL_VALUES]
        if bad:
            shown = ", ".join(f"{v:g}" for v in bad[:8]) + (", ..." if len(bad) > 8 else "")
            raise ValueError(
                f"case {cid!r}: the mask of rater {rater!r} ({path}) has values [{shown}] outside "
                f"{{{', '.join(str(v) for v in HECKTOR_LABEL_VALUES)}}} (0 background, "
                + ", ".join(f"{v} {k}" for k, v in HECKTOR_LABELS.items())
                + ")."
            )
    ct_lo, ct_hi = _world_box(np.asarray(ct_img.affine), ct_shape)
    pet_lo, pet_hi = _world_box(np.asarray(pet_img.affine), pet_img.shape[:3])
    if np.any(np.minimum(ct_hi, pet_hi) <= np.maximum(ct_lo, pet_lo)):
        raise ValueError(
            f"case {cid!r}: CT and PET do not overlap in physical space (CT spans {np.round(ct_lo, 1).tolist()} to "
            f"{np.round(ct_hi, 1).tolist()} mm, PET {np.round(pet_lo, 1).tolist()} to {np.round(pet_hi, 1).tolist()} "
            "mm); check their affines / origins."
        )


def has_layout_a(directory: str | os.PathLike) -> bool:
    """Whether ``directory/imagesTr`` exists and holds a NIfTI file."""
    images = Path(directory) / "imagesTr"
    return images.is_dir() and any(_strip_nii(p.name) is not None for p in images.iterdir())
