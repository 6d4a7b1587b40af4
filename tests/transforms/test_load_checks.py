"""Bad inputs of the loaders (issue 9): CheckedLoadImaged, CheckFinited and LoadRatersd name the case and the file, and
write nothing into the sample when they refuse it."""

from __future__ import annotations

import copy

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from monai_lexu.datasets.hecktor import HecktorNormalized
from monai_lexu.transforms import CheckedLoadImaged, CheckFinited, LoadRatersd, MapStructuresd, RaterStatsd

HECKTOR = {"GTVp": [1], "GTVn": [2]}
RIGA = {"disc": "nonzero", "cup": [255]}
SHAPE = (6, 5, 4)


def _nifti(path, array, affine=None) -> str:
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), path)
    return str(path)


def _truncate(path) -> None:
    data = open(path, "rb").read()
    open(path, "wb").write(data[: int(len(data) * 0.6)])


@pytest.fixture
def volume_case(tmp_path):
    """A 3D CT/PET case with two raters on the CT grid (identity affine)."""
    rng = np.random.default_rng(0)
    ct = _nifti(tmp_path / "ct.nii.gz", rng.normal(size=SHAPE).astype(np.float32) * 100)
    pet = _nifti(tmp_path / "pet.nii.gz", rng.random(SHAPE).astype(np.float32) * 50)
    raters = []
    for k in range(2):
        m = np.zeros(SHAPE, np.uint8)
        m[1:4, 1:3, 1 + k : 3] = 1
        m[4, 3, 2] = 2
        raters.append(_nifti(tmp_path / f"r{k}.nii.gz", m))
    return {"id": "P-1", "image": [ct, pet], "raters": raters}


def _load(sample: dict, **kwargs) -> dict:
    d = CheckedLoadImaged(keys="image", ensure_channel_first=True, image_only=True)(sample)
    return LoadRatersd(keys="raters", structures=kwargs.pop("structures", HECKTOR), **kwargs)(d)


def _refused(sample: dict, error: type, pattern: str, **kwargs) -> None:
    """The loader raises ``error`` matching ``pattern`` and the sample is unchanged (nothing half-written)."""
    before = copy.deepcopy(sample)
    with pytest.raises(error, match=pattern):
        _load(sample, **kwargs)
    assert sample == before


def test_good_volume_case_loads(volume_case):
    out = _load(volume_case)
    assert out["image"].shape == (2, *SHAPE) and out["raters"].shape == (2, 2, *SHAPE)


# ------------------------------------------------------------------------------------------- images (item 1 and 4)
@pytest.mark.parametrize("channel, bad", [(0, np.nan), (1, np.nan), (1, np.inf), (0, -np.inf)])
def test_non_finite_image_names_the_file(volume_case, channel, bad):
    path = volume_case["image"][channel]
    data = np.asarray(nib.load(path).dataobj).copy()
    data[2, 2, 2] = bad
    _nifti(path, data)
    name = path.rsplit("/", 1)[1].replace(".", r"\.")
    _refused(volume_case, ValueError, rf"case 'P-1': 'image' is not finite: .*{name}: .*voxel")


def test_check_finited_names_meta_file(volume_case):
    d = CheckedLoadImaged(keys="image", image_only=True, ensure_channel_first=True, check_finite=False)(volume_case)
    d["image"][1, 0, 0, 0] = float("nan")
    with pytest.raises(
        ValueError, match=r"case 'P-1': 'image' loaded from .*ct\.nii\.gz is not finite.*channel\(s\) \[1\]"
    ):
        CheckFinited(keys="image")(d)
    d["image"][1, 0, 0, 0] = 0.0
    assert CheckFinited(keys="image")(d)["image"] is d["image"]
    # a plain dict entry: the <key>_meta_dict names the file
    arr = {"x": np.array([[1.0, np.inf]]), "x_meta_dict": {"filename_or_obj": "/data/x.nii.gz"}}
    with pytest.raises(
        ValueError, match=r"'x' loaded from /data/x\.nii\.gz is not finite \(channel\(s\) \[0\]: 0 NaN and 1 Inf"
    ):
        CheckFinited(keys="x", id_key=None)(arr)


@pytest.mark.parametrize("channel", [0, 1])
def test_truncated_image_names_the_file(volume_case, channel):
    _truncate(volume_case["image"][channel])
    name = volume_case["image"][channel].rsplit("/", 1)[1].replace(".", r"\.")
    _refused(volume_case, ValueError, rf"case 'P-1': cannot read .*{name}: truncated")


def test_truncated_single_image_names_the_file(tmp_path):
    path = _nifti(tmp_path / "one.nii.gz", np.random.default_rng(0).random((30, 30, 30)).astype(np.float32))
    _truncate(path)
    with pytest.raises(ValueError, match=r"case 'X': cannot read .*one\.nii\.gz: truncated"):
        CheckedLoadImaged(keys="image", ensure_channel_first=True)({"id": "X", "image": path})


def test_4d_ct_next_to_3d_pet_names_both_files(volume_case):
    ct4 = np.zeros((*SHAPE, 2), np.float32)
    _nifti(volume_case["image"][0], ct4)
    _refused(
        volume_case,
        ValueError,
        r"case 'P-1': cannot stack the image files .*ct\.nii\.gz \(6, 5, 4, 2\), .*pet\.nii\.gz",
    )


def test_spatial_dims_check(volume_case):
    loader = CheckedLoadImaged(keys="image", ensure_channel_first=True, spatial_dims=2)
    with pytest.raises(ValueError, match=r"case 'P-1': 'image' loaded from .*ct\.nii\.gz.*2 spatial dimensions"):
        loader(volume_case)


def test_all_zero_image_is_valid(volume_case):
    """An all-zero image (e.g. an empty PET) is valid data: it loads and normalises to finite values."""
    for path in volume_case["image"]:
        _nifti(path, np.zeros(SHAPE, np.float32))
    out = _load(volume_case)
    assert float(out["image"].abs().sum()) == 0.0
    norm = HecktorNormalized(keys="image")(out)["image"]
    assert bool(torch.isfinite(norm).all())
    np.testing.assert_allclose(norm[1].numpy(), 0.5)  # a constant PET gives sigmoid(0)


# ------------------------------------------------------------------------------------------- raters (items 1, 2, 4)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_rater_names_the_file(volume_case, bad):
    m = np.zeros(SHAPE, np.float32)
    m[0, 0, 0] = bad
    _nifti(volume_case["raters"][1], m)
    _refused(volume_case, ValueError, r"case 'P-1': rater file .*r1\.nii\.gz holds 1 non-finite value")


def test_truncated_rater_names_the_file(volume_case):
    big = np.random.default_rng(0).integers(0, 3, (40, 40, 40)).astype(np.uint8)
    _nifti(volume_case["raters"][0], big)
    _truncate(volume_case["raters"][0])
    _refused(volume_case, ValueError, r"case 'P-1': cannot read rater file .*r0\.nii\.gz: truncated")


@pytest.mark.parametrize("shift, ok", [([10.0, 0.0, 0.0], False), ([0.0, 0.0, -2.5], False), ([0.0, 5e-4, 0.0], True)])
def test_rater_affine_checked_with_tolerance(volume_case, shift, ok):
    data = np.asarray(nib.load(volume_case["raters"][1]).dataobj)
    affine = np.eye(4)
    affine[:3, 3] = shift
    _nifti(volume_case["raters"][1], data, affine)
    if ok:
        assert _load(volume_case)["raters"].shape == (2, 2, *SHAPE)
        return
    offset = f"{np.linalg.norm(shift):.4g}"
    _refused(
        volume_case,
        ValueError,
        rf"case 'P-1': rater file .*r1\.nii\.gz is not on the image's grid \(.*ct\.nii\.gz\).*{offset} mm apart",
    )
    # the check can be switched off explicitly
    assert _load(volume_case, affine_tol=None)["raters"].shape == (2, 2, *SHAPE)


def test_rater_spacing_mismatch_is_refused(volume_case):
    data = np.asarray(nib.load(volume_case["raters"][0]).dataobj)
    _nifti(volume_case["raters"][0], data, np.diag([1.0, 1.0, 2.0, 1.0]))
    _refused(volume_case, ValueError, r"r0\.nii\.gz is not on the image's grid.*differs by up to 1 ")


def test_png_raters_skip_the_affine_check(tmp_path):
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(tmp_path / "img.png")
    Image.fromarray(np.full((5, 7), 255, np.uint8)).save(tmp_path / "m.png")
    out = _load({"id": "c", "image": str(tmp_path / "img.png"), "raters": [str(tmp_path / "m.png")]}, structures=RIGA)
    assert out["raters"].shape == (1, 2, 7, 5) and float(out["raters"].sum()) == 70.0


# ------------------------------------------------------------------------------------------------ the catalogue
@pytest.mark.parametrize("structures", [HECKTOR, RIGA])
def test_float_rater_mask_with_half_values_is_refused(volume_case, structures):
    """Choice: a soft / probabilistic mask (0.5) is refused, naming the file; it is never silently binarised."""
    m = np.zeros(SHAPE, np.float32)
    m[1:3, 1:3, 1:3] = 0.5
    m[0, 0, 0] = 1.0
    _nifti(volume_case["raters"][0], m)
    _refused(volume_case, ValueError, r"case 'P-1': rater file .*r0\.nii\.gz holds non-integer values \[0\.5\]",
             structures=structures)  # fmt: skip


def test_mixed_dtype_raters_compare_values_not_dtypes(volume_case, tmp_path):
    """Choice: integer label values are accepted from any dtype; uint8 / int16 / float32 raters of one case mix."""
    reference = _load(copy.deepcopy(volume_case))["raters"]
    data = [np.asarray(nib.load(p).dataobj) for p in volume_case["raters"]]
    mixed = dict(volume_case)
    mixed["raters"] = [
        _nifti(tmp_path / "f32.nii.gz", data[0].astype(np.float32)),
        _nifti(tmp_path / "i16.nii.gz", data[1].astype(np.int16)),
        _nifti(tmp_path / "f64.nii.gz", data[0].astype(np.float64)),
    ]
    out = _load(mixed)["raters"]
    assert out.dtype == torch.float32
    torch.testing.assert_close(out[:2].as_tensor(), reference.as_tensor())
    torch.testing.assert_close(out[2].as_tensor(), reference[0].as_tensor())
    # a float rater of the same case that holds 0.5 is still refused, naming it
    m = data[1].astype(np.float32)
    m[0, 0, 0] = 0.5
    mixed["raters"][1] = _nifti(tmp_path / "i16.nii.gz", m)
    _refused(mixed, ValueError, r"rater file .*i16\.nii\.gz holds non-integer values \[0\.5\]")


def test_five_raters_next_to_two_exact_statistics(tmp_path):
    """5 raters where other cases have 2 is valid by design: the exact soft label and the ddof=1 variance."""
    votes = [1, 1, 1, 0, 0]  # voxel (0, 0, 0): 3 of 5 raters draw GTVp
    ct = _nifti(tmp_path / "ct.nii.gz", np.zeros((2, 2, 2), np.float32))
    files = []
    for k, v in enumerate(votes):
        m = np.zeros((2, 2, 2), np.uint8)
        m[0, 0, 0] = v
        m[1, 1, 1] = 2  # every rater draws the node here
        files.append(_nifti(tmp_path / f"five{k}.nii.gz", m))
    out = RaterStatsd(keys="raters")(_load({"id": "five", "image": ct, "raters": files}))
    assert out["raters"].shape == (5, 2, 2, 2, 2) and out["rater_valid"].tolist() == [True] * 5
    assert float(out["soft_label"][0, 0, 0, 0]) == pytest.approx(0.6)
    assert float(out["rater_var"][0, 0, 0, 0]) == pytest.approx(0.3)  # sum((x - 0.6)^2) / 4 = 1.2 / 4
    assert float(out["soft_label"][1, 1, 1, 1]) == 1.0 and float(out["rater_var"][1, 1, 1, 1]) == 0.0
    assert float(out["soft_label"].sum()) == pytest.approx(1.6) and float(out["rater_var"].sum()) == pytest.approx(0.3)
    two = RaterStatsd(keys="raters")(_load({"id": "two", "image": ct, "raters": files[2:4]}))
    assert float(two["soft_label"][0, 0, 0, 0]) == 0.5 and float(two["rater_var"][0, 0, 0, 0]) == pytest.approx(0.5)


@pytest.mark.parametrize("ndim", [2, 3])
def test_label_value_outside_the_mapping_is_refused(tmp_path, ndim):
    """LoadRatersd (3D volumes and 2D NIfTI slices) and MapStructuresd refuse a value outside the mapping."""
    shape = SHAPE[:ndim]
    image = _nifti(tmp_path / "img.nii.gz", np.zeros(shape, np.float32))
    m = np.zeros(shape, np.uint8)
    m[(0,) * ndim] = 3
    bad = _nifti(tmp_path / "bad.nii.gz", m)
    sample = {"id": "V", "image": image, "raters": [bad]}
    _refused(sample, ValueError, r"mask values \[3\] in case 'V': rater file .*bad\.nii\.gz are not in the structure")
    with pytest.raises(ValueError, match=r"mask values \[3\]"):
        MapStructuresd(keys="m", structures=HECKTOR)({"m": torch.as_tensor(m)[None]})


def test_missing_image_names_case_and_file(volume_case):
    volume_case["image"][1] = volume_case["image"][1].replace("pet", "gone")
    _refused(volume_case, FileNotFoundError, r"case 'P-1': No such file or no access: '.*gone\.nii\.gz'")
