"""HECKTOR 2022 PET/CT (multi-rater) converter to a multi-rater datalist, with a synthetic fallback.

Input: a layout-A folder (:mod:`~monai_lexu.datasets.hecktor.format`; the DICOM importer
:mod:`~monai_lexu.datasets.hecktor.dicom` and the synthetic generator :mod:`~monai_lexu.datasets.hecktor.synthetic`
write it too).

Output of :func:`convert_hecktor` (``out_dir``)::

    images/<Case>__CT.nii.gz, images/<Case>__PT.nii.gz   resampled + cropped, same grid (CT int16 HU, PET float32)
    labels/<rater>/<Case>.nii.gz                         nearest-resampled on that grid, uint8 label values
    datalist.json     "image": [CT, PT] (LoadImaged stacks them: channel 0 CT, 1 PET), "raters", "rater_names",
                      "fold"; structures HECKTOR_STRUCTURES; every case in "training" (no test section:
                      evaluation is K-fold cross-validation as in the LEXU paper)
    preprocessing.json   the HecktorRecipe the data were converted with (read by training and inference)
    summary.csv       per case: raters, per-structure mean volume (ml) over raters, mean pairwise inter-rater Dice
    summary.md        the per-fold table (LEXU Table 1: inter-rater Dice mean (std) per fold), also logged
    errors.json       {case id: error message} of the cases that failed (empty when none)
    conversion.json   which cases succeeded / were converted now / were skipped / were redone / failed, the fold
                      parameters, and per case the output shape and each output file's size and sha256 ("outputs")

Pre-processing: the spatial part of :func:`~monai_lexu.datasets.hecktor.transforms.hecktor_preprocessing` with the
recipe's ``spacing`` and ``box_mm`` (RAS, CT and masks resampled (bilinear / nearest), PET onto the CT grid, MONAI's
head-and-neck crop), computed by :func:`~monai_lexu.datasets.hecktor.transforms.hecktor_box_preprocess`, which
resamples only the crop box (same output up to floating-point rounding; ``resample="whole"`` runs the chain); the
intensities are stored raw (HU, SUV) and normalised at training and inference time with the
recipe's ``ct_window`` / ``pet_mode`` (:mod:`~monai_lexu.datasets.hecktor.recipe`).

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
- **Single-rater layout**: accepted, with a WARNING that the rater variance is zero (LEXU's disagreement target is
  then empty); see :mod:`~monai_lexu.datasets.hecktor.format` for the layout rules and the grid tolerance.
- **Robustness**: the output folder is checked writable before any work. A failed case is reported (logged with
  its id, listed at the end and in ``errors.json``) and the other cases go on; a CT or PET with a NaN / Inf voxel is
  such a failure (case and file named), never converted. Every output file is written under a temporary name and
  renamed when the whole case is done, so a failed case leaves nothing. The reports are written atomically and the
  datalist LAST (atomically): a run that dies midway leaves the previous datalist untouched.
- **Re-runs**: a case whose outputs all exist is skipped (unless ``overwrite``) only if they are valid: each file's
  size and sha256 equal the ones recorded in ``conversion.json``, or, for files without a record (e.g. a run
  killed before writing it), the files read completely as 3D volumes of one shape. Anything else (a 0-byte PET, a
  truncated mask, a file changed since) is logged with the file and the case is converted again ("redone"). A
  re-run refuses to mix outputs of another recipe (:class:`~monai_lexu.datasets.hecktor.recipe.RecipeMismatchError`
  naming ``preprocessing.json``). The input is never modified.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_lexu.data.checks import check_may_generate
from monai_lexu.data.datalist import write_multirater_datalist
from monai_lexu.datasets._io import atomic_write_text, check_writable_dir, file_sha256
from monai_lexu.datasets.hecktor.format import (
    HECKTOR_STRUCTURES,
    HecktorCase,
    check_hecktor_case,
    find_hecktor_cases,
    has_layout_a,
)
from monai_lexu.datasets.hecktor.recipe import HecktorRecipe, default_recipe, load_recipe, recipe_path, write_recipe

__all__ = ["convert_hecktor", "ensure_hecktor_dataset", "hecktor_folds", "mean_pairwise_dice"]

logger = logging.getLogger("monai_lexu")

_TMP_PREFIX = ".tmp-"


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
    """Run the pre-processing on one case and write its files (temporary names, renamed at the end).

    ``pipeline`` maps ``{"ct", "pet", "rater_<i>": file}`` to the processed volumes (``hecktor_preprocessing``'s
    ``Compose`` or a ``functools.partial`` of ``hecktor_box_preprocess``).
    """
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


def _read_output(path: Path) -> tuple[Any, np.ndarray]:
    """Read a written output completely; a ValueError names the file if it is truncated or not a NIfTI volume."""
    import nibabel as nib

    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as e:
        raise ValueError(f"cannot read {path}: truncated or not a valid NIfTI file ({type(e).__name__}: {e})") from e
    return img, data


def _record_outputs(out_dir: Path, paths: Mapping[str, Path], shape: Sequence[int]) -> dict[str, Any]:
    """The ``conversion.json`` record of one case: output shape, and size + sha256 of each file (relative path)."""
    files = {
        p.relative_to(out_dir).as_posix(): {"size": p.stat().st_size, "sha256": file_sha256(p)} for p in paths.values()
    }
    return {"shape": [int(v) for v in shape], "files": files}


def _validate_outputs(
    out_dir: Path, paths: Mapping[str, Path], record: Mapping[str, Any] | None
) -> tuple[str | None, dict[str, Any] | None]:
    """Check the existing outputs of a case before skipping it.

    Returns:
        ``(None, record)`` when valid (the record to keep), else ``(reason naming the file, None)``.
    """
    rel = {name: p.relative_to(out_dir).as_posix() for name, p in paths.items()}
    files = record.get("files") if isinstance(record, Mapping) else None
    if isinstance(files, Mapping) and set(files) == set(rel.values()):
        for p in paths.values():
            entry = files[p.relative_to(out_dir).as_posix()]
            size = p.stat().st_size
            if not isinstance(entry, Mapping) or entry.get("size") != size:
                return (
                    f"{p} has {size} bytes, {entry.get('size') if isinstance(entry, Mapping) else '?'} recorded",
                    None,
                )
            if entry.get("sha256") != file_sha256(p):
                return f"{p} differs from the recorded sha256 (changed or damaged since it was written)", None
        return None, dict(record)
    shape = None
    for p in paths.values():  # no record (older conversion, or a run killed before conversion.json): read them
        try:
            _, data = _read_output(p)
        except ValueError as e:
            return str(e), None
        if data.ndim != 3 or data.size == 0:
            return f"{p} is not a 3D volume (shape {data.shape})", None
        if shape is not None and tuple(data.shape) != shape:
            return f"{p} has shape {tuple(data.shape)}, the case's CT {shape}", None
        shape = shape or tuple(data.shape)
    return None, _record_outputs(out_dir, paths, shape)


def _previous_records(out_dir: Path) -> dict[str, Any]:
    """Per-case output records of the previous run's ``conversion.json`` (empty if missing or unreadable)."""
    path = out_dir / "conversion.json"
    try:
        outputs = json.loads(path.read_text(encoding="utf-8")).get("outputs", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return outputs if isinstance(outputs, dict) else {}


def _case_stats(paths: Sequence[Path]) -> dict[str, Any]:
    """Per-structure mean volume (ml) over raters and mean pairwise Dice from processed mask files."""
    volumes: dict[str, float] = {}
    dices: dict[str, float] = {}
    read = [_read_output(p) for p in paths]
    imgs = [img for img, _ in read]
    voxel_ml = float(abs(np.linalg.det(np.asarray(imgs[0].affine)[:3, :3]))) / 1000.0
    data = np.stack([d for _, d in read])
    for name, values in HECKTOR_STRUCTURES.items():
        masks = np.isin(data, values)
        volumes[name] = float(masks.reshape(len(masks), -1).sum(1).mean()) * voxel_ml
        dices[name] = mean_pairwise_dice(masks)
    return {"volume_ml": volumes, "dice": dices}


def _fmt(v: float) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def _write_summaries(out_dir: Path, rows: list[dict[str, Any]], folds: int) -> str:
    import io

    names = list(HECKTOR_STRUCTURES)
    with io.StringIO(newline="") as f:
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
        atomic_write_text(out_dir / "summary.csv", f.getvalue())
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
    atomic_write_text(out_dir / "summary.md", text)
    return text


def _cleanup_tmp(out_dir: Path) -> None:
    for sub in ("images", "labels"):
        base = out_dir / sub
        if base.is_dir():
            for p in base.rglob(_TMP_PREFIX + "*"):
                if p.is_file():
                    p.unlink()


def convert_hecktor(
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    recipe: HecktorRecipe | None = None,
    folds: int = 3,
    seed: int = 27,
    device: str | None = None,
    overwrite: bool = False,
    affine_tol: float = 1e-3,
    resample: str = "box",
) -> Path:
    """Convert a layout-A HECKTOR folder (real, DICOM-imported or synthetic) to processed NIfTI + a datalist.

    See the module docstring for the layouts, the outputs and the choices. Cases that fail are reported and skipped;
    the datalist lists the cases that succeeded (converted now or by an earlier run). The recipe is recorded in
    ``out_dir/preprocessing.json`` before the first case is written.

    Args:
        root: folder with ``imagesTr`` and ``labelsTr``.
        out_dir: output folder (created); may equal ``root``.
        recipe: the preprocessing recipe (spacing and crop box are applied here, the intensity settings are recorded
            for training and inference); ``None``: :data:`~monai_lexu.datasets.hecktor.recipe.DEFAULT_RECIPE`.
        folds: number of cross-validation folds.
        seed: fold seed.
        device: device of the pre-processing (``"cuda"``, ``"cpu"``; ``None``: CPU).
        overwrite: re-convert cases whose outputs exist.
        affine_tol: tolerance of the rater-mask / CT affine comparison.
        resample: ``"box"`` (default): resample only the head-and-neck box
            (:func:`~monai_lexu.datasets.hecktor.transforms.hecktor_box_preprocess`); ``"whole"``: resample the whole
            volumes, then crop (:func:`~monai_lexu.datasets.hecktor.transforms.hecktor_preprocessing`, the reference;
            on a 512 x 512 x 150 CT about 8 GiB and several times the CPU time, see
            ``benchmarks/bench_hecktor_convert.py``). Both give the same files up to floating-point rounding.

    Returns:
        the path of ``out_dir/datalist.json``.

    Raises:
        PermissionError: if ``out_dir`` cannot be created or written to (checked before any work).
        FileNotFoundError: if ``root`` has no layout-A images.
        RecipeMismatchError: if ``out_dir`` holds outputs of another recipe (and not ``overwrite``); the message
            names its ``preprocessing.json``.
        ValueError: if an input file lies inside ``out_dir/images`` or ``out_dir/labels``, if ``out_dir`` holds a
            datalist but no recorded recipe (and not ``overwrite``), on an impossible ``folds``, or if no case could be
            converted (the errors are in ``errors.json``).
        TypeError: if ``recipe`` is not a :class:`~monai_lexu.datasets.hecktor.recipe.HecktorRecipe`.
    """
    import functools

    from tqdm import tqdm

    from monai_lexu.datasets.hecktor.transforms import hecktor_box_preprocess, hecktor_preprocessing

    recipe = default_recipe() if recipe is None else recipe
    if not isinstance(recipe, HecktorRecipe):
        raise TypeError(f"convert_hecktor: recipe must be a HecktorRecipe, got {type(recipe).__name__}.")
    if resample not in ("box", "whole"):
        raise ValueError(f"convert_hecktor: resample must be 'box' or 'whole', got {resample!r}.")
    root = Path(root).resolve()
    out_dir = Path(out_dir).resolve()
    check_writable_dir(out_dir, "convert_hecktor: output folder")
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
    recorded = recipe_path(out_dir)
    if not overwrite:
        if recorded.is_file():
            load_recipe(recorded, expected=recipe)  # RecipeMismatchError naming the file
        elif datalist_path.is_file():
            raise ValueError(
                f"convert_hecktor: {out_dir} holds a conversion ({datalist_path.name}) without a recorded recipe "
                f"({recorded.name}); pass overwrite=True or use another out_dir."
            )
    params = {"folds": folds, "seed": seed, "recipe": recorded.name}
    if not any(c.multi_rater for c in cases):
        logger.warning(
            "%s uses the single-rater layout labelsTr/<Case>.nii.gz: every case has ONE rater, so the rater variance "
            "(LEXU's disagreement target) is zero everywhere.",
            root,
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    _cleanup_tmp(out_dir)
    write_recipe(out_dir, recipe)

    pipelines: dict[int, Any] = {}
    succeeded: list[HecktorCase] = []
    converted: list[str] = []
    skipped: list[str] = []
    redone: list[str] = []
    errors: dict[str, str] = {}
    previous = {} if overwrite else _previous_records(out_dir)
    records: dict[str, Any] = {}
    for case in tqdm(cases, desc="HECKTOR -> NIfTI", unit="case"):
        paths = _out_paths(out_dir, case)
        if not overwrite and case.raters and all(p.is_file() for p in paths.values()):
            problem, record = _validate_outputs(out_dir, paths, previous.get(case.id))
            if problem is None:
                skipped.append(case.id)
                succeeded.append(case)
                records[case.id] = record
                continue
            logger.warning(
                "HECKTOR conversion: case %r: existing output invalid, converting again: %s", case.id, problem
            )
            redone.append(case.id)
        try:
            check_hecktor_case(case, affine_tol=affine_tol)
            n = len(case.raters)
            if n not in pipelines and resample == "box":
                pipelines[n] = functools.partial(
                    hecktor_box_preprocess, recipe=recipe, label_keys=[f"rater_{i}" for i in range(n)], device=device
                )
            elif n not in pipelines:
                pipelines[n] = hecktor_preprocessing(
                    recipe,
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
        records[case.id] = _record_outputs(out_dir, paths, _read_output(paths["ct"])[1].shape)

    atomic_write_text(out_dir / "errors.json", json.dumps(errors, indent=2) + "\n")
    report = {
        "root": str(root),
        "succeeded": [c.id for c in succeeded],
        "converted": converted,
        "skipped": skipped,
        "redone": [cid for cid in redone if cid not in errors],
        "failed": sorted(errors),
        "parameters": params,
        "outputs": {c.id: records[c.id] for c in succeeded},
    }
    atomic_write_text(out_dir / "conversion.json", json.dumps(report, indent=2) + "\n")
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
    # the datalist last (and atomically, see write_multirater_datalist)
    layout = "multi-rater" if any(c.multi_rater for c in cases) else "single-rater"
    return write_multirater_datalist(
        datalist_path,
        {"training": entries},
        structures=HECKTOR_STRUCTURES,
        name="hecktor",
        description=(
            f"HECKTOR 2022 PET/CT ({layout} layout), converted from {root.name}/ by monai_lexu.datasets.hecktor."
            f"convert_hecktor: RAS, CT and masks resampled to {list(recipe.spacing)} mm (bilinear / nearest), PET onto "
            f"the CT grid, head-and-neck crop {list(recipe.box_mm)} mm (MONAI HECKTOR 2022); image = [CT (HU), PET], "
            f"normalised at training / inference time; recipe in {recorded.name}; {folds}-fold patient-level CV over "
            f"sorted ids (seed {seed})."
        ),
        preprocessing=recorded.name,
        num_folds=folds,
    )


def ensure_hecktor_dataset(
    dataset_dir: str | os.PathLike,
    synthetic_kwargs: Mapping[str, Any] | None = None,
    recipe: HecktorRecipe | None = None,
    make_synthetic: bool = True,
    **convert_kwargs: Any,
) -> Path:
    """Return a HECKTOR datalist, converting the data or generating a synthetic stand-in if needed.

    In order: if ``dataset_dir/datalist.json`` exists it is returned as is (checked against ``recipe`` if one is
    given); else if ``dataset_dir`` (or ``dataset_dir/raw``) holds layout A (``imagesTr``) it is converted into
    ``dataset_dir``; else, if ``dataset_dir`` is missing or empty (or holds only an empty ``raw`` folder), a synthetic
    PET/CT set is written to ``dataset_dir/raw``
    (:func:`~monai_lexu.datasets.hecktor.synthetic.write_synthetic_hecktor`), converted into ``dataset_dir`` and a
    WARNING is logged on the ``"monai_lexu"`` logger. The recipe defaults to
    :data:`~monai_lexu.datasets.hecktor.recipe.DEFAULT_RECIPE` for real data and to
    :data:`~monai_lexu.datasets.hecktor.recipe.SYNTHETIC_RECIPE` (small volumes) for the synthetic set; either way it
    is recorded in ``dataset_dir/preprocessing.json``.

    Args:
        dataset_dir: the data set directory.
        synthetic_kwargs: keyword arguments of ``write_synthetic_hecktor`` (e.g. ``{"num_cases": 6}``).
        recipe: the preprocessing recipe; ``None``: the default for real / synthetic data (see above).
        make_synthetic: whether a missing or empty ``dataset_dir`` may receive a synthetic set (the bundles pass
            :func:`~monai_lexu.data.synthetic_wanted`); if not, it is an error and nothing is created.
        convert_kwargs: further keyword arguments of :func:`convert_hecktor` (``folds``, ``seed``, ``device``, ...).

    Returns:
        the path of ``dataset_dir/datalist.json``.

    Raises:
        FileNotFoundError: if ``dataset_dir`` holds other files but neither a datalist nor layout A, or if it is
            missing or empty and ``make_synthetic`` is false.
        RecipeMismatchError: if ``recipe`` is given and differs from the one recorded with an existing conversion.
    """
    dataset_dir = Path(dataset_dir)
    datalist = dataset_dir / "datalist.json"
    if datalist.is_file():
        if recipe is not None:
            load_recipe(dataset_dir, expected=recipe)
        return datalist
    if has_layout_a(dataset_dir):
        return convert_hecktor(dataset_dir, dataset_dir, recipe=recipe, **convert_kwargs)
    raw = dataset_dir / "raw"
    if has_layout_a(raw):
        return convert_hecktor(raw, dataset_dir, recipe=recipe, **convert_kwargs)
    entries = [p.name for p in dataset_dir.iterdir()] if dataset_dir.is_dir() else []
    raw_entries = [p.name for p in raw.iterdir()] if raw.is_dir() else []
    if any(name != "raw" for name in entries) or raw_entries:
        raise FileNotFoundError(
            f"{dataset_dir}: no datalist.json and no imagesTr/<Case>__CT.nii.gz (in it or in its 'raw' folder), but "
            f"the folder is not empty ({sorted(entries + raw_entries)[:5]}...). Point to the HECKTOR folder (layout "
            "imagesTr/ + labelsTr/<rater>/) or to an empty folder."
        )
    check_may_generate(dataset_dir, make_synthetic, "imagesTr/<Case>__CT.nii.gz or a datalist.json")
    from monai_lexu.datasets.hecktor.synthetic import write_synthetic_hecktor

    write_synthetic_hecktor(raw, **dict(synthetic_kwargs or {}))
    recipe = default_recipe(synthetic=True) if recipe is None else recipe
    out = convert_hecktor(raw, dataset_dir, recipe=recipe, **convert_kwargs)
    logger.warning(
        "No HECKTOR data found in %s: generated a SYNTHETIC head-and-neck PET/CT set in %s and converted it to %s "
        "(spacing %s mm, box %s mm). Results on it say nothing about real patients; to use real data, point to the "
        "HECKTOR folder (imagesTr/<Case>__CT.nii.gz, __PT.nii.gz, labelsTr/<rater>/<Case>.nii.gz) instead.",
        dataset_dir,
        raw,
        out,
        recipe.spacing,
        recipe.box_mm,
    )
    return out
