"""Write small, real DICOM files for tests: CT / PET image series, RTSTRUCT and (with highdicom) DICOM-SEG.

All geometry is axial (ImageOrientationPatient ``[1, 0, 0, 0, 1, 0]``); arrays are in ``(slice, row, column)``
= ``(z, y, x)`` order, ``spacing`` and ``origin`` in ``(x, y, z)`` mm order (DICOM patient coordinates, LPS).
Tests import it by name (``import dicom_factory``): pytest puts the folder of a test module on ``sys.path``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    PositronEmissionTomographyImageStorage,
    RTStructureSetStorage,
    generate_uid,
)

__all__ = [
    "Study",
    "pet_suv_tags",
    "save_dicom",
    "voxel_centres",
    "write_image_series",
    "write_rtstruct",
    "write_seg",
]

AXIAL = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def save_dicom(ds: Dataset, path: str | Path) -> None:
    """Write ``ds`` as a DICOM Part 10 file (preamble + file meta) under pydicom 3 and pydicom 2 alike.

    pydicom 3 spells it ``save_as(..., enforce_file_format=True)``; pydicom 2 (MONAI Label's environments pin
    pydicom < 2.5) has ``write_like_original=False`` instead and needs the encoding set on the dataset.
    """
    import pydicom

    if int(pydicom.__version__.split(".")[0]) >= 3:
        ds.save_as(path, enforce_file_format=True)
        return
    ds.is_little_endian, ds.is_implicit_VR = True, False  # ExplicitVRLittleEndian, the factory's transfer syntax
    ds.save_as(path, write_like_original=False)


class Study:
    """Patient / study / frame-of-reference identifiers shared by the files of one case."""

    def __init__(self, patient_id: str = "P001") -> None:
        self.patient_id = patient_id
        self.study_uid = generate_uid()
        self.frame_of_reference_uid = generate_uid()

    def base(self, modality: str, sop_class: str, series_uid: str, series_number: int) -> Dataset:
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = sop_class
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientName = "Test^Patient"
        ds.PatientID = self.patient_id
        ds.PatientBirthDate = "19600101"
        ds.PatientSex = "O"
        ds.StudyInstanceUID = self.study_uid
        ds.StudyID = "1"
        ds.StudyDate = "20240101"
        ds.StudyTime = "090000"
        ds.AccessionNumber = "A1"
        ds.ReferringPhysicianName = ""
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.Modality = modality
        ds.Manufacturer = "test"
        ds.FrameOfReferenceUID = self.frame_of_reference_uid
        ds.PositionReferenceIndicator = ""
        return ds


def voxel_centres(shape_zyx: Sequence[int], spacing_xyz: Sequence[float], origin_xyz: Sequence[float]) -> np.ndarray:
    """Patient coordinates (mm) of the voxel centres of an axial grid, shape ``(z, y, x, 3)`` with (x, y, z) last."""
    nz, ny, nx = shape_zyx
    z, y, x = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    return np.stack(
        [origin_xyz[0] + x * spacing_xyz[0], origin_xyz[1] + y * spacing_xyz[1], origin_xyz[2] + z * spacing_xyz[2]], -1
    )


def pet_suv_tags(
    weight_kg: float = 80.0,
    dose_bq: float = 4.0e8,
    half_life_s: float = 6000.0,
    injection_time: str = "100000",
    series_time: str = "114000",
    decay_correction: str = "START",
    units: str = "BQML",
    omit: Sequence[str] = (),
) -> dict[str, object]:
    """The SUV-relevant PET tags as ``{keyword: value}``; ``omit`` drops keywords (also inside the radiopharmaceutical
    item). Defaults: 4e8 Bq injected at 10:00, scan at 11:40 = one half-life later, 80 kg: SUV = activity * 4e-4."""
    item = Dataset()
    for key, value in (
        ("RadiopharmaceuticalStartTime", injection_time),
        ("RadionuclideTotalDose", f"{dose_bq:.6g}"),
        ("RadionuclideHalfLife", f"{half_life_s:.6g}"),
        ("Radiopharmaceutical", "Fluorodeoxyglucose"),
    ):
        if key not in omit:
            setattr(item, key, value)
    tags: dict[str, object] = {
        "Units": units,
        "DecayCorrection": decay_correction,
        "CorrectedImage": ["ATTN", "DECY"],
        "PatientWeight": f"{weight_kg:.6g}",
        "SeriesDate": "20240101",
        "SeriesTime": series_time,
        "AcquisitionDate": "20240101",
        "AcquisitionTime": series_time,
        "RadiopharmaceuticalInformationSequence": DicomSequence([item]),
    }
    return {k: v for k, v in tags.items() if k not in omit}


def write_image_series(
    out_dir: str | Path,
    study: Study,
    modality: str,
    stored: np.ndarray,
    spacing: Sequence[float],
    origin: Sequence[float],
    slopes: Sequence[float] | float = 1.0,
    intercept: float = 0.0,
    extra: Mapping[str, object] | None = None,
    series_number: int = 1,
    file_order: Sequence[int] | None = None,
) -> list[Dataset]:
    """Write one single-frame file per slice of ``stored`` (int16 values, ``(z, y, x)``).

    Real value = stored * slopes[z] + intercept. ``file_order`` permutes the file names / InstanceNumbers so that
    readers must sort by position. Returns the datasets in slice (z) order.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stored = np.asarray(stored)
    nz, ny, nx = stored.shape
    slopes = [float(slopes)] * nz if np.isscalar(slopes) else [float(s) for s in slopes]
    sop_class = {"CT": CTImageStorage, "PT": PositronEmissionTomographyImageStorage}[modality]
    series_uid = generate_uid()
    order = list(range(nz)) if file_order is None else list(file_order)
    datasets = []
    for k in range(nz):
        ds = study.base(modality, sop_class, series_uid, series_number)
        ds.SeriesDescription = f"{modality} series"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = order[k] + 1
        ds.ImagePositionPatient = [f"{origin[0]:.6g}", f"{origin[1]:.6g}", f"{origin[2] + k * spacing[2]:.6g}"]
        ds.ImageOrientationPatient = AXIAL
        ds.PixelSpacing = [f"{spacing[1]:.6g}", f"{spacing[0]:.6g}"]  # row spacing (y), column spacing (x)
        ds.SliceThickness = f"{spacing[2]:.6g}"
        ds.Rows, ds.Columns = ny, nx
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope = f"{slopes[k]:.10g}"
        ds.RescaleIntercept = f"{intercept:.10g}"
        ds.RescaleType = "HU" if modality == "CT" else "US"
        for key, value in (extra or {}).items():
            setattr(ds, key, value)
        ds.PixelData = np.ascontiguousarray(stored[k], dtype="<i2").tobytes()
        save_dicom(ds, out_dir / f"{modality.lower()}_{order[k]:03d}.dcm")
        datasets.append(ds)
    return datasets


def write_rtstruct(
    path: str | Path,
    study: Study,
    images: Sequence[Dataset],
    rois: Mapping[str, Sequence[np.ndarray]],
    series_description: str = "",
    structure_set_label: str = "RS",
    geometric_type: str = "CLOSED_PLANAR",
) -> Path:
    """Write an RTSTRUCT referencing ``images``; ``rois`` maps ROI names to contours, each an ``(N, 3)`` array of
    (x, y, z) mm points."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = study.base("RTSTRUCT", RTStructureSetStorage, generate_uid(), 99)
    del ds.FrameOfReferenceUID, ds.PositionReferenceIndicator
    ds.SeriesDescription = series_description
    ds.StructureSetLabel = structure_set_label
    ds.StructureSetDate, ds.StructureSetTime = "20240101", "120000"
    ds.InstanceNumber = 1
    contour_images = []
    for image in images:
        ref = Dataset()
        ref.ReferencedSOPClassUID = image.SOPClassUID
        ref.ReferencedSOPInstanceUID = image.SOPInstanceUID
        contour_images.append(ref)
    series = Dataset()
    series.SeriesInstanceUID = images[0].SeriesInstanceUID
    series.ContourImageSequence = DicomSequence(contour_images)
    study_ref = Dataset()
    study_ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    study_ref.ReferencedSOPInstanceUID = study.study_uid
    study_ref.RTReferencedSeriesSequence = DicomSequence([series])
    frame = Dataset()
    frame.FrameOfReferenceUID = study.frame_of_reference_uid
    frame.RTReferencedStudySequence = DicomSequence([study_ref])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame])
    roi_items, contour_items, observations = [], [], []
    for number, (name, contours) in enumerate(rois.items(), start=1):
        roi = Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = study.frame_of_reference_uid
        roi.ROIName = name
        roi.ROIGenerationAlgorithm = "MANUAL"
        roi_items.append(roi)
        items = []
        for points in contours:
            points = np.asarray(points, dtype=float)
            item = Dataset()
            item.ContourGeometricType = geometric_type
            item.NumberOfContourPoints = len(points)
            item.ContourData = [f"{v:.6g}" for v in points.reshape(-1)]
            items.append(item)
        roi_contour = Dataset()
        roi_contour.ReferencedROINumber = number
        roi_contour.ROIDisplayColor = [255, 0, 0]
        roi_contour.ContourSequence = DicomSequence(items)
        contour_items.append(roi_contour)
        obs = Dataset()
        obs.ObservationNumber = number
        obs.ReferencedROINumber = number
        obs.RTROIInterpretedType = "GTV"
        obs.ROIInterpreter = ""
        observations.append(obs)
    ds.StructureSetROISequence = DicomSequence(roi_items)
    ds.ROIContourSequence = DicomSequence(contour_items)
    ds.RTROIObservationsSequence = DicomSequence(observations)
    save_dicom(ds, path)
    return path


def write_seg(
    path: str | Path,
    images: Sequence[Dataset],
    masks: Mapping[str, np.ndarray],
    series_description: str = "",
    content_label: str = "SEG",
) -> Path:
    """Write a BINARY DICOM-SEG (highdicom) on the grid of ``images``; ``masks`` maps segment labels to ``(z, y, x)``
    boolean arrays in the slice order of ``images``."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = list(masks)
    pixels = np.stack([np.asarray(masks[label], dtype=bool) for label in labels], axis=-1)
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=i + 1,
            segment_label=label,
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Neoplasm,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for i, label in enumerate(labels)
    ]
    seg = hd.seg.Segmentation(
        source_images=list(images),
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=100,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="test",
        manufacturer_model_name="test",
        software_versions="0",
        device_serial_number="0",
        content_label=content_label,
        series_description=series_description,
    )
    seg.save_as(path)
    return path
