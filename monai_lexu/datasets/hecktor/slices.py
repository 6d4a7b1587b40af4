"""2D axial slices of the converted HECKTOR volumes: the 2D protocol of the LEXU paper.

The paper trains its 2D multi-head U-Net on the axial slices of the PET/CT volumes "where at least one rater's mask is
non-zero" (the reference code reads pre-extracted 2D NIfTI slices and a list of non-empty slices; the 3D -> 2D code
itself is not public). :func:`extract_axial_slices` does that extraction from a volume datalist (as written by
:func:`~monai_lexu.datasets.hecktor.convert.convert_hecktor`) and writes a slice datalist in the same format, so the 2D
transforms, networks and metrics of the package run on it unchanged:

* one case per kept slice, id ``<case>_z<k>``, keeping the volume's ``fold`` (so cross-validation stays at the
  patient level) and adding ``"case"`` (the volume id) and ``"slice"`` (the index along the axis);
* every image channel file and every rater mask is cut at the same index and written as a 2D NIfTI file (affine:
  the in-plane part of the volume's affine), masks as uint8 with their original values.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_lexu.data.datalist import load_multirater_datalist, load_structures, write_multirater_datalist

__all__ = ["extract_axial_slices", "ensure_axial_slices"]

logger = logging.getLogger("monai_lexu")


def _slice_image(img: Any, index: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut one slice of a nibabel image; returns the 2D array and a 4x4 affine of the slice plane."""
    data = np.asarray(img.dataobj)
    if data.ndim != 3:
        raise ValueError(f"{img.get_filename()}: expected a 3D volume, got shape {data.shape}")
    plane = np.take(data, index, axis=axis)
    keep = [d for d in range(3) if d != axis]
    affine = np.eye(4)
    affine[:3, :2] = img.affine[:3, keep]
    affine[:3, 3] = img.affine[:3, 3] + img.affine[:3, axis] * index
    return plane, affine


def extract_axial_slices(
    datalist: str | os.PathLike,
    out_dir: str | os.PathLike,
    sections: Sequence[str] = ("training",),
    axis: int = 2,
    nonempty_only: bool = True,
) -> Path:
    """Write the 2D slices of every volume in ``datalist`` and a slice datalist (``<out_dir>/datalist.json``).

    Args:
        datalist: volume datalist (images and rater masks on one grid per case, e.g. RAS after preprocessing).
        out_dir: output folder (``images/``, ``labels/<rater index>/``, ``datalist.json``).
        sections: datalist sections to slice.
        axis: spatial axis to cut along (2 = z, axial for RAS volumes).
        nonempty_only: keep only slices where at least one rater's mask is non-zero (the paper's protocol);
            ``False`` keeps every slice.

    Returns:
        Path of the slice datalist.

    Raises:
        ValueError: a case whose image channels and rater masks do not share one grid (shape), naming the case.
    """
    import nibabel as nib
    from tqdm import tqdm

    out_dir = Path(out_dir).resolve()  # absolute: the datalist stores paths relative to itself
    structures = load_structures(datalist)
    out_sections: dict[str, list[dict[str, Any]]] = {}
    counts = {"volumes": 0, "slices": 0, "slices_total": 0}
    for section in sections:
        cases = load_multirater_datalist(datalist, section)
        out_cases: list[dict[str, Any]] = []
        for case in tqdm(cases, desc=f"slicing {section}", unit="case", disable=None):
            images = case["image"] if isinstance(case["image"], list) else [case["image"]]
            imgs = [nib.load(p) for p in images]
            masks = [nib.load(p) for p in case["raters"]]
            shapes = {tuple(i.shape[:3]) for i in imgs + masks}
            if len(shapes) != 1:
                raise ValueError(f"case {case['id']!r}: image channels and rater masks differ in shape: {shapes}")
            mask_data = [np.asarray(m.dataobj) for m in masks]
            depth = imgs[0].shape[axis]
            any_rater = np.any([np.any(np.moveaxis(m, axis, 0).reshape(depth, -1) != 0, axis=1) for m in mask_data], 0)
            indices = np.flatnonzero(any_rater) if nonempty_only else np.arange(depth)
            counts["volumes"] += 1
            counts["slices_total"] += depth
            for k in indices.tolist():
                sid = f"{case['id']}_z{k:03d}"
                new_images = []
                for c, img in enumerate(imgs):
                    plane, affine = _slice_image(img, k, axis)
                    path = out_dir / "images" / f"{sid}_c{c}.nii.gz"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    nib.save(nib.Nifti1Image(plane.astype(np.float32), affine), path)
                    new_images.append(str(path))
                new_raters = []
                for r, m in enumerate(masks):
                    plane, affine = _slice_image(m, k, axis)
                    path = out_dir / "labels" / f"r{r + 1}" / f"{sid}.nii.gz"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    nib.save(nib.Nifti1Image(plane.astype(np.uint8), affine), path)
                    new_raters.append(str(path))
                entry = {k2: v for k2, v in case.items() if k2 not in ("id", "image", "raters", "ground_truth")}
                entry.update({"id": sid, "case": case["id"], "slice": k, "image": new_images, "raters": new_raters})
                out_cases.append(entry)
            counts["slices"] += len(indices)
        out_sections[section] = out_cases
    path = write_multirater_datalist(
        out_dir / "datalist.json",
        out_sections,
        structures,
        name=f"{Path(datalist).parent.name} axial slices",
        description=f"axis {axis} slices of {datalist}" + (" where any rater is non-empty" if nonempty_only else ""),
    )
    (out_dir / "slices_summary.json").write_text(json.dumps(counts, indent=2))
    logger.info(
        "wrote %d slices of %d volumes (%d slices in all) to %s",
        counts["slices"],
        counts["volumes"],
        counts["slices_total"],
        path,
    )
    return path


def ensure_axial_slices(datalist: str | os.PathLike, out_dir: str | os.PathLike, **kwargs: Any) -> Path:
    """Return ``<out_dir>/datalist.json``, extracting the slices with :func:`extract_axial_slices` if it is missing.

    The slice datalist is rebuilt when the volume datalist is newer than it.
    """
    path = Path(out_dir) / "datalist.json"
    if path.is_file() and path.stat().st_mtime >= Path(datalist).stat().st_mtime:
        return path
    return extract_axial_slices(datalist, out_dir, **kwargs)
