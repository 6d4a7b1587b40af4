"""Tests for monai_lexu.datasets.hecktor.dicom on real DICOM files written by dicom_factory.py (pydicom, highdicom)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import dicom_factory as F
import nibabel as nib
import numpy as np
import pytest
from pydicom.dataset import Dataset

from monai_lexu.datasets.hecktor.dicom import (
    DEFAULT_ROI_PATTERNS,
    dicom_to_layout_a,
    match_roi_label,
    read_dicom_case,
    suv_bw_scale_factor,
)

HAS_HIGHDICOM = importlib.util.find_spec("highdicom") is not None
HIGHDICOM_REASON = "DICOM-SEG raters need highdicom>=0.28 (pydicom>=3), absent here (e.g. in the MONAI Label 0.8.5 env)"

# CT: 8 slices of 24 rows x 32 columns, spacing (x, y, z) = (2, 2.5, 2) mm; z = 10 .. 24
CT_SHAPE, CT_SPACING, CT_ORIGIN = (8, 24, 32), (2.0, 2.5, 2.0), (-30.0, -20.0, 10.0)
# PET: twice as coarse, shifted by half a CT voxel: every CT centre is 1/4 PET voxel from a PET centre
PET_SHAPE, PET_SPACING, PET_ORIGIN = (4, 12, 16), (4.0, 5.0, 4.0), (-29.0, -18.75, 11.0)
SUV_PER_BQML = 80_000 / (4.0e8 / 2)  # default pet_suv_tags: 80 kg, 4e8 Bq, one half-life (6000 s) before the scan


def rect(x0: float, x1: float, y0: float, y1: float, z: float) -> np.ndarray:
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]])


def circle(cx: float, cy: float, r: float, z: float, n: int = 64) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t), np.full(n, z)], -1)


def inside_rect(centres: np.ndarray, x0: float, x1: float, y0: float, y1: float, z: float) -> np.ndarray:
    x, y, zz = centres[..., 0], centres[..., 1], centres[..., 2]
    return (x > x0) & (x < x1) & (y > y0) & (y < y1) & np.isclose(zz, z)


# rater A (RTSTRUCT on the CT slices): vertices half-way between voxel centres, so the expected masks are exact
A_GTVP = [(-11, 9, -6.25, 6.25, z) for z in (12, 14, 16)]
A_GTVN1 = [(1, 11, -11.25, -1.25, z) for z in (14, 16)]  # overlaps A_GTVP at z 14, 16 -> GTVp wins
A_RING = ((-25, -5, 3.75, 16.25, 20), (-19, -11, 6.25, 13.75, 20))  # outer, inner (a hole by the even-odd rule)
# rater B (RTSTRUCT): a circle of radius 9 mm on three CT slices, named via StructureSetLabel
B_CIRCLE = (0.0, 0.0, 9.0, (14, 16, 18))
# rater D (RTSTRUCT drawn on the PET slices z = 15, 19: rasterised on the PET grid, then resampled)
D_GTVN = [(-23, -3, -16.25, 3.75, z) for z in (15, 19)]


def pet_masks() -> dict[str, np.ndarray]:
    """Segments of rater C's SEG, on the PET grid (z, y, x)."""
    gtvp = np.zeros(PET_SHAPE, bool)
    gtvp[1:3, 2:5, 3:9] = True
    gtvn = np.zeros(PET_SHAPE, bool)
    gtvn[2, 7:10, 10:14] = True
    other = np.zeros(PET_SHAPE, bool)
    other[0, 0:2, 0:2] = True
    return {"GTVp": gtvp, "GTVn": gtvn, "Spinal cord": other}


def pet_to_ct_nearest(pet_mask: np.ndarray) -> np.ndarray:
    """Expected nearest-neighbour resampling, by hand: the PET voxel whose centre is closest to each CT centre."""
    centres = F.voxel_centres(CT_SHAPE, CT_SPACING, CT_ORIGIN)
    idx = np.rint((centres - np.array(PET_ORIGIN)) / np.array(PET_SPACING)).astype(int)  # (x, y, z) indices
    inside = np.all((idx >= 0) & (idx < np.array(PET_SHAPE[::-1])), axis=-1)
    idx = np.clip(idx, 0, np.array(PET_SHAPE[::-1]) - 1)
    return np.where(inside, pet_mask[idx[..., 2], idx[..., 1], idx[..., 0]], 0)


def label_map(gtvp: np.ndarray, gtvn: np.ndarray) -> np.ndarray:
    label = np.where(gtvn, 2, 0).astype(np.uint8)
    label[gtvp.astype(bool)] = 1
    return label


def expected_labels() -> dict[str, np.ndarray]:
    centres = F.voxel_centres(CT_SHAPE, CT_SPACING, CT_ORIGIN)
    a_p = np.any([inside_rect(centres, *r) for r in A_GTVP], axis=0)
    a_n = np.any([inside_rect(centres, *r) for r in A_GTVN1], axis=0)
    a_n |= inside_rect(centres, *A_RING[0]) & ~inside_rect(centres, *A_RING[1])
    pet_centres = F.voxel_centres(PET_SHAPE, PET_SPACING, PET_ORIGIN)
    d_n = np.any([inside_rect(pet_centres, *r) for r in D_GTVN], axis=0)
    masks = pet_masks()
    return {
        "rater_A": label_map(a_p, a_n),
        "rater_C": pet_to_ct_nearest(label_map(masks["GTVp"], masks["GTVn"])),
        "rater_D": pet_to_ct_nearest(label_map(np.zeros_like(d_n), d_n)),
    }


def write_images(
    case_dir: Path, study, rng: np.random.Generator, pet_omit=()
) -> tuple[list, list, np.ndarray, np.ndarray]:
    """CT (files in shuffled order) and PET (per-slice RescaleSlope, SUV tags) series; returns datasets, HU, SUV."""
    hu = rng.integers(-1000, 1000, CT_SHAPE)
    ct = F.write_image_series(
        case_dir / "series" / "ct", study, "CT", hu + 1024, CT_SPACING, CT_ORIGIN, intercept=-1024.0,
        file_order=rng.permutation(CT_SHAPE[0]),
    )  # fmt: skip
    suv = rng.integers(0, 10, PET_SHAPE)
    factors = np.arange(1, PET_SHAPE[0] + 1)  # stored = SUV * (k + 1), slope = 2500 / (k + 1) -> A = 2500 * SUV
    pet = F.write_image_series(
        case_dir / "a" / "b" / "pet", study, "PT", suv * factors[:, None, None], PET_SPACING, PET_ORIGIN,
        slopes=[1 / SUV_PER_BQML / k for k in factors], extra=F.pet_suv_tags(omit=pet_omit), series_number=2,
        file_order=rng.permutation(PET_SHAPE[0]),
    )  # fmt: skip
    return ct, pet, hu, suv


@pytest.fixture(scope="module")
def dicom_root(tmp_path_factory):
    """CASE_A_nosuv (PET without PatientWeight / dose), CASE_B (good, 3-4 raters), CASE_C_offslice (bad contour)."""
    root = tmp_path_factory.mktemp("dicom_root")
    rng = np.random.default_rng(0)
    truth = {}

    case = root / "CASE_B"
    study = F.Study("B")
    ct, pet, hu, suv = write_images(case, study, rng)
    truth.update(hu=hu, suv=suv)
    F.write_image_series(  # a one-slice localizer: must be ignored
        case / "scout", study, "CT", np.zeros((1, 24, 32), int), CT_SPACING, CT_ORIGIN, series_number=9,
        extra={"ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]},
    )  # fmt: skip
    (case / "notes.txt").write_text("not a DICOM file\n")
    F.write_rtstruct(
        case / "rt" / "deep" / "rs_a.dcm", study, ct,
        {
            "GTVp": [rect(*r) for r in A_GTVP],
            "GTV_N1": [rect(*r) for r in A_GTVN1],
            "gtvn-2": [rect(*r) for r in A_RING],
            "Body": [rect(-29, 29, -19, 37, z) for z in (10, 12, 14)],
        },
        series_description="rater_A",
    )  # fmt: skip
    cx, cy, r, zs = B_CIRCLE
    F.write_rtstruct(
        case / "rt" / "rs_b.dcm", study, ct, {"Primary tumour": [circle(cx, cy, r, z) for z in zs]},
        structure_set_label="rater B",
    )  # fmt: skip
    F.write_rtstruct(case / "rs_d.dcm", study, pet, {"LN": [rect(*r) for r in D_GTVN]}, series_description="rater_D")
    if HAS_HIGHDICOM:
        F.write_seg(case / "seg" / "rater_c.dcm", pet, pet_masks(), series_description="rater_C")

    case = root / "CASE_A_nosuv"
    study = F.Study("A")
    ct, _, _, _ = write_images(case, study, rng, pet_omit=("PatientWeight", "RadionuclideTotalDose"))
    F.write_rtstruct(case / "rs.dcm", study, ct, {"GTVp": [rect(*A_GTVP[0])]}, series_description="rater_A")

    case = root / "CASE_C_offslice"
    study = F.Study("C")
    ct, _, _, _ = write_images(case, study, rng)
    F.write_rtstruct(case / "rs.dcm", study, ct, {"GTVp": [rect(-11, 9, -6.25, 6.25, 13.1)]}, series_description="A")

    (root / "CASE_D_empty").mkdir()  # no DICOM at all
    return root, truth


@pytest.fixture(scope="module")
def converted(dicom_root, tmp_path_factory):
    root, _ = dicom_root
    staging = tmp_path_factory.mktemp("staging")
    ids, errors = dicom_to_layout_a(root, staging)
    return staging, ids, errors


# ------------------------------------------------------------------------------------------------------ ROI names
@pytest.mark.parametrize(
    "name, structure",
    [
        ("GTVp", "GTVp"),
        ("GTV_P", "GTVp"),
        ("gtv-t", "GTVp"),
        ("GTVp1", "GTVp"),
        ("Primary tumour", "GTVp"),
        ("GTVn", "GTVn"),
        ("GTV_N_2", "GTVn"),
        ("GTV-LN", "GTVn"),
        ("LN_1", "GTVn"),
        ("lymph node II", "GTVn"),
        ("Body", None),
        ("PTV70", None),
        ("Clinical_CTV", None),
        ("GTV-PET", None),
    ],
)
def test_default_roi_patterns(name, structure):
    assert match_roi_label(name) == structure


def test_roi_patterns_override_and_errors():
    assert match_roi_label("N1", {"GTVn": r"^n\d$"}) == "GTVn"
    assert match_roi_label("GTVn", {"GTVn": r"^n\d$"}) is None  # the default GTVn pattern is replaced
    assert match_roi_label("GTVp", {"GTVn": None}) == "GTVp"
    assert match_roi_label("GTVn", {"GTVn": None}) is None
    with pytest.raises(ValueError, match=r"'Tumour node'.*several structures"):
        match_roi_label("Tumour node")
    with pytest.raises(ValueError, match=r"unknown structure 'GTV'"):
        match_roi_label("x", {"GTV": "gtv"})
    with pytest.raises(ValueError, match=r"roi_patterns\['GTVp'\].*not a valid regular expression"):
        match_roi_label("x", {"GTVp": "("})
    assert set(DEFAULT_ROI_PATTERNS) == {"GTVp", "GTVn"}


# ------------------------------------------------------------------------------------------------------------- SUV
def _pet_header(**kwargs) -> Dataset:
    overrides = {k: v for k, v in kwargs.items() if k in ("AcquisitionTime", "SeriesTime")}
    ds = Dataset()
    for key, value in F.pet_suv_tags(**{k: v for k, v in kwargs.items() if k not in overrides}).items():
        setattr(ds, key, value)
    for key, value in overrides.items():
        setattr(ds, key, value)
    ds.SeriesInstanceUID = "1.2.3"
    return ds


def test_suv_factor_known_answers():
    # 4e8 Bq decays for exactly one half-life (6000 s, 10:00 -> 11:40) to 2e8 Bq; 80 kg -> 80000 g / 2e8 Bq
    assert suv_bw_scale_factor(_pet_header()) == pytest.approx(4e-4, rel=1e-12)
    # ADMIN: images decay-corrected to the injection -> undecayed dose
    assert suv_bw_scale_factor(_pet_header(decay_correction="ADMIN")) == pytest.approx(2e-4, rel=1e-12)
    # two half-lives (10:00 -> 13:20), 70 kg, 3e8 Bq: 70000 / (3e8 / 4)
    ds = _pet_header(weight_kg=70, dose_bq=3e8, series_time="132000")
    assert suv_bw_scale_factor(ds) == pytest.approx(70_000 / 7.5e7, rel=1e-12)
    # injection before midnight (23:30), scan after (01:10): one half-life
    assert suv_bw_scale_factor(_pet_header(injection_time="233000", series_time="011000")) == pytest.approx(4e-4)
    # RadiopharmaceuticalStartDateTime wins over the time
    ds = _pet_header(injection_time="000000", series_time="011000")
    ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime = "20231231233000"
    assert suv_bw_scale_factor(ds) == pytest.approx(4e-4)
    # SeriesTime after the first AcquisitionTime (rewritten series time): the earliest acquisition time is used
    first, second = _pet_header(SeriesTime="120000", AcquisitionTime="114000"), _pet_header(SeriesTime="120000")
    second.AcquisitionTime = "115000"
    assert suv_bw_scale_factor([second, first]) == pytest.approx(4e-4)
    assert suv_bw_scale_factor(second) == pytest.approx(4e-4 * 2 ** (600 / 6000))
    # SeriesTime before the acquisitions: the series time is the reference
    assert suv_bw_scale_factor(_pet_header(SeriesTime="114000", AcquisitionTime="114500")) == pytest.approx(4e-4)


def test_suv_factor_errors_name_case_and_tags():
    ds = _pet_header(omit=("PatientWeight", "RadionuclideHalfLife"))
    with pytest.raises(
        ValueError, match=r"case 'P7'.*1\.2\.3.*PatientWeight \(0010,1030\), RadionuclideHalfLife \(0018"
    ):
        suv_bw_scale_factor(ds, case="P7")
    ds = _pet_header(omit=("RadiopharmaceuticalStartTime", "SeriesTime", "AcquisitionTime"))
    with pytest.raises(ValueError, match=r"RadiopharmaceuticalStartTime \(0018,1072\), SeriesTime \(0008,0031\)"):
        suv_bw_scale_factor(ds, case="P7")
    with pytest.raises(ValueError, match=r"Units \(0054,1001\) is 'CNTS'"):
        suv_bw_scale_factor(_pet_header(units="CNTS"))
    with pytest.raises(ValueError, match=r"DecayCorrection \(0054,1102\) is 'NONE'"):
        suv_bw_scale_factor(_pet_header(decay_correction="NONE"))
    with pytest.raises(ValueError, match=r"non-positive PatientWeight"):
        suv_bw_scale_factor(_pet_header(weight_kg=0))


# ------------------------------------------------------------------------------------------------- reading a case
@pytest.fixture(scope="module")
def case_b(dicom_root):
    root, truth = dicom_root
    return read_dicom_case(root / "CASE_B"), truth


def test_read_case_images(case_b):
    import itk

    data, truth = case_b
    assert data["case"] == "CASE_B"
    ct, pet = data["ct"], data["pet"]
    np.testing.assert_array_equal(itk.array_from_image(ct), truth["hu"])
    assert tuple(ct.GetOrigin()) == CT_ORIGIN and tuple(ct.GetSpacing()) == CT_SPACING
    np.testing.assert_allclose(itk.array_from_matrix(ct.GetDirection()), np.eye(3))
    np.testing.assert_allclose(itk.array_from_image(pet), truth["suv"], rtol=1e-5, atol=1e-5)
    assert tuple(pet.GetOrigin()) == PET_ORIGIN and tuple(pet.GetSpacing()) == PET_SPACING
    assert data["suv_factor"] == pytest.approx(SUV_PER_BQML)


def test_read_case_rtstruct_raters(case_b):
    import itk

    data, _ = case_b
    expected = expected_labels()
    assert {"rater_A", "rater_B", "rater_D"} <= set(data["raters"])
    assert set(data["raters"]) == {"rater_A", "rater_B", "rater_D"} | ({"rater_C"} if HAS_HIGHDICOM else set())
    for rater in ("rater_A", "rater_D"):
        label = data["raters"][rater]
        assert tuple(label.GetOrigin()) == CT_ORIGIN and tuple(label.GetSpacing()) == CT_SPACING
        np.testing.assert_array_equal(itk.array_from_image(label), expected[rater], err_msg=rater)
    assert np.count_nonzero(expected["rater_A"][5] == 2) > 0 and expected["rater_A"][5, 9, 10] == 0  # ring + hole

    # rater B: circle, right within one voxel of the boundary
    circle_label = itk.array_from_image(data["raters"]["rater_B"])
    assert set(np.unique(circle_label)) == {0, 1}
    cx, cy, r, zs = B_CIRCLE
    centres = F.voxel_centres(CT_SHAPE, CT_SPACING, CT_ORIGIN)
    dist = np.hypot(centres[..., 0] - cx, centres[..., 1] - cy)
    on_slice = np.isin(centres[..., 2], zs)
    ideal = on_slice & (dist < r)
    wrong = (circle_label == 1) != ideal
    assert np.all(np.abs(dist[wrong] - r) <= max(CT_SPACING[:2])) and on_slice[wrong].all()
    assert abs(int(ideal.sum()) - int((circle_label == 1).sum())) <= 0.15 * ideal.sum()


def test_read_case_seg_on_pet_grid_is_resampled(case_b):
    pytest.importorskip("highdicom", reason=HIGHDICOM_REASON)
    import itk

    data, _ = case_b
    label = itk.array_from_image(data["raters"]["rater_C"])
    expected = expected_labels()["rater_C"]
    assert label.shape == CT_SHAPE and set(np.unique(expected)) == {0, 1, 2}
    np.testing.assert_array_equal(label, expected)
    np.testing.assert_array_equal(label[4:6, 4:10, 6:18], 1)  # PET voxels [2, 2:5, 3:9] = 2x2x2 CT voxels each


def test_read_case_errors(tmp_path, dicom_root):
    root, _ = dicom_root
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_dicom_case(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"case 'CASE_D_empty': expected one CT series, found 0"):
        read_dicom_case(root / "CASE_D_empty")
    rng = np.random.default_rng(1)
    case = tmp_path / "DUP"
    study = F.Study("DUP")
    ct, _, _, _ = write_images(case, study, rng)
    for name in ("first.dcm", "second.dcm"):
        F.write_rtstruct(case / name, study, ct, {"GTVp": [rect(*A_GTVP[0])]}, series_description="same rater")
    with pytest.raises(ValueError, match=r"rater name 'same_rater' is used by both .*first\.dcm and .*second\.dcm"):
        read_dicom_case(case)
    assert set(read_dicom_case(case, rater_name_from="filename")["raters"]) == {"first", "second"}
    # a missing slice makes the CT stack irregular
    sorted(case.glob("series/ct/*.dcm"))[3].unlink()
    with pytest.raises(ValueError, match=r"case 'DUP': CT series .* not uniform"):
        read_dicom_case(case)


# ------------------------------------------------------------------------------------------------------ layout A
def test_layout_a_cases_and_errors(converted):
    staging, ids, errors = converted
    assert ids == ["CASE_B"]
    assert set(errors) == {"CASE_A_nosuv", "CASE_C_offslice", "CASE_D_empty"}
    assert "case 'CASE_A_nosuv'" in errors["CASE_A_nosuv"]
    assert "PatientWeight (0010,1030)" in errors["CASE_A_nosuv"]
    assert "RadionuclideTotalDose (0018,1074)" in errors["CASE_A_nosuv"]
    assert "rs.dcm" in errors["CASE_C_offslice"] and "z = [13.1] mm" in errors["CASE_C_offslice"]
    written = sorted(str(p.relative_to(staging)) for p in staging.rglob("*"))
    assert not [p for p in written if "CASE_A" in p or "CASE_C" in p or "CASE_D" in p or ".partial" in p]
    raters = ["rater_A", "rater_B", "rater_D"] + (["rater_C"] if HAS_HIGHDICOM else [])
    expected = ["imagesTr/CASE_B__CT.nii.gz", "imagesTr/CASE_B__PT.nii.gz"]
    expected += [f"labelsTr/{r}/CASE_B.nii.gz" for r in raters]
    assert sorted(p for p in written if p.endswith(".nii.gz")) == sorted(expected)


def test_layout_a_nifti_geometry_and_values(converted, dicom_root):
    staging, _, _ = converted
    _, truth = dicom_root
    # DICOM LPS -> NIfTI RAS: x and y flip sign
    ct_affine = np.diag([-CT_SPACING[0], -CT_SPACING[1], CT_SPACING[2], 1.0])
    ct_affine[:3, 3] = [-CT_ORIGIN[0], -CT_ORIGIN[1], CT_ORIGIN[2]]
    ct = nib.load(staging / "imagesTr" / "CASE_B__CT.nii.gz")
    assert ct.shape == CT_SHAPE[::-1] and ct.get_data_dtype() == np.int16
    np.testing.assert_allclose(ct.affine, ct_affine, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(ct.dataobj).transpose(2, 1, 0), truth["hu"])

    pet_affine = np.diag([-PET_SPACING[0], -PET_SPACING[1], PET_SPACING[2], 1.0])
    pet_affine[:3, 3] = [-PET_ORIGIN[0], -PET_ORIGIN[1], PET_ORIGIN[2]]
    pet = nib.load(staging / "imagesTr" / "CASE_B__PT.nii.gz")
    assert pet.shape == PET_SHAPE[::-1] and pet.get_data_dtype() == np.float32
    np.testing.assert_allclose(pet.affine, pet_affine, atol=1e-5)
    np.testing.assert_allclose(np.asarray(pet.dataobj).transpose(2, 1, 0), truth["suv"], rtol=1e-5, atol=1e-5)

    expected = expected_labels()
    for rater_dir in sorted((staging / "labelsTr").iterdir()):
        label = nib.load(rater_dir / "CASE_B.nii.gz")
        assert label.shape == ct.shape and label.get_data_dtype() == np.uint8, rater_dir.name
        np.testing.assert_allclose(label.affine, ct.affine, atol=1e-6)
        if rater_dir.name in expected:
            np.testing.assert_array_equal(np.asarray(label.dataobj).transpose(2, 1, 0), expected[rater_dir.name])


def test_layout_a_bad_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing_root"):
        dicom_to_layout_a(tmp_path / "missing_root", tmp_path / "out")


# --------------------------------------------------------------------------------------------- the CLI's --dicom
def test_hecktor_cli_dicom_end_to_end(dicom_root, tmp_path, capsys):
    """The command line reads DICOM, stages NIfTI, and processes it like NIfTI input; bad cases are listed."""
    import json

    from monai_lexu.datasets.hecktor.cli import main

    root, _ = dicom_root
    out = tmp_path / "out"
    geometry = ["--spacing", "2", "2", "2", "--box-mm", "64", "48", "32", "--folds", "1"]
    code = main(["--dicom", str(root), "--out", str(out), *geometry])
    assert code == 1  # three broken cases, reported
    datalist = json.loads((out / "datalist.json").read_text())
    cases = {c["id"]: c for c in datalist["training"]}
    assert list(cases) == ["CASE_B"] and len(cases["CASE_B"]["raters"]) == (4 if HAS_HIGHDICOM else 3)
    assert (out / "raw_dicom" / "imagesTr" / "CASE_B__PT.nii.gz").is_file()
    err = capsys.readouterr().err
    assert "CASE_A_nosuv" in err and "PatientWeight" in err and "CASE_C_offslice" in err
