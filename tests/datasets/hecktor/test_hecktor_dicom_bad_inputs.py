"""Bad DICOM inputs (issue 9, items 4 and 8): rater files of another patient or frame of reference, raters that
rasterise to nothing, a truncated slice. Each is a per-case error naming the file (and the UIDs); the case writes
nothing and the other cases are converted."""

from __future__ import annotations

import importlib.util
import logging
import re
from pathlib import Path

import dicom_factory as F
import numpy as np
import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from monai_lexu.datasets.hecktor.dicom import dicom_to_layout_a

HAS_HIGHDICOM = importlib.util.find_spec("highdicom") is not None
HIGHDICOM_REASON = "DICOM-SEG raters need highdicom>=0.28 (pydicom>=3), absent here (e.g. in the MONAI Label 0.8.5 env)"
SHAPE, SPACING, ORIGIN = (4, 8, 8), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0)  # (z, y, x); (x, y, z) mm


def square(z: float, lo: float = 3.0, hi: float = 9.0) -> np.ndarray:
    return np.array([[lo, lo, z], [hi, lo, z], [hi, hi, z], [lo, hi, z]])


def write_case(root: Path, cid: str, study: F.Study | None = None) -> tuple[Path, F.Study, list, list]:
    """CT and PET on one 4 x 8 x 8 grid (2 mm); returns the case folder, the study and the CT / PET datasets."""
    case = root / cid
    study = study or F.Study(cid)
    stored = np.full(SHAPE, 1064, np.int16)
    ct = F.write_image_series(case / "ct", study, "CT", stored, SPACING, ORIGIN, intercept=-1024.0)
    pet = F.write_image_series(
        case / "pet", study, "PT", np.full(SHAPE, 100, np.int16), SPACING, ORIGIN, extra=F.pet_suv_tags(),
        series_number=2,
    )  # fmt: skip
    return case, study, ct, pet


def good_rater(case: Path, study: F.Study, ct: list, name: str = "rater_A") -> Path:
    return F.write_rtstruct(
        case / f"{name}.dcm", study, ct, {"GTVp": [square(2.0), square(4.0)]}, series_description=name
    )


def convert(root: Path, tmp_path: Path, **kwargs) -> tuple[list[str], dict[str, str], Path]:
    staging = tmp_path / "staging"
    ids, errors = dicom_to_layout_a(root, staging, **kwargs)
    return ids, errors, staging


def assert_nothing_written(staging: Path, cid: str) -> None:
    assert not [p for p in staging.rglob("*") if cid in p.name or ".partial" in p.name]


@pytest.fixture
def root_with_good_case(tmp_path):
    root = tmp_path / "dicom"
    case, study, ct, _ = write_case(root, "GOOD")
    good_rater(case, study, ct, "rater_A")
    good_rater(case, study, ct, "rater_B")
    return root


def _other_patient(case: Path, study: F.Study, ct: list) -> tuple[Path, str]:
    other = F.Study("SOMEONE_ELSE")
    other.frame_of_reference_uid = study.frame_of_reference_uid  # only the patient differs
    other.study_uid = study.study_uid
    path = F.write_rtstruct(case / "rs_other.dcm", other, ct, {"GTVp": [square(2.0)]}, series_description="rater_B")
    return path, r"PatientID 'SOMEONE_ELSE' \(CT: 'BAD'\)"


def _other_frame(case: Path, study: F.Study, ct: list) -> tuple[Path, str]:
    other = F.Study("BAD")
    other.study_uid = study.study_uid
    path = F.write_rtstruct(case / "rs_other.dcm", other, ct, {"GTVp": [square(2.0)]}, series_description="rater_B")
    return path, rf"FrameOfReferenceUID {other.frame_of_reference_uid} \(CT: {study.frame_of_reference_uid}, PET: "


def _seg_other_frame(case: Path, study: F.Study, ct: list) -> tuple[Path, str]:
    mask = np.zeros(SHAPE, bool)
    mask[1:3, 2:5, 2:5] = True
    path = F.write_seg(case / "seg_other.dcm", ct, {"GTVp": mask}, series_description="rater_B")
    ds = dcmread(path)
    ds.FrameOfReferenceUID = generate_uid()
    ds.save_as(path)
    return path, rf"FrameOfReferenceUID {ds.FrameOfReferenceUID} \(CT: {study.frame_of_reference_uid}, PET: "


MISMATCHES = [
    pytest.param(_other_patient, id="rtstruct-other-patient"),
    pytest.param(_other_frame, id="rtstruct-other-frame"),
    pytest.param(
        _seg_other_frame, id="seg-other-frame", marks=pytest.mark.skipif(not HAS_HIGHDICOM, reason=HIGHDICOM_REASON)
    ),
]


@pytest.mark.parametrize("make", MISMATCHES)
def test_rater_of_another_patient_or_frame_is_a_case_error(root_with_good_case, tmp_path, make, caplog):
    root = root_with_good_case
    case, study, ct, _ = write_case(root, "BAD")
    good_rater(case, study, ct, "rater_A")
    path, uids = make(case, study, ct)
    ids, errors, staging = convert(root, tmp_path)
    assert ids == ["GOOD"] and list(errors) == ["BAD"]
    assert "case 'BAD'" in errors["BAD"] and str(path) in errors["BAD"]
    assert re.search(uids, errors["BAD"]), errors["BAD"]
    assert "--allow-uid-mismatch" in errors["BAD"]
    assert_nothing_written(staging, "BAD")
    # the explicit flag accepts it, with a warning naming the file
    with caplog.at_level(logging.WARNING, logger="monai_lexu"):
        ids, errors, staging = convert(root, tmp_path / "allowed", allow_uid_mismatch=True)
    assert ids == ["BAD", "GOOD"] and errors == {}
    assert str(path) in caplog.text and "allow_uid_mismatch" in caplog.text
    assert (staging / "labelsTr" / "rater_B" / "BAD.nii.gz").is_file()


@pytest.mark.parametrize(
    "contours",
    [[square(2.0, 200.0, 220.0)], [square(100.0)]],
    ids=["in-plane-outside-the-ct", "beyond-the-last-slice"],
)
def test_rater_that_rasterises_to_nothing_is_a_case_error(root_with_good_case, tmp_path, contours):
    root = root_with_good_case
    case, study, ct, _ = write_case(root, "EMPTY")
    good_rater(case, study, ct, "rater_A")
    path = F.write_rtstruct(case / "rs_empty.dcm", study, ct, {"GTVn": contours}, series_description="rater_B")
    ids, errors, staging = convert(root, tmp_path)
    assert ids == ["GOOD"] and list(errors) == ["EMPTY"]
    assert f"case 'EMPTY': rater 'rater_B' ({path})" in errors["EMPTY"] and "empty mask" in errors["EMPTY"]
    assert_nothing_written(staging, "EMPTY")


@pytest.mark.parametrize("modality", ["ct", "pet"])
def test_truncated_slice_names_the_file(root_with_good_case, tmp_path, modality):
    root = root_with_good_case
    case, study, ct, _ = write_case(root, "TRUNC")
    good_rater(case, study, ct, "rater_A")
    good_rater(case, study, ct, "rater_B")
    victim = sorted((case / modality).glob("*.dcm"))[2]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) - 40])  # the last 20 pixels of the slice are gone
    ids, errors, staging = convert(root, tmp_path)
    assert ids == ["GOOD"] and list(errors) == ["TRUNC"]
    assert "case 'TRUNC'" in errors["TRUNC"] and str(victim) in errors["TRUNC"], errors["TRUNC"]
    assert_nothing_written(staging, "TRUNC")


def test_cli_allow_uid_mismatch_flag(tmp_path, capsys):
    from monai_lexu.datasets.hecktor.cli import main

    root = tmp_path / "dicom"
    for cid in ("P1", "P2"):
        case, study, ct, _ = write_case(root, cid)
        good_rater(case, study, ct, "rater_A")
        _other_frame(case, study, ct)
    geometry = ["--spacing", "2", "2", "2", "--box-mm", "16", "16", "8", "--folds", "1"]
    assert main(["--dicom", str(root), "--out", str(tmp_path / "refused"), *geometry]) == 1
    err = capsys.readouterr().err
    assert "P1" in err and "rs_other.dcm" in err and "FrameOfReferenceUID" in err
    assert not (tmp_path / "refused" / "datalist.json").exists()
    out = tmp_path / "allowed"
    assert main(["--dicom", str(root), "--out", str(out), "--allow-uid-mismatch", *geometry]) == 0
    assert (out / "datalist.json").is_file()
