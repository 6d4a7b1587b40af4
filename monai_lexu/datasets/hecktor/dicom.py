"""DICOM PET/CT cases with one RTSTRUCT or DICOM-SEG per rater -> HECKTOR NIfTI "layout A".

Input ("layout B"): ``<dicom_root>/<Case>/`` is one case; every DICOM Part 10 file anywhere below it (any folder
structure, any file names; files that pydicom does not read as DICOM without ``force`` are skipped) is sorted by
its ``Modality`` tag:

- ``CT``: the CT series (single-frame slices, one per file). Localizers (``ImageType`` contains ``LOCALIZER``)
  are ignored. With several CT series left, the one referenced by the rater files is used; otherwise error.
- ``PT``: the PET series, chosen the same way (and preferring series whose ``CorrectedImage`` contains ``ATTN``).
- ``RTSTRUCT`` / ``SEG``: one file per rater. The rater name is the file's ``SeriesDescription``, else its
  ``StructureSetLabel`` (RTSTRUCT) / ``ContentLabel`` (SEG), else the file name without extension
  (``rater_name_from="filename"`` always uses the file name); it is made file-system safe (characters outside
  ``[A-Za-z0-9._-]`` become ``_``). Use the same rater name for the same person in every case. Two files of one
  case with the same rater name are an error.

ROI names (RTSTRUCT ``ROIName``, SEG ``SegmentLabel``) are mapped to the structures by case-insensitive regular
expressions searched in the name (:data:`DEFAULT_ROI_PATTERNS`; ``roi_patterns`` replaces the pattern of the
structures it names, ``None`` as a pattern drops that structure). Several ROIs of one structure are united; a name
matching both structures is an error (pass ``roi_patterns`` to disambiguate); unmatched ROIs are ignored (logged);
a rater file where no ROI matches is an error.

Output of :func:`dicom_to_layout_a` (``staging_dir``), the input of
:func:`~monai_lexu.datasets.hecktor.convert.convert_hecktor`:
``imagesTr/<Case>__CT.nii.gz`` (HU; int16 when all values are integers in range, else float32),
``imagesTr/<Case>__PT.nii.gz`` (SUVbw, float32, on the PET's own grid) and ``labelsTr/<rater>/<Case>.nii.gz``
(uint8 on the CT grid: 0 background, 1 GTVp, 2 GTVn). A case is written to a hidden temporary folder and moved
into place only when all its files are written: a failing case leaves no file behind and does not stop the others.

Reading: image series with ITK's GDCM reader (``itk.GDCMSeriesFileNames`` for the slice order,
``itk.ImageSeriesReader`` + ``GDCMImageIO`` for values and geometry; RescaleSlope/Intercept are applied per
slice), tags with pydicom, DICOM-SEG with highdicom (``Segmentation.get_volume``). Before reading, the slice
positions are checked: one orientation, strictly increasing and uniformly spaced along the slice normal (relative
tolerance 1 %), no gantry tilt; otherwise error (missing slices, duplicates).

SUV (body weight), as in the QIBA / Kinahan vendor-neutral pseudo-code, for ``Units == BQML`` only::

    SUVbw = A * W / (D * 2 ** (-dt / T))

with A the activity concentration (Bq/ml) after RescaleSlope/Intercept, W = ``PatientWeight`` * 1000 (g),
D = ``RadionuclideTotalDose`` (Bq), T = ``RadionuclideHalfLife`` (s) and dt (s) = scan reference time - injection
time. The scan reference time is ``SeriesDate``/``SeriesTime``; if it is missing or later than the earliest
``AcquisitionDate``/``AcquisitionTime`` of the series (post-processing can rewrite the series time), the earliest
acquisition time is used. The injection time is ``RadiopharmaceuticalStartDateTime`` if present, else
``RadiopharmaceuticalStartTime`` on the scan's date, moved one day back when that puts it after the scan
(injection before midnight). ``DecayCorrection == START`` uses this decay; ``ADMIN`` (images already decay corrected
to the injection) uses dt = 0; anything else (``NONE``) is an error. Missing tags give a ValueError naming the case,
the series and every missing tag (keyword and (group,element)).

RTSTRUCT rasterisation (no extra dependency: rt-utils needs opencv and reads a whole folder as one series):
``CLOSED_PLANAR`` contours are mapped to continuous voxel indices with the image's origin / spacing / direction
and filled per slice with ``skimage.draw.polygon`` (a voxel is inside when its centre is inside the polygon; the
voxel index x runs along the row direction, y along the column direction). Contours of one ROI on the same slice
are combined with XOR (even-odd rule: an inner contour is a hole). Every contour must lie on a slice of the grid
(index distance <= 0.25 of the slice spacing): the CT grid when possible, else the PET grid (the rater drew on the
PET) followed by nearest-neighbour resampling onto the CT grid; otherwise error. Contours outside the grid's slice
range are dropped (logged); open contours and points are ignored.

DICOM-SEG: segments (``BINARY``, or ``FRACTIONAL`` thresholded at 0.5) on the SEG's own frame geometry,
resampled onto the CT grid with nearest neighbour in physical (LPS) space; voxels outside the SEG's extent are 0.

Where GTVp and GTVn overlap in one rater's masks, the voxel gets GTVp (1) (the label map cannot hold both; the
number of such voxels is logged). Different frames of reference of CT and PET are logged as a warning, not
corrected: all coordinates are taken as patient coordinates of one frame.

Identity checks of the rater files (a per-case error naming the file and the mismatching UIDs, unless
``allow_uid_mismatch=True``, which logs a warning instead): the ``PatientID`` must be the CT's; an RTSTRUCT's
referenced ``FrameOfReferenceUID`` (``ReferencedFrameOfReferenceSequence``) and a SEG's ``FrameOfReferenceUID`` must
be the CT's or the PET's. A rater whose GTVp/GTVn rasterises to an empty mask on the CT grid (e.g. every contour
outside the CT) is an error too. A damaged slice file (e.g. truncated pixel data) is named.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from monai_lexu.datasets.hecktor.format import HECKTOR_LABELS

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = [
    "DEFAULT_ROI_PATTERNS",
    "dicom_to_layout_a",
    "match_roi_label",
    "read_dicom_case",
    "suv_bw_scale_factor",
]

logger = logging.getLogger("monai_lexu")

#: case-insensitive regular expressions searched in ROI / segment names
DEFAULT_ROI_PATTERNS: dict[str, str] = {
    "GTVp": r"(?<![a-z])gtv[ _-]?(p|t|prim\w*)(?![a-z])|primary|tumou?r",
    "GTVn": r"(?<![a-z])gtv[ _-]?(n|ln)(?![a-z])|nod(e|al)|lymph|(?<![a-z])ln(?![a-z])",
}

_IMAGE_MODALITIES = ("CT", "PT")
_RATER_MODALITIES = ("RTSTRUCT", "SEG")
_PLANE_TOLERANCE = 0.25  # contour plane -> slice, in units of the slice spacing
_SPACING_TOLERANCE = 0.01  # relative, for slice spacing checks


# ----------------------------------------------------------------------------------------------------------- names
def _compile_patterns(roi_patterns: Mapping[str, str | None] | None) -> dict[str, re.Pattern]:
    patterns: dict[str, str | None] = dict(DEFAULT_ROI_PATTERNS)
    for key, value in (roi_patterns or {}).items():
        if key not in HECKTOR_LABELS:
            raise ValueError(f"roi_patterns: unknown structure {key!r}, expected one of {sorted(HECKTOR_LABELS)}")
        patterns[key] = value
    compiled = {}
    for key, value in patterns.items():
        if value is None:
            continue
        try:
            compiled[key] = re.compile(value, re.IGNORECASE)
        except re.error as e:
            raise ValueError(f"roi_patterns[{key!r}] is not a valid regular expression: {value!r} ({e})") from None
    if not compiled:
        raise ValueError("roi_patterns: every structure was dropped (all patterns are None)")
    return compiled


def match_roi_label(name: str, roi_patterns: Mapping[str, str | None] | None = None) -> str | None:
    """The structure (``"GTVp"`` / ``"GTVn"``) an ROI or segment name belongs to.

    Args:
        name: ROI name (RTSTRUCT ``ROIName``) or segment label (SEG ``SegmentLabel``).
        roi_patterns: ``{structure: regular expression or None}`` replacing entries of :data:`DEFAULT_ROI_PATTERNS`;
            matched case-insensitively with ``re.search``.

    Returns:
        the structure name, or ``None`` when no pattern matches.

    Raises:
        ValueError: if ``name`` matches the patterns of several structures, or a pattern is invalid.
    """
    compiled = _compile_patterns(roi_patterns)
    return _match(name, compiled)


def _match(name: str, compiled: Mapping[str, re.Pattern]) -> str | None:
    hits = [key for key, pattern in compiled.items() if pattern.search(name)]
    if len(hits) > 1:
        raise ValueError(f"ROI name {name!r} matches several structures {hits}; pass roi_patterns to disambiguate")
    return hits[0] if hits else None


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.strip()).strip("._")


def _rater_name(ds: Dataset, path: Path, rater_name_from: str) -> str:
    candidates = [path.name.split(".")[0] or path.name]
    if rater_name_from == "tags":
        label = "StructureSetLabel" if ds.Modality == "RTSTRUCT" else "ContentLabel"
        candidates = [str(ds.get("SeriesDescription", "") or ""), str(ds.get(label, "") or ""), *candidates]
    for candidate in candidates:
        if _safe_name(candidate):
            return _safe_name(candidate)
    raise ValueError(f"{path}: cannot derive a rater name (tags and file name are empty)")


# ------------------------------------------------------------------------------------------------------------- SUV
def _tag_name(keyword: str) -> str:
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    return keyword if tag is None else f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _present(ds: Dataset, keyword: str) -> bool:
    return keyword in ds and ds[keyword].value not in (None, "", [])


def _dicom_date(value: Any) -> date:
    from pydicom.valuerep import DA

    da = DA(str(value).strip())
    return date(da.year, da.month, da.day)


def _dicom_time(value: Any) -> timedelta:
    """Time of day of a DICOM TM (``HHMMSS.FFFFFF``, also ``HH:MM:SS``) as a timedelta since midnight."""
    from pydicom.valuerep import TM

    tm = TM(str(value).strip())
    return timedelta(hours=tm.hour, minutes=tm.minute, seconds=tm.second, microseconds=tm.microsecond)


def _dicom_datetime(value: Any) -> datetime:
    from pydicom.valuerep import DT

    dt = DT(str(value).strip())
    return datetime(dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond)  # drop the time zone


def _series_datetime(ds: Dataset, date_key: str, time_key: str, fallback: date) -> datetime | None:
    if not _present(ds, time_key):
        return None
    day = _dicom_date(ds[date_key].value) if _present(ds, date_key) else fallback
    return datetime.combine(day, datetime.min.time()) + _dicom_time(ds[time_key].value)


def suv_bw_scale_factor(headers: Dataset | Sequence[Dataset], case: str = "PET") -> float:
    """The factor turning a PET series' activity concentration (Bq/ml) into SUV body weight.

    ``SUVbw = A * factor`` with ``factor = PatientWeight [g] / (RadionuclideTotalDose * 2 ** (-dt / HalfLife))``;
    see the module docstring for the time reference dt.

    Args:
        headers: the series' slice headers (pydicom datasets, pixel data not needed), or one of them. Series-level
            tags come from the first; the earliest acquisition time is taken over all.
        case: case name for error messages.

    Returns:
        the scale factor (g/Bq = ml/Bq for unit density).

    Raises:
        ValueError: naming ``case``, the series and the tags, if a needed tag is missing or invalid, ``Units`` is
            not ``BQML``, or ``DecayCorrection`` is neither ``START`` nor ``ADMIN``.
    """
    from pydicom.dataset import Dataset

    headers = [headers] if isinstance(headers, Dataset) else list(headers)
    if not headers:
        raise ValueError(f"case {case!r}: no PET headers given")
    ds = headers[0]
    where = f"case {case!r}: PET series {ds.get('SeriesInstanceUID', '?')}"
    missing = [k for k in ("Units", "DecayCorrection", "PatientWeight") if not _present(ds, k)]
    item = None
    if _present(ds, "RadiopharmaceuticalInformationSequence"):
        item = ds.RadiopharmaceuticalInformationSequence[0]
        missing += [k for k in ("RadionuclideTotalDose", "RadionuclideHalfLife") if not _present(item, k)]
    else:
        missing.append("RadiopharmaceuticalInformationSequence")
    decay = str(ds.get("DecayCorrection", "")).strip().upper()
    if decay == "START":
        if item is not None and not (
            _present(item, "RadiopharmaceuticalStartDateTime") or _present(item, "RadiopharmaceuticalStartTime")
        ):
            missing.append("RadiopharmaceuticalStartTime")
        if not any(_present(h, "SeriesTime") or _present(h, "AcquisitionTime") for h in headers):
            missing.append("SeriesTime")
    if missing:
        raise ValueError(
            f"{where}: cannot compute SUVbw, missing DICOM tag(s): {', '.join(_tag_name(k) for k in missing)}"
        )
    units = str(ds.Units).strip().upper()
    if units != "BQML":
        raise ValueError(f"{where}: cannot compute SUVbw, {_tag_name('Units')} is {units!r}, expected 'BQML'")
    if decay not in ("START", "ADMIN"):
        raise ValueError(
            f"{where}: cannot compute SUVbw, {_tag_name('DecayCorrection')} is {decay!r}, expected START or ADMIN"
        )
    values = {
        "PatientWeight": float(ds.PatientWeight),
        "RadionuclideTotalDose": float(item.RadionuclideTotalDose),
        "RadionuclideHalfLife": float(item.RadionuclideHalfLife),
    }
    bad = [k for k, v in values.items() if not np.isfinite(v) or v <= 0]
    if bad:
        raise ValueError(f"{where}: cannot compute SUVbw, non-positive {', '.join(f'{_tag_name(k)}' for k in bad)}")
    dose = values["RadionuclideTotalDose"]
    if decay == "START":
        dt = _decay_seconds(headers, item, where)
        dose *= 2.0 ** (-dt / values["RadionuclideHalfLife"])
    return values["PatientWeight"] * 1000.0 / dose


def _decay_seconds(headers: Sequence[Dataset], item: Dataset, where: str) -> float:
    ds = headers[0]
    fallback_day = next(
        (_dicom_date(ds[k].value) for k in ("SeriesDate", "AcquisitionDate", "StudyDate") if _present(ds, k)),
        date(1900, 1, 1),
    )
    scan = _series_datetime(ds, "SeriesDate", "SeriesTime", fallback_day)
    acquisitions = [
        t for h in headers if (t := _series_datetime(h, "AcquisitionDate", "AcquisitionTime", fallback_day)) is not None
    ]
    if acquisitions and (scan is None or min(acquisitions) < scan):
        if scan is not None:
            logger.info("%s: SeriesTime is after the first AcquisitionTime; using the acquisition time", where)
        scan = min(acquisitions)
    if _present(item, "RadiopharmaceuticalStartDateTime"):
        injection = _dicom_datetime(item.RadiopharmaceuticalStartDateTime)
    else:
        injection = datetime.combine(scan.date(), datetime.min.time()) + _dicom_time(item.RadiopharmaceuticalStartTime)
        if injection > scan:  # injected before midnight, scanned after
            injection -= timedelta(days=1)
    dt = (scan - injection).total_seconds()
    if dt < 0:
        raise ValueError(
            f"{where}: cannot compute SUVbw, injection ({injection.isoformat()}) is after the scan ({scan.isoformat()})"
        )
    return dt


# -------------------------------------------------------------------------------------------------------- scanning
def _scan_case(case_dir: Path, case: str) -> tuple[dict[str, dict[str, list[tuple[Path, Dataset]]]], list]:
    """Headers of every DICOM file below ``case_dir``: images by modality and series, and the rater files."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    images: dict[str, dict[str, list[tuple[Path, Dataset]]]] = {m: {} for m in _IMAGE_MODALITIES}
    raters: list[tuple[Path, Dataset]] = []
    for path in sorted(p for p in case_dir.rglob("*") if p.is_file()):
        try:
            ds = dcmread(path, stop_before_pixels=True)
        except InvalidDicomError:
            continue
        except Exception as e:  # a damaged DICOM file must not vanish silently from its series
            raise ValueError(f"case {case!r}: cannot read DICOM file {path}: {e}") from e
        modality = str(ds.get("Modality", "")).strip().upper()
        if modality in _IMAGE_MODALITIES:
            if not _present(ds, "SeriesInstanceUID"):
                raise ValueError(f"case {case!r}: {path} has no SeriesInstanceUID")
            images[modality].setdefault(str(ds.SeriesInstanceUID), []).append((path, ds))
        elif modality in _RATER_MODALITIES:
            raters.append((path, ds))
    return images, raters


def _referenced_series(ds: Dataset) -> set[str]:
    uids = set()
    if ds.Modality == "RTSTRUCT":
        for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
            for study in frame.get("RTReferencedStudySequence", []):
                for series in study.get("RTReferencedSeriesSequence", []):
                    uids.add(str(series.get("SeriesInstanceUID", "")))
    for series in ds.get("ReferencedSeriesSequence", []):
        uids.add(str(series.get("SeriesInstanceUID", "")))
    return uids


def _pick_series(
    groups: dict[str, list[tuple[Path, Dataset]]], modality: str, referenced: set[str], case: str
) -> tuple[str, list[tuple[Path, Dataset]]]:
    candidates = {
        uid: files
        for uid, files in groups.items()
        if "LOCALIZER" not in [str(v).upper() for v in files[0][1].get("ImageType", [])]
    }
    if len(candidates) > 1 and any(uid in referenced for uid in candidates):
        candidates = {uid: f for uid, f in candidates.items() if uid in referenced}
    if len(candidates) > 1 and modality == "PT":
        corrected = {
            uid: f for uid, f in candidates.items() if "ATTN" in [str(v) for v in f[0][1].get("CorrectedImage", [])]
        }
        candidates = corrected or candidates
    if len(candidates) != 1:
        found = "; ".join(
            f"{uid} ({f[0][1].get('SeriesDescription', '')!s}, {len(f)} files)" for uid, f in groups.items()
        )
        raise ValueError(
            f"case {case!r}: expected one {modality} series, found {len(candidates)} usable"
            + (f": {found}" if found else "")
        )
    uid, files = next(iter(candidates.items()))
    return uid, files


def _check_slices(files: list[tuple[Path, Dataset]], modality: str, case: str) -> None:
    """Error unless the slices form one regular, untilted stack (the geometry ITK's series reader assumes)."""
    where = f"case {case!r}: {modality} series {files[0][1].SeriesInstanceUID}"
    if len(files) < 2:
        raise ValueError(f"{where}: needs at least 2 slices, found {len(files)}")
    for path, ds in files:
        for key in ("ImagePositionPatient", "ImageOrientationPatient"):
            if not _present(ds, key):
                raise ValueError(f"{where}: {path} has no {_tag_name(key)}")
    orientations = np.array([[float(v) for v in ds.ImageOrientationPatient] for _, ds in files])
    if np.abs(orientations - orientations[0]).max() > 1e-4:
        raise ValueError(f"{where}: slices have different ImageOrientationPatient")
    normal = np.cross(orientations[0, :3], orientations[0, 3:])
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for _, ds in files])
    positions = positions[np.argsort(positions @ normal)]
    steps = np.diff(positions, axis=0)
    along = steps @ normal
    spacing = float(np.median(along))
    if spacing <= 0 or np.any(along <= 1e-6):
        raise ValueError(f"{where}: two slices share one position (duplicate files?)")
    if np.abs(along - spacing).max() > _SPACING_TOLERANCE * spacing:
        raise ValueError(
            f"{where}: slice spacing is not uniform (from {along.min():.4g} to {along.max():.4g} mm; missing slices?)"
        )
    lateral = np.linalg.norm(steps - along[:, None] * normal, axis=1)
    if lateral.max() > _SPACING_TOLERANCE * spacing:
        raise ValueError(f"{where}: slices are shifted in-plane (gantry tilt), which is not supported")


# ---------------------------------------------------------------------------------------------------------- images
def _read_series(names: Any, uid: str, files: list[tuple[Path, Dataset]], modality: str, case: str) -> Any:
    import itk

    _check_slices(files, modality, case)
    _check_pixel_data(files, modality, case)
    ordered = [str(f) for f in names.GetFileNames(uid)]
    expected = {str(p) for p, _ in files}
    if set(ordered) != expected or len(ordered) != len(expected):
        unread = sorted(expected - set(ordered))
        extra = sorted(set(ordered) - expected)
        detail = ""
        if unread:
            detail += f"; GDCM cannot read {', '.join(unread)} (truncated or damaged file?)"
        if extra:
            detail += f"; only GDCM lists {', '.join(extra)}"
        raise ValueError(
            f"case {case!r}: {modality} series {uid}: GDCM found {len(ordered)} files, pydicom {len(expected)}{detail}"
        )
    sop = [str(ds.get("SOPInstanceUID", "")) for _, ds in files]
    if len(set(sop)) != len(sop):
        raise ValueError(f"case {case!r}: {modality} series {uid} holds the same SOPInstanceUID twice")
    reader = itk.ImageSeriesReader[itk.Image[itk.F, 3]].New(FileNames=ordered, ImageIO=itk.GDCMImageIO.New())
    try:
        reader.Update()
    except Exception as e:  # ITK's message names a file at best; name the series and its folder
        folder = os.path.commonpath(ordered) if ordered else "?"
        raise ValueError(
            f"case {case!r}: {modality} series {uid} (files in {folder}) cannot be read: {' '.join(str(e).split())}"
        ) from e
    image = reader.GetOutput()
    image.DisconnectPipeline()
    return image


def _check_pixel_data(files: list[tuple[Path, Dataset]], modality: str, case: str) -> None:
    """Name any slice file whose pixel data is shorter than its Rows x Columns x BitsAllocated say (truncated)."""
    from pydicom import dcmread

    for path, _ in files:
        try:
            full = dcmread(path)
            needed = int(full.Rows) * int(full.Columns) * int(full.get("SamplesPerPixel", 1)) * int(full.BitsAllocated)
            needed *= int(full.get("NumberOfFrames", 1) or 1)
            data = full.get("PixelData")
            if data is None:
                raise ValueError("no PixelData")
            if not full.file_meta.TransferSyntaxUID.is_compressed and len(data) * 8 < needed:
                raise ValueError(f"PixelData has {len(data)} bytes, {needed // 8} expected")
        except Exception as e:
            raise ValueError(
                f"case {case!r}: {modality} slice {path} is damaged or truncated ({type(e).__name__}: {e})"
            ) from e


def _image_like(array: np.ndarray, reference: Any) -> Any:
    """An ITK image of ``array`` ((z, y, x) numpy order) with the origin / spacing / direction of ``reference``."""
    import itk

    image = itk.image_from_array(np.ascontiguousarray(array))
    image.SetOrigin(reference.GetOrigin())
    image.SetSpacing(reference.GetSpacing())
    image.SetDirection(reference.GetDirection())
    return image


def _resample_nearest(label: Any, reference: Any) -> Any:
    """Nearest-neighbour resampling of an ITK label image onto the grid of ``reference`` (0 outside)."""
    import itk

    interpolator = itk.NearestNeighborInterpolateImageFunction[type(label), itk.D].New()
    return itk.resample_image_filter(
        label,
        interpolator=interpolator,
        use_reference_image=True,
        reference_image=reference,
        default_pixel_value=0,
    )


def _continuous_index(points: np.ndarray, image: Any) -> np.ndarray:
    """(N, 3) patient points (mm) -> (N, 3) continuous voxel indices (x, y, z) of ``image``."""
    import itk

    direction = itk.array_from_matrix(image.GetDirection())
    matrix = direction * np.asarray(image.GetSpacing(), dtype=float)[None, :]
    return np.linalg.solve(matrix, (points - np.asarray(image.GetOrigin(), dtype=float)).T).T


# ---------------------------------------------------------------------------------------------------------- raters
def _label_map(masks: Mapping[str, np.ndarray], shape: tuple[int, ...], where: str) -> np.ndarray:
    label = np.zeros(shape, np.uint8)
    for structure in ("GTVn", "GTVp"):  # GTVp written last: it wins where both overlap
        if structure in masks:
            label[masks[structure]] = HECKTOR_LABELS[structure]
    if "GTVp" in masks and "GTVn" in masks:
        overlap = int(np.count_nonzero(masks["GTVp"] & masks["GTVn"]))
        if overlap:
            logger.warning("%s: %d voxels are both GTVp and GTVn; labelled GTVp", where, overlap)
    return label


def _plane_indices(contours: list[np.ndarray], image: Any) -> tuple[list[np.ndarray], np.ndarray, bool]:
    """Continuous indices per contour, the slice index of each, and whether every contour lies on a slice."""
    indices = [_continuous_index(points, image) for points in contours]
    planes = np.array([np.round(np.mean(idx[:, 2])) for idx in indices])
    aligned = all(np.abs(idx[:, 2] - k).max() <= _PLANE_TOLERANCE for idx, k in zip(indices, planes))
    return indices, planes.astype(int), aligned


def _rasterise(indices: list[np.ndarray], planes: np.ndarray, shape: tuple[int, int, int]) -> tuple[np.ndarray, int]:
    """Even-odd fill of the contours (continuous indices) on their slices; returns the mask and #dropped contours."""
    from skimage.draw import polygon

    mask = np.zeros(shape, bool)
    dropped = 0
    for idx, k in zip(indices, planes):
        if not 0 <= k < shape[0]:
            dropped += 1
            continue
        rows, cols = polygon(idx[:, 1], idx[:, 0], shape=shape[1:])
        filled = np.zeros(shape[1:], bool)
        filled[rows, cols] = True
        mask[k] ^= filled
    return mask, dropped


def _rtstruct_label(path: Path, ds: Dataset, ct: Any, pet: Any, compiled: Mapping[str, re.Pattern], case: str) -> Any:
    where = f"case {case!r}: {path}"
    names = {int(roi.ROINumber): str(roi.get("ROIName", "")) for roi in ds.get("StructureSetROISequence", [])}
    contours: dict[str, dict[str, list[np.ndarray]]] = {}  # structure -> ROI name -> contours
    unmatched = []
    for roi in ds.get("ROIContourSequence", []):
        name = names.get(int(roi.ReferencedROINumber), f"ROI {roi.ReferencedROINumber}")
        try:
            structure = _match(name, compiled)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        if structure is None:
            unmatched.append(name)
            continue
        items = contours.setdefault(structure, {}).setdefault(name, [])
        for item in roi.get("ContourSequence", []):
            kind = str(item.get("ContourGeometricType", "")).upper()
            data = np.asarray([float(v) for v in item.get("ContourData", [])]).reshape(-1, 3)
            if kind.startswith("CLOSED_PLANAR") and len(data) >= 3:
                items.append(data)
            else:
                logger.info("%s: ROI %r: ignored a %s contour with %d points", where, name, kind, len(data))
    if unmatched:
        logger.info("%s: ROIs not mapped to GTVp/GTVn: %s", where, unmatched)
    if not contours:
        raise ValueError(f"{where}: no ROI name matches a GTVp/GTVn pattern (ROIs: {sorted(names.values())})")
    every = [c for rois in contours.values() for cs in rois.values() for c in cs]
    grid, grid_name = ct, "CT"
    if every and not _plane_indices(every, ct)[2]:
        if pet is not None and _plane_indices(every, pet)[2]:
            grid, grid_name = pet, "PET"
        else:
            z = sorted({round(float(np.mean(c[:, 2])), 3) for c in every})
            raise ValueError(f"{where}: contour planes (z = {z} mm) lie on neither the CT nor the PET slices")
    shape = tuple(int(s) for s in reversed(grid.GetLargestPossibleRegion().GetSize()))
    masks = {}
    for structure, rois in contours.items():
        union = np.zeros(shape, bool)
        for name, items in rois.items():
            if items:
                indices, planes, _ = _plane_indices(items, grid)
                mask, dropped = _rasterise(indices, planes, shape)
                if dropped:
                    logger.warning(
                        "%s: ROI %r: %d contours outside the %s slices dropped", where, name, dropped, grid_name
                    )
                union |= mask
        masks[structure] = union
    label = _image_like(_label_map(masks, shape, where), grid)
    return label if grid is ct else _resample_nearest(label, ct)


def _seg_label(path: Path, ct: Any, compiled: Mapping[str, re.Pattern], case: str) -> Any:
    where = f"case {case!r}: {path}"
    try:
        import highdicom as hd
    except ImportError as e:
        raise ImportError(
            f"{where}: reading a DICOM-SEG rater file needs highdicom>=0.28 (pip install 'highdicom>=0.28', which "
            "needs pydicom>=3 and so cannot live beside monailabel 0.8.5); import this case in an environment "
            "with it, or give the raters as RTSTRUCT"
        ) from e
    seg = hd.seg.segread(path)
    numbers: dict[str, list[int]] = {}
    labels = []
    for item in seg.SegmentSequence:
        name = str(item.get("SegmentLabel", ""))
        labels.append(name)
        try:
            structure = _match(name, compiled)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        if structure is not None:
            numbers.setdefault(structure, []).append(int(item.SegmentNumber))
    if not numbers:
        raise ValueError(f"{where}: no segment label matches a GTVp/GTVn pattern (segments: {labels})")
    wanted = sorted(n for ns in numbers.values() for n in ns)
    try:
        volume = seg.get_volume(segment_numbers=wanted, combine_segments=False, dtype=np.float32)
    except Exception as e:
        raise ValueError(f"{where}: the segmentation frames do not form a regular volume ({e})") from e
    array = np.asarray(volume.array)
    if array.ndim == 3:
        array = array[..., None]
    masks = {s: np.any(array[..., [wanted.index(n) for n in ns]] >= 0.5, axis=-1) for s, ns in numbers.items()}
    spatial = volume.with_array(_label_map(masks, array.shape[:3], where))
    return _resample_nearest(spatial.to_itk(), ct)


# ------------------------------------------------------------------------------------------------------------- API
def read_dicom_case(
    case_dir: str | os.PathLike,
    roi_patterns: Mapping[str, str | None] | None = None,
    rater_name_from: Literal["tags", "filename"] = "tags",
    allow_uid_mismatch: bool = False,
) -> dict[str, Any]:
    """Read one PET/CT case with its rater annotations (layout described in the module docstring).

    Args:
        case_dir: the case folder; its name is the case id.
        roi_patterns: ``{structure: regular expression or None}`` replacing entries of :data:`DEFAULT_ROI_PATTERNS`.
        rater_name_from: ``"tags"`` (SeriesDescription, then StructureSetLabel / ContentLabel, then file name) or
            ``"filename"``.
        allow_uid_mismatch: accept (with a warning) rater files whose PatientID or frame of reference differs from
            the CT's / PET's; by default they are an error.

    Returns:
        ``{"case": str, "ct": itk.Image[F, 3] (HU), "pet": itk.Image[F, 3] (SUVbw, PET grid),
        "raters": {rater name: itk.Image[UC, 3] on the CT grid, 0 / 1 GTVp / 2 GTVn},
        "suv_factor": float, "sources": {"ct": series UID, "pet": series UID, "raters": {rater name: file}}}``.
        ITK images hold the DICOM (LPS) geometry; ``itk.array_view_from_image`` gives (z, y, x) arrays.
        ``raters`` is empty when the case has no RTSTRUCT / SEG file.

    Raises:
        FileNotFoundError: if ``case_dir`` is not a folder.
        ValueError: naming the case and the file, series or tag, for a missing / ambiguous series, irregular
            slices, a damaged slice file, missing SUV tags, unmatched or ambiguous ROI names, contours off the
            slices, duplicate raters, a rater file of another patient / frame of reference (naming the UIDs), or a
            rater whose mask is empty on the CT grid.
    """
    import itk

    case_dir = Path(case_dir)
    if not case_dir.is_dir():
        raise FileNotFoundError(f"DICOM case folder not found: {case_dir}")
    if rater_name_from not in ("tags", "filename"):
        raise ValueError(f"rater_name_from must be 'tags' or 'filename', got {rater_name_from!r}")
    case = case_dir.name
    compiled = _compile_patterns(roi_patterns)
    images, rater_files = _scan_case(case_dir.resolve(), case)
    referenced = set().union(*(_referenced_series(ds) for _, ds in rater_files)) if rater_files else set()
    ct_uid, ct_files = _pick_series(images["CT"], "CT", referenced, case)
    pet_uid, pet_files = _pick_series(images["PT"], "PT", referenced, case)
    factor = suv_bw_scale_factor([ds for _, ds in pet_files], case)  # check the tags before reading pixels
    names = itk.GDCMSeriesFileNames.New()
    names.SetUseSeriesDetails(False)
    names.SetRecursive(True)
    names.SetDirectory(str(case_dir.resolve()))
    ct = _read_series(names, ct_uid, ct_files, "CT", case)
    pet = _read_series(names, pet_uid, pet_files, "PT", case)
    itk.array_view_from_image(pet)[...] *= np.float32(factor)
    frames = {
        "CT": str(ct_files[0][1].get("FrameOfReferenceUID", "")),
        "PT": str(pet_files[0][1].get("FrameOfReferenceUID", "")),
    }
    if frames["CT"] != frames["PT"]:
        logger.warning("case %r: CT and PET have different FrameOfReferenceUIDs; used as one patient frame", case)

    raters: dict[str, Any] = {}
    sources: dict[str, str] = {}
    patient = str(ct_files[0][1].get("PatientID", ""))
    for path, ds in rater_files:
        rater = _rater_name(ds, path, rater_name_from)
        if rater in raters:
            raise ValueError(f"case {case!r}: rater name {rater!r} is used by both {sources[rater]} and {path}")
        _check_rater_identity(path, ds, patient, frames, case, allow_uid_mismatch)
        if ds.Modality == "RTSTRUCT":
            raters[rater] = _rtstruct_label(path, ds, ct, pet, compiled, case)
        else:
            raters[rater] = _seg_label(path, ct, compiled, case)
        sources[rater] = str(path)
        if not itk.array_view_from_image(raters[rater]).any():
            raise ValueError(
                f"case {case!r}: rater {rater!r} ({path}): the GTVp/GTVn contours rasterise to an empty mask on the CT "
                "grid (contours outside the CT, or on no CT slice); an empty rater is refused."
            )
    return {
        "case": case,
        "ct": ct,
        "pet": pet,
        "raters": raters,
        "suv_factor": factor,
        "sources": {"ct": ct_uid, "pet": pet_uid, "raters": sources},
    }


def _check_rater_identity(
    path: Path, ds: Dataset, patient: str, frames: Mapping[str, str], case: str, allow: bool
) -> None:
    """PatientID and frame of reference of a rater file against the CT's (and the PET's frame); see the module
    docstring. Raises ValueError naming the file and the UIDs, or only warns when ``allow``."""
    problems = []
    rater_patient = str(ds.get("PatientID", "") or "")
    if rater_patient and patient and rater_patient != patient:
        problems.append(f"PatientID {rater_patient!r} (CT: {patient!r})")
    if ds.Modality == "RTSTRUCT":
        refs = {str(f.get("FrameOfReferenceUID", "")) for f in ds.get("ReferencedFrameOfReferenceSequence", [])}
        refs.discard("")
    else:
        refs = {str(ds.FrameOfReferenceUID)} if _present(ds, "FrameOfReferenceUID") else set()
    if refs and not refs & {v for v in frames.values() if v}:
        problems.append(
            f"FrameOfReferenceUID {', '.join(sorted(refs))} (CT: {frames['CT'] or '?'}, PET: {frames['PT'] or '?'})"
        )
    if not problems:
        return
    message = f"case {case!r}: {ds.Modality} {path} belongs to another " + (
        "patient / frame of reference: " + "; ".join(problems)
    )
    if allow:
        logger.warning("%s; used anyway (allow_uid_mismatch)", message)
        return
    raise ValueError(message + " (pass allow_uid_mismatch=True / --allow-uid-mismatch to use it anyway)")


def _ct_for_output(ct: Any) -> Any:
    import itk

    array = itk.array_view_from_image(ct)
    info = np.iinfo(np.int16)
    if array.size and np.all(array == np.round(array)) and array.min() >= info.min and array.max() <= info.max:
        return _image_like(array.astype(np.int16), ct)
    return ct


def _write_case(data: Mapping[str, Any], staging: Path) -> list[Path]:
    """Write one case to a hidden folder of ``staging``, then move the files into place (all or nothing)."""
    import itk

    case = data["case"]
    outputs = {
        Path("imagesTr") / f"{case}__CT.nii.gz": _ct_for_output(data["ct"]),
        Path("imagesTr") / f"{case}__PT.nii.gz": data["pet"],
    }
    for rater, label in data["raters"].items():
        outputs[Path("labelsTr") / rater / f"{case}.nii.gz"] = label
    tmp = staging / f".partial_{_safe_name(case) or 'case'}_{uuid.uuid4().hex[:8]}"
    moved: list[Path] = []
    try:
        for rel, image in outputs.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            itk.imwrite(image, str(tmp / rel), compression=True)
        for rel in outputs:
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / rel, staging / rel)
            moved.append(staging / rel)
    except BaseException:
        for path in moved:
            path.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return moved


def dicom_to_layout_a(
    dicom_root: str | os.PathLike,
    staging_dir: str | os.PathLike,
    roi_patterns: Mapping[str, str | None] | None = None,
    rater_name_from: Literal["tags", "filename"] = "tags",
    allow_uid_mismatch: bool = False,
) -> tuple[list[str], dict[str, str]]:
    """Convert every case folder of ``dicom_root`` to NIfTI layout A in ``staging_dir``.

    Args:
        dicom_root: folder with one sub-folder per case (hidden folders and ``staging_dir`` are skipped).
        staging_dir: output root (created); see the module docstring for the files.
        roi_patterns: ``{structure: regular expression or None}`` replacing entries of :data:`DEFAULT_ROI_PATTERNS`.
        rater_name_from: ``"tags"`` or ``"filename"``, see :func:`read_dicom_case`.
        allow_uid_mismatch: see :func:`read_dicom_case`.

    Returns:
        ``(converted case ids in sorted order, {case id: error message})``. A case fails (and writes nothing) when
        :func:`read_dicom_case` raises or it has no rater file; the other cases go on.

    Raises:
        FileNotFoundError: if ``dicom_root`` is not a folder.
        ValueError: if ``roi_patterns`` is invalid.
    """
    root = Path(dicom_root)
    if not root.is_dir():
        raise FileNotFoundError(f"DICOM root folder not found: {root}")
    _compile_patterns(roi_patterns)
    staging = Path(staging_dir)
    staging.mkdir(parents=True, exist_ok=True)
    case_dirs = sorted(
        d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and d.resolve() != staging.resolve()
    )
    converted: list[str] = []
    errors: dict[str, str] = {}
    for case_dir in case_dirs:
        case = case_dir.name
        try:
            data = read_dicom_case(case_dir, roi_patterns, rater_name_from, allow_uid_mismatch=allow_uid_mismatch)
            if not data["raters"]:
                raise ValueError(f"case {case!r}: no RTSTRUCT or SEG rater file found below {case_dir}")
            _write_case(data, staging)
        except Exception as e:  # one bad case must not stop the others
            errors[case] = f"{type(e).__name__}: {e}"
            logger.warning("DICOM case %r skipped: %s", case, errors[case])
            continue
        converted.append(case)
        logger.info("DICOM case %r: CT, PET and %d raters written", case, len(data["raters"]))
    return converted, errors
