"""HECKTOR 2022 PET/CT (multi-rater) converter to a multi-rater datalist, with a synthetic fallback.

Input, "layout A" (the NIfTI layout of HECKTOR 2022; the DICOM importer :mod:`monai_lexu.data.dicom` writes it too)::

    root/imagesTr/<Case>__CT.nii.gz          CT in HU
    root/imagesTr/<Case>__PT.nii.gz          PET (SUV), on its own grid
    root/labelsTr/<rater>/<Case>.nii.gz      multi-rater layout: one folder per rater, 2-4 raters per case
    root/labelsTr/<Case>.nii.gz              standard single-rater layout (each case then has ONE rater)

Masks hold 0 (background), 1 (GTVp) and 2 (GTVn) on the CT's voxel grid. ``.nii`` files are accepted as well.

Output of :func:`convert_hecktor` (``out_dir``)::

    images/<Case>__CT.nii.gz, images/<Case>__PT.nii.gz   resampled + cropped, same grid (CT int16 HU, PET float32)
    labels/<rater>/<Case>.nii.gz                         nearest-resampled on that grid, uint8 values 0/1/2
    datalist.json     "image": [CT, PT] (LoadImaged stacks them: channel 0 CT, 1 PET), "raters", "rater_names",
                      "fold"; structures {"GTVp": [1], "GTVn": [2]}; every case in "training" (no test section:
                      evaluation is K-fold cross-validation as in the LEXU paper)
    summary.csv       per case: raters, per-structure mean volume (ml) over raters, mean pairwise inter-rater Dice
    summary.md        the per-fold table (LEXU Table 1: inter-rater Dice mean (std) per fold), also logged
    errors.json       {case id: error message} of the cases that failed (empty when none)
    conversion.json   which cases succeeded / were converted now / were skipped / failed, and the parameters

Pre-processing: :func:`monai_lexu.transforms.hecktor.hecktor_preprocessing` with ``normalize=False`` (RAS, CT and
masks to ``spacing`` (bilinear / nearest), PET onto the CT grid, MONAI's head-and-neck crop of ``box_mm``); the
intensities are stored raw (HU, SUV) and normalised at training time.

Choices (the lead may quote these):

- **Folds**: patient-level K-fold over the SORTED case ids (HECKTOR has one scan per patient, so a case id is a
  patient): ``numpy.random.default_rng(seed).permutation(n)``, then consecutive blocks, the first ``n % folds``
  folds one case larger (as sklearn's ``KFold``). The reference used ``KFold(3, shuffle=True, random_state=27)`` on
  the unsorted, filesystem-dependent ``os.listdir``, which is not reproducible; we keep ``folds=3`` and ``seed=27``
  but sorting makes the split reproducible (it is not the reference's split). Folds are drawn over ALL cases found
  in the input, failed ones included, so fixing a failed case later does not move the other cases.
- **Inter-rater Dice** (``summary.csv``): mean Dice over all rater pairs, per structure, on the processed masks;
  pairs where both raters left the structure empty are skipped; a case where every pair is empty has no value
  (empty cell; e.g. a patient without lymph nodes). Volumes: mean over raters of ``voxels * voxel volume``.
  Per-fold tables give mean (std, ddof=0) over the cases that have a value.
- **Single-rater layout**: accepted (rater name ``labelsTr``), with a WARNING that the rater variance is zero
  (LEXU's disagreement target is then empty). In the multi-rater layout a case with one rater is an error (LEXU
  needs >= 2). If ``labelsTr`` holds both rater folders and files, the files count as one more rater ``labelsTr``.
- **Grid tolerance**: a rater mask must have the CT's shape and an affine equal to the CT's within ``affine_tol``
  (default 1e-3, in mm for the translation) on every entry.
- **Robustness**: a failed case is reported (logged with its id, listed at the end and in ``errors.json``) and the
  other cases go on; every output file is written under a temporary name and renamed when the whole case is done,
  so a failed case leaves nothing. A second run skips cases whose outputs all exist (unless ``overwrite``); it
  refuses to mix outputs of a different ``spacing`` / ``box_mm``. The input is never modified.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monai_lexu.data.datalist import write_multirater_datalist

__all__ = [
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
]

logger = logging.getLogger("monai_lexu")

HECKTOR_STRUCTURES: dict[str, list[int]] = {"GTVp": [1], "GTVn": [2]}
"""Structure mapping of the HECKTOR masks (channel 0 GTVp = label 1, channel 1 GTVn = label 2)."""

HECKTOR_LABEL_VALUES: tuple[int, ...] = (0, 1, 2)
"""Allowed mask values: background, GTVp, GTVn."""

HECKTOR_SINGLE_RATER = "labelsTr"
"""Rater name given to the masks of the standard single-rater layout ``labelsTr/<Case>.nii.gz``."""

_TMP_PREFIX = ".tmp-"
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


def _world_box(affine: np.ndarray, shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned world (mm) bounding box of a voxel grid, voxel edges included."""
    corners = np.array(np.meshgrid(*[[-0.5, n - 0.5] for n in shape[:3]], indexing="ij")).reshape(3, -1)
    world = affine[:3, :3] @ corners + affine[:3, 3:4]
    return world.min(1), world.max(1)


def check_hecktor_case(case: HecktorCase, affine_tol: float = 1e-3) -> None:
    """Check one case before conversion; every error names the case and the file.

    Checks: CT and PET present; >= 2 raters in the multi-rater layout (>= 1 in the single-rater one); every file
    readable (not truncated) and 3D; each rater mask on the CT grid (same shape, affine within ``affine_tol``) with
    values in {0, 1, 2}; CT and PET overlapping in physical space.

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
    ct_img, _ = _read_nifti(case.ct, cid, "CT")
    pet_img, _ = _read_nifti(case.pet, cid, "PET")
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
        values = np.unique(data)
        bad = [v for v in values.tolist() if v not in HECKTOR_LABEL_VALUES]
        if bad:
            shown = ", ".join(f"{v:g}" for v in bad[:8]) + (", ..." if len(bad) > 8 else "")
            raise ValueError(
                f"case {cid!r}: the mask of rater {rater!r} ({path}) has values [{shown}] outside {{0, 1, 2}} "
                "(0 background, 1 GTVp, 2 GTVn)."
            )
    ct_lo, ct_hi = _world_box(np.asarray(ct_img.affine), ct_shape)
    pet_lo, pet_hi = _world_box(np.asarray(pet_img.affine), pet_img.shape[:3])
    if np.any(np.minimum(ct_hi, pet_hi) <= np.maximum(ct_lo, pet_lo)):
        raise ValueError(
            f"case {cid!r}: CT and PET do not overlap in physical space (CT spans {np.round(ct_lo, 1).tolist()} to "
            f"{np.round(ct_hi, 1).tolist()} mm, PET {np.round(pet_lo, 1).tolist()} to {np.round(pet_hi, 1).tolist()} "
            "mm); check their affines / origins."
        )


def hecktor_folds(case_ids: Sequence[str], folds: int = 3, seed: int = 27) -> dict[str, int]:
    """Patient-level K-fold assignment over the sorted ids (see the module docstring).

    Args:
        case_ids: case (patient) ids; order does not matter, duplicates are not allowed.
        folds: number of folds, ``1 <= folds <= len(case_ids)``.
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        ``id -> fold`` (0-based).

    Raises:
        ValueError: on duplicates or an impossible number of folds.
    """
    ids = sorted(case_ids)
    if len(set(ids)) != len(ids):
        raise ValueError("hecktor_folds: duplicate case ids.")
    if not 1 <= folds <= max(1, len(ids)):
        raise ValueError(f"hecktor_folds: folds must be in [1, {len(ids)}] for {len(ids)} cases, got {folds}.")
    perm = np.random.default_rng(seed).permutation(len(ids))
    sizes = [len(ids) // folds + (1 if k < len(ids) % folds else 0) for k in range(folds)]
    out: dict[str, int] = {}
    start = 0
    for k, size in enumerate(sizes):
        for i in perm[start : start + size]:
            out[ids[int(i)]] = k
        start += size
    return out


def mean_pairwise_dice(masks: np.ndarray) -> float:
    """Mean Dice over all pairs of raters, skipping pairs where both masks are empty.

    Args:
        masks: ``(R, *S)`` binary masks of one structure.

    Returns:
        the mean Dice, or NaN if there are fewer than 2 raters or every pair is empty.
    """
    m = np.asarray(masks).reshape(len(masks), -1) > 0
    sizes = m.sum(1)
    scores = []
    for i in range(len(m)):
        for j in range(i + 1, len(m)):
            total = sizes[i] + sizes[j]
            if total > 0:
                scores.append(2.0 * float(np.logical_and(m[i], m[j]).sum()) / float(total))
    return float(np.mean(scores)) if scores else math.nan


def _out_paths(out_dir: Path, case: HecktorCase) -> dict[str, Path]:
    paths = {
        "ct": out_dir / "images" / f"{case.id}__CT.nii.gz",
        "pet": out_dir / "images" / f"{case.id}__PT.nii.gz",
    }
    for rater in case.raters:
        paths[f"rater:{rater}"] = out_dir / "labels" / rater / f"{case.id}.nii.gz"
    return paths


def _tmp(path: Path) -> Path:
    return path.with_name(_TMP_PREFIX + path.name)


def _process_case(case: HecktorCase, pipeline: Any, paths: dict[str, Path]) -> None:
    """Run the pre-processing on one case and write its files (temporary names, renamed at the end)."""
    import nibabel as nib

    rater_keys = [f"rater_{i}" for i in range(len(case.raters))]
    data: dict[str, Any] = {"ct": str(case.ct), "pet": str(case.pet)}
    data.update({k: str(p) for k, p in zip(rater_keys, case.raters.values())})
    out = pipeline(data)
    affine = np.asarray(out["ct"].affine.detach().cpu().numpy(), dtype=np.float64)
    arrays: dict[str, np.ndarray] = {
        "ct": np.clip(np.rint(out["ct"][0].detach().cpu().numpy()), -32768, 32767).astype(np.int16),
        "pet": out["pet"][0].detach().cpu().numpy().astype(np.float32),
    }
    for key, rater in zip(rater_keys, case.raters):
        arrays[f"rater:{rater}"] = np.rint(out[key][0].detach().cpu().numpy()).astype(np.uint8)
    written: list[Path] = []
    try:
        for name, arr in arrays.items():
            tmp = _tmp(paths[name])
            tmp.parent.mkdir(parents=True, exist_ok=True)
            img = nib.Nifti1Image(arr, affine)
            img.set_qform(affine, code=1)
            img.set_sform(affine, code=1)
            written.append(tmp)
            nib.save(img, str(tmp))
        # labels first, CT last: a case counts as finished only when all its files exist
        for name in sorted(arrays, key=lambda n: (n == "ct", n == "pet")):
            os.replace(_tmp(paths[name]), paths[name])
    except BaseException:
        for tmp in written:
            tmp.unlink(missing_ok=True)
        raise


def _case_stats(paths: Sequence[Path]) -> dict[str, Any]:
    """Per-structure mean volume (ml) over raters and mean pairwise Dice from processed mask files."""
    import nibabel as nib

    volumes: dict[str, float] = {}
    dices: dict[str, float] = {}
    imgs = [nib.load(str(p)) for p in paths]
    voxel_ml = float(abs(np.linalg.det(np.asarray(imgs[0].affine)[:3, :3]))) / 1000.0
    data = np.stack([np.asanyarray(img.dataobj) for img in imgs])
    for name, values in HECKTOR_STRUCTURES.items():
        masks = np.isin(data, values)
        volumes[name] = float(masks.reshape(len(masks), -1).sum(1).mean()) * voxel_ml
        dices[name] = mean_pairwise_dice(masks)
    return {"volume_ml": volumes, "dice": dices}


def _fmt(v: float) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def _write_summaries(out_dir: Path, rows: list[dict[str, Any]], folds: int) -> str:
    names = list(HECKTOR_STRUCTURES)
    with open(out_dir / "summary.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        header = ["id", "fold", "num_raters", "raters"]
        for s in names:
            header += [f"{s}_volume_ml", f"{s}_interrater_dice"]
        writer.writerow(header)
        for row in rows:
            line = [row["id"], row["fold"], len(row["raters"]), ";".join(row["raters"])]
            for s in names:
                line += [_fmt(row["volume_ml"][s]), _fmt(row["dice"][s])]
            writer.writerow(line)
    from monai_lexu.report import markdown_table, mean_std

    groups = [(str(k), [r for r in rows if r["fold"] == k]) for k in range(folds)] + [("all", rows)]
    table = []
    for label, group in groups:
        row: dict[str, object] = {"Fold": label, "Cases": len(group)}
        row["Raters/case"] = f"{np.mean([len(r['raters']) for r in group]):.2f}" if group else "n/a"
        row.update({f"{s} inter-rater Dice": mean_std([r["dice"][s] for r in group]) for s in names})
        row.update({f"{s} volume ml": mean_std([r["volume_ml"][s] for r in group]) for s in names})
        table.append(row)
    lines = [
        "Inter-rater agreement per fold: mean ± std over cases of the mean pairwise Dice between raters "
        "(cases where no rater drew the structure are left out), and mean ± std volume over cases.",
        "",
        markdown_table(table),
    ]
    text = "\n".join(lines)
    (out_dir / "summary.md").write_text(text, encoding="utf-8")
    return text


def _cleanup_tmp(out_dir: Path) -> None:
    for sub in ("images", "labels"):
        base = out_dir / sub
        if base.is_dir():
            for p in base.rglob(_TMP_PREFIX + "*"):
                if p.is_file():
                    p.unlink()


def _read_previous_params(datalist: Path) -> dict[str, Any] | None:
    if not datalist.is_file():
        return None
    try:
        with open(datalist, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError):
        return None
    prep = data.get("preprocessing") if isinstance(data, dict) else None
    return prep if isinstance(prep, dict) else None


def convert_hecktor(
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    box_mm: Sequence[float] = (200.0, 200.0, 310.0),
    folds: int = 3,
    seed: int = 27,
    device: str | None = None,
    overwrite: bool = False,
    affine_tol: float = 1e-3,
) -> Path:
    """Convert a layout-A HECKTOR folder (real, DICOM-imported or synthetic) to processed NIfTI + a datalist.

    See the module docstring for the layouts, the outputs and the choices. Cases that fail are reported and skipped;
    the datalist lists the cases that succeeded (converted now or by an earlier run).

    Args:
        root: folder with ``imagesTr`` and ``labelsTr``.
        out_dir: output folder (created); may equal ``root``.
        spacing: voxel spacing (mm) of the output grid.
        box_mm: head-and-neck crop box (mm).
        folds: number of cross-validation folds.
        seed: fold seed.
        device: device of the pre-processing (``"cuda"``, ``"cpu"``; ``None``: CPU).
        overwrite: re-convert cases whose outputs exist.
        affine_tol: tolerance of the rater-mask / CT affine comparison.

    Returns:
        the path of ``out_dir/datalist.json``.

    Raises:
        FileNotFoundError: if ``root`` has no layout-A images.
        ValueError: if an input file lies inside ``out_dir/images`` or ``out_dir/labels``, if ``out_dir`` holds
            outputs of another ``spacing`` / ``box_mm`` (and not ``overwrite``), on an impossible ``folds``, or if no
            case could be converted (the errors are in ``errors.json``).
    """
    from tqdm import tqdm

    from monai_lexu.transforms.hecktor import hecktor_preprocessing

    root = Path(root).resolve()
    out_dir = Path(out_dir).resolve()
    spacing = [float(s) for s in spacing]
    box_mm = [float(b) for b in box_mm]
    if len(spacing) != 3 or len(box_mm) != 3 or min(spacing) <= 0 or min(box_mm) <= 0:
        raise ValueError(f"convert_hecktor: spacing and box_mm need 3 positive values, got {spacing}, {box_mm}.")
    cases = find_hecktor_cases(root)
    fold_of = hecktor_folds([c.id for c in cases], folds=folds, seed=seed)
    out_images, out_labels = out_dir / "images", out_dir / "labels"
    for case in cases:
        for p in [case.ct, case.pet, *case.raters.values()]:
            if p is None:
                continue
            for out_sub in (out_images, out_labels):
                if any(str(out_sub).lower() == str(q).lower() for q in p.resolve().parents):
                    raise ValueError(
                        f"convert_hecktor: input file {p} lies inside the output folder {out_sub}; choose another "
                        "out_dir so the input is never overwritten."
                    )
    datalist_path = out_dir / "datalist.json"
    params = {
        "spacing": spacing,
        "box_mm": box_mm,
        "folds": folds,
        "seed": seed,
        "intensities": "raw (CT HU as int16, PET float32); normalise at training time",
        "orientation": "RAS",
    }
    previous = _read_previous_params(datalist_path)
    if previous is not None and not overwrite:
        if previous.get("spacing") != spacing or previous.get("box_mm") != box_mm:
            raise ValueError(
                f"convert_hecktor: {out_dir} holds a conversion with spacing {previous.get('spacing')} and box_mm "
                f"{previous.get('box_mm')}, not {spacing} / {box_mm}; pass overwrite=True or use another out_dir."
            )
    if not any(c.multi_rater for c in cases):
        logger.warning(
            "%s uses the single-rater layout labelsTr/<Case>.nii.gz: every case has ONE rater, so the rater variance "
            "(LEXU's disagreement target) is zero everywhere.",
            root,
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    _cleanup_tmp(out_dir)

    pipelines: dict[int, Any] = {}
    succeeded: list[HecktorCase] = []
    converted: list[str] = []
    skipped: list[str] = []
    errors: dict[str, str] = {}
    for case in tqdm(cases, desc="HECKTOR -> NIfTI", unit="case"):
        paths = _out_paths(out_dir, case)
        if not overwrite and case.raters and all(p.is_file() for p in paths.values()):
            skipped.append(case.id)
            succeeded.append(case)
            continue
        try:
            check_hecktor_case(case, affine_tol=affine_tol)
            n = len(case.raters)
            if n not in pipelines:
                pipelines[n] = hecktor_preprocessing(
                    spacing=spacing,
                    box_mm=box_mm,
                    label_keys=[f"rater_{i}" for i in range(n)],
                    device=device,
                    normalize=False,
                    image_key=None,
                )
            try:
                _process_case(case, pipelines[n], paths)
            except Exception as e:
                raise RuntimeError(f"case {case.id!r}: pre-processing failed: {type(e).__name__}: {e}") from e
        except Exception as e:  # one bad case must not stop the others
            msg = str(e) if f"{case.id!r}" in str(e) else f"case {case.id!r}: {type(e).__name__}: {e}"
            errors[case.id] = msg
            logger.error("HECKTOR conversion: %s", msg)
            continue
        converted.append(case.id)
        succeeded.append(case)

    with open(out_dir / "errors.json", "w", encoding="utf-8") as f:
        json.dump(errors, f, indent=2)
        f.write("\n")
    report = {
        "root": str(root),
        "succeeded": [c.id for c in succeeded],
        "converted": converted,
        "skipped": skipped,
        "failed": sorted(errors),
        "parameters": params,
    }
    with open(out_dir / "conversion.json", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    if errors:
        logger.error(
            "HECKTOR conversion: %d of %d cases failed: %s (details in %s).",
            len(errors),
            len(cases),
            ", ".join(sorted(errors)),
            out_dir / "errors.json",
        )
    if not succeeded:
        raise ValueError(
            f"convert_hecktor: no case of {root} could be converted; see {out_dir / 'errors.json'}: "
            + "; ".join(errors[k] for k in sorted(errors))[:2000]
        )

    rows: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for case in succeeded:
        paths = _out_paths(out_dir, case)
        rater_files = [paths[f"rater:{r}"] for r in case.raters]
        stats = _case_stats(rater_files)
        rows.append({"id": case.id, "fold": fold_of[case.id], "raters": list(case.raters), **stats})
        entries.append(
            {
                "id": case.id,
                "image": [str(paths["ct"]), str(paths["pet"])],
                "raters": [str(p) for p in rater_files],
                "rater_names": list(case.raters),
                "fold": fold_of[case.id],
            }
        )
    table = _write_summaries(out_dir, rows, folds)
    logger.info("HECKTOR conversion of %s:\n%s", root, table)
    layout = "multi-rater" if any(c.multi_rater for c in cases) else "single-rater"
    return write_multirater_datalist(
        datalist_path,
        {"training": entries},
        structures=HECKTOR_STRUCTURES,
        name="hecktor",
        description=(
            f"HECKTOR 2022 PET/CT ({layout} layout), converted from {root.name}/ by monai_lexu.data.hecktor."
            f"convert_hecktor: RAS, CT and masks resampled to {spacing} mm (bilinear / nearest), PET onto the CT grid, "
            f"head-and-neck crop {box_mm} mm (MONAI HECKTOR 2022); image = [CT (HU), PET]; {folds}-fold patient-level "
            f"CV over sorted ids (seed {seed})."
        ),
        preprocessing=params,
        num_folds=folds,
    )


def _has_layout_a(directory: Path) -> bool:
    images = directory / "imagesTr"
    return images.is_dir() and any(_strip_nii(p.name) is not None for p in images.iterdir())


def ensure_hecktor_dataset(
    dataset_dir: str | os.PathLike,
    synthetic_kwargs: Mapping[str, Any] | None = None,
    **convert_kwargs: Any,
) -> Path:
    """Return a HECKTOR datalist, converting the data or generating a synthetic stand-in if needed.

    In order: if ``dataset_dir/datalist.json`` exists it is returned as is; else if ``dataset_dir`` (or
    ``dataset_dir/raw``) holds layout A (``imagesTr``) it is converted into ``dataset_dir``; else, if ``dataset_dir``
    is missing or empty (or holds only an empty ``raw`` folder), a synthetic PET/CT set is written to
    ``dataset_dir/raw`` (:func:`~monai_lexu.data.synthetic_petct.write_synthetic_hecktor`), converted into
    ``dataset_dir`` and a WARNING is logged on the ``"monai_lexu"`` logger. For the synthetic set ``spacing`` and
    ``box_mm`` default to :data:`~monai_lexu.data.synthetic_petct.SYNTHETIC_HECKTOR_SPACING` /
    :data:`~monai_lexu.data.synthetic_petct.SYNTHETIC_HECKTOR_BOX_MM` (small volumes) unless given.

    Args:
        dataset_dir: the data set directory.
        synthetic_kwargs: keyword arguments of ``write_synthetic_hecktor`` (e.g. ``{"num_cases": 6}``).
        convert_kwargs: keyword arguments of :func:`convert_hecktor` (``spacing``, ``box_mm``, ``folds``, ...).

    Returns:
        the path of ``dataset_dir/datalist.json``.

    Raises:
        FileNotFoundError: if ``dataset_dir`` holds other files but neither a datalist nor layout A.
    """
    dataset_dir = Path(dataset_dir)
    datalist = dataset_dir / "datalist.json"
    if datalist.is_file():
        return datalist
    if _has_layout_a(dataset_dir):
        return convert_hecktor(dataset_dir, dataset_dir, **convert_kwargs)
    raw = dataset_dir / "raw"
    if _has_layout_a(raw):
        return convert_hecktor(raw, dataset_dir, **convert_kwargs)
    entries = [p.name for p in dataset_dir.iterdir()] if dataset_dir.is_dir() else []
    raw_entries = [p.name for p in raw.iterdir()] if raw.is_dir() else []
    if any(name != "raw" for name in entries) or raw_entries:
        raise FileNotFoundError(
            f"{dataset_dir}: no datalist.json and no imagesTr/<Case>__CT.nii.gz (in it or in its 'raw' folder), but "
            f"the folder is not empty ({sorted(entries + raw_entries)[:5]}...). Point to the HECKTOR folder (layout "
            "imagesTr/ + labelsTr/<rater>/) or to an empty folder."
        )
    from monai_lexu.data.synthetic_petct import (
        SYNTHETIC_HECKTOR_BOX_MM,
        SYNTHETIC_HECKTOR_SPACING,
        write_synthetic_hecktor,
    )

    write_synthetic_hecktor(raw, **dict(synthetic_kwargs or {}))
    kwargs = {"spacing": SYNTHETIC_HECKTOR_SPACING, "box_mm": SYNTHETIC_HECKTOR_BOX_MM, **convert_kwargs}
    out = convert_hecktor(raw, dataset_dir, **kwargs)
    logger.warning(
        "No HECKTOR data found in %s: generated a SYNTHETIC head-and-neck PET/CT set in %s and converted it to %s "
        "(spacing %s mm, box %s mm). Results on it say nothing about real patients; to use real data, point to the "
        "HECKTOR folder (imagesTr/<Case>__CT.nii.gz, __PT.nii.gz, labelsTr/<rater>/<Case>.nii.gz) instead.",
        dataset_dir,
        raw,
        out,
        tuple(kwargs["spacing"]),
        tuple(kwargs["box_mm"]),
    )
    return out
