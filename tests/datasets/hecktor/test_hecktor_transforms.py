"""Tests for monai_lexu.datasets.hecktor.transforms: neck crop (known box, padding, inverse), normalisation, chain."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Invertd

from monai_lexu.datasets.hecktor.recipe import DEFAULT_RECIPE
from monai_lexu.datasets.hecktor.transforms import (
    CTWindowNormalize,
    CTWindowNormalized,
    HecktorNeckCrop,
    HecktorNeckCropd,
    HecktorNormalize,
    HecktorNormalized,
    PETNormalize,
    PETNormalized,
    hecktor_box_preprocess,
    hecktor_neck_box,
    hecktor_preprocessing,
    resample_region,
)


def _pet(spacing: float = 1.0) -> MetaTensor:
    """PET (1, 40, 40, 30): body 1, a hot 'brain' block x 10..14, y 20..24, z 25..28 (=10) and a hot low spot."""
    pet = torch.zeros(1, 40, 40, 30)
    pet[0, 5:36, 5:36, :] = 1.0
    pet[0, 10:15, 20:25, 25:29] = 10.0
    pet[0, 30:33, 8:11, 3:6] = 20.0  # a hot tumour far below the top quarter: must not move the box
    return MetaTensor(pet, affine=torch.diag(torch.tensor([spacing, spacing, spacing, 1.0], dtype=torch.float64)))


def test_neck_box_known_answer():
    start, end, found = hecktor_neck_box(_pet(), (10, 10, 20))
    assert found
    np.testing.assert_array_equal(start, [7, 17, 9])  # centroid (12, 22), top slice 28 -> z [9, 29)
    np.testing.assert_array_equal(end, [17, 27, 29])


@pytest.mark.parametrize("spacing", [1.0, 2.0])
def test_neck_crop_converts_mm_with_pixdim(spacing):
    pet = _pet(spacing)
    img = MetaTensor(torch.arange(40 * 40 * 30, dtype=torch.float32).reshape(1, 40, 40, 30), affine=pet.affine)
    out = HecktorNeckCrop(box_mm=(10 * spacing, 10 * spacing, 20 * spacing))(img, source=pet)
    assert out.shape == (1, 10, 10, 20)
    torch.testing.assert_close(out.as_tensor(), img.as_tensor()[:, 7:17, 17:27, 9:29])
    # the affine moves the origin to the first kept voxel
    expected = pet.affine.clone()
    expected[:3, 3] = torch.tensor([7.0, 17.0, 9.0], dtype=torch.float64) * spacing
    torch.testing.assert_close(out.affine, expected)


def test_neck_crop_pads_outside_the_image():
    pet = _pet()
    out = HecktorNeckCrop(box_mm=(50, 50, 40))(pet)
    # start (12 - 25, 22 - 25, 29 - 40) = (-13, -3, -11), end (37, 47, 29)
    assert out.shape == (1, 50, 50, 40)
    torch.testing.assert_close(out[0, 13:50, 3:43, 11:40].as_tensor(), pet[0, 0:37, 0:40, 0:29].as_tensor())
    assert float(out[0, :13].abs().sum()) == 0.0 and float(out[0, :, :, :11].abs().sum()) == 0.0
    assert float(out[0, :, 43:].abs().sum()) == 0.0  # y end 47 > 40: padded at the far side too
    inv = HecktorNeckCrop(box_mm=(50, 50, 40))
    out2 = inv(pet)
    back = inv.inverse(out2)
    assert back.shape == pet.shape
    torch.testing.assert_close(back.affine, pet.affine)
    torch.testing.assert_close(back[0, 0:37, 0:40, 0:29].as_tensor(), pet[0, 0:37, 0:40, 0:29].as_tensor())


def test_neck_cropd_inverse_restores_shape_affine_and_box_values():
    pet = _pet(2.0)
    ct = MetaTensor(torch.randn(1, 40, 40, 30), affine=pet.affine.clone())
    crop = HecktorNeckCropd(keys=["ct", "pet"], source_key="pet", box_mm=(20, 20, 40), pad_value=[-1000.0, 0.0])
    d = crop({"ct": ct, "pet": pet})
    assert d["ct"].shape == d["pet"].shape == (1, 10, 10, 20)
    back = crop.inverse(d)
    for key, orig in (("ct", ct), ("pet", pet)):
        assert back[key].shape == orig.shape
        torch.testing.assert_close(back[key].affine, orig.affine)
        torch.testing.assert_close(back[key][:, 7:17, 17:27, 9:29].as_tensor(), orig[:, 7:17, 17:27, 9:29].as_tensor())
        assert float(back[key][:, :7].abs().sum()) == 0.0  # outside the box: the inverse pads with zeros


def test_neck_cropd_pad_value_and_errors():
    pet = _pet()
    ct = MetaTensor(torch.zeros(1, 40, 40, 30), affine=pet.affine.clone())
    d = HecktorNeckCropd(keys=["ct", "pet"], box_mm=(50, 50, 40), pad_value=[-1000.0, 0.0])({"ct": ct, "pet": pet})
    assert float(d["ct"][0, 0, 0, 0]) == -1000.0 and float(d["pet"][0, 0, 0, 0]) == 0.0
    with pytest.raises(ValueError, match="source key 'pet'"):
        HecktorNeckCropd(keys=["ct"])({"ct": ct})
    with pytest.raises(ValueError, match="'ct' has spatial shape"):
        HecktorNeckCropd(keys=["ct", "pet"])({"ct": ct[:, :20], "pet": pet})
    with pytest.raises(ValueError, match=r"\(C, X, Y, Z\)"):
        hecktor_neck_box(torch.zeros(4, 4), (2, 2))
    with pytest.raises(ValueError, match="not a MetaTensor"):
        HecktorNeckCrop()(torch.zeros(1, 4, 4, 4))


def test_neck_crop_warns_on_lost_labels_and_on_flat_pet(caplog):
    pet = _pet()
    label = MetaTensor(torch.zeros(1, 40, 40, 30), affine=pet.affine.clone())
    label[0, 0:2, 0:2, 0:2] = 1  # 8 voxels outside the box
    with caplog.at_level(logging.WARNING, logger="monai_lexu"):
        HecktorNeckCropd(keys=["pet", "label"], box_mm=(10, 10, 20), label_keys="label")({"pet": pet, "label": label})
    assert "8 non-zero voxels of 'label'" in caplog.text
    flat = MetaTensor(torch.ones(1, 20, 20, 10), affine=torch.eye(4, dtype=torch.float64))
    start, end, found = hecktor_neck_box(flat, (10, 10, 4))
    assert not found
    np.testing.assert_array_equal(start, [5, 5, 6])  # centred in x / y, ends at the top slice
    np.testing.assert_array_equal(end, [15, 15, 10])


def test_ct_window_known_answer_and_channel():
    x = torch.tensor([[-1000.0, -160.0, 40.0, 240.0, 1000.0]])
    torch.testing.assert_close(CTWindowNormalize()(x), torch.tensor([[0.0, 0.0, 0.5, 1.0, 1.0]]))
    y = CTWindowNormalize(window=(0, 100), out_range=(-1, 1), clip=False)(np.array([[50.0, 200.0]]))
    assert isinstance(y, np.ndarray)
    np.testing.assert_allclose(y, [[0.0, 3.0]])
    two = torch.stack([torch.tensor([40.0, 240.0]), torch.tensor([7.0, 8.0])])
    out = CTWindowNormalized(keys="image", channel=0)({"image": two})["image"]
    torch.testing.assert_close(out, torch.tensor([[0.5, 1.0], [7.0, 8.0]]))
    with pytest.raises(ValueError, match="lo < hi"):
        CTWindowNormalize(window=(10, 10))
    with pytest.raises(ValueError, match="channel 3 out of range"):
        CTWindowNormalize(channel=3)(two)


def test_pet_normalize_known_answer():
    x = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    std = float(torch.tensor([0.0, 1.0, 2.0, 3.0]).std())  # unbiased: 1.2910
    expected = torch.sigmoid(torch.tensor([[0.0, 1.0, 2.0, 3.0]]) / std)
    torch.testing.assert_close(PETNormalize()(x), expected)
    # unit-invariant: the same PET in another unit gives the same result
    torch.testing.assert_close(PETNormalize()(x * 1000.0 + 5.0), expected)
    torch.testing.assert_close(PETNormalize()(torch.full((1, 4), 3.0)), torch.full((1, 4), 0.5))
    suv = PETNormalized(keys="pet", mode="suv", suv_max=10.0)({"pet": torch.tensor([[-1.0, 5.0, 20.0]])})["pet"]
    torch.testing.assert_close(suv, torch.tensor([[0.0, 0.5, 1.0]]))
    two = torch.stack([torch.tensor([40.0, 240.0]), torch.tensor([0.0, 2.0])])
    out = PETNormalize(channel=1)(two)
    torch.testing.assert_close(out[0], two[0])
    torch.testing.assert_close(out[1], torch.sigmoid(torch.tensor([0.0, 2.0]) / float(torch.tensor([0.0, 2.0]).std())))
    with pytest.raises(ValueError, match="'sigmoid' or 'suv'"):
        PETNormalize(mode="zscore")


def test_hecktor_normalize_follows_the_recipe():
    image = torch.stack([torch.tensor([-160.0, 40.0, 240.0]), torch.tensor([-1.0, 5.0, 20.0])])
    default = HecktorNormalize()(image)
    torch.testing.assert_close(default[0], torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(default[1], PETNormalize()(image[1:])[0])
    recipe = DEFAULT_RECIPE.replace(ct_window=(40.0, 240.0), pet_mode="suv", suv_max=10.0)
    out = HecktorNormalized(keys="image", recipe=recipe)({"image": image})["image"]
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.5, 1.0]]))
    with pytest.raises(ValueError, match="different channels"):
        HecktorNormalize(ct_channel=1, pet_channel=1)
    with pytest.raises(TypeError, match="HecktorRecipe"):
        HecktorNormalize({"spacing": [1, 1, 1]})


def _write_petct(tmp_path):
    """Small CT (LPS-like affine, 2 x 2 x 3 mm) and PET (4 mm, other origin) with a hot head at the top."""
    ct_aff = np.diag([-2.0, -2.0, 3.0, 1.0])
    ct_aff[:3, 3] = [30.0, 28.0, -30.0]
    ct = np.full((30, 28, 20), -1000.0, np.float32)
    ct[5:25, 4:24, :] = 40.0
    pet_aff = np.diag([4.0, 4.0, 4.0, 1.0])
    pet_aff[:3, 3] = [-32.0, -30.0, -32.0]
    pet = np.zeros((16, 16, 16), np.float32)
    pet[3:13, 3:13, 1:14] = 1.0
    pet[6:10, 6:10, 10:13] = 8.0  # "brain": world x [-8, 4], y [-6, 6], z [8, 16] mm
    pet[8, 7, 4] = 30.0  # a hot spot at world (0, -2, -16) mm
    label = np.zeros((30, 28, 20), np.uint8)
    label[12:16, 12:16, 3:7] = 1
    label[8:10, 8:10, 8:10] = 2
    paths = {"ct": tmp_path / "ct.nii.gz", "pet": tmp_path / "pet.nii.gz", "rater_0": tmp_path / "r0.nii.gz"}
    nib.save(nib.Nifti1Image(ct, ct_aff), paths["ct"])
    nib.save(nib.Nifti1Image(pet, pet_aff), paths["pet"])
    nib.save(nib.Nifti1Image(label, ct_aff), paths["rater_0"])
    return {k: str(v) for k, v in paths.items()}, ct_aff


def test_preprocessing_chain_with_labels(tmp_path):
    paths, _ = _write_petct(tmp_path)
    recipe = DEFAULT_RECIPE.replace(spacing=(2, 2, 2), box_mm=(40, 40, 50))
    pre = hecktor_preprocessing(recipe, label_keys=["rater_0"])
    d = pre(paths)
    assert d["image"].shape == (2, 20, 20, 25)
    for key in ("ct", "pet", "rater_0"):
        assert d[key].shape == (1, 20, 20, 25)
        torch.testing.assert_close(d[key].affine, d["image"].affine)
    # the image is the recipe's normalisation (HecktorNormalize, as at training) of the unnormalised CT and PET
    torch.testing.assert_close(d["image"][0], CTWindowNormalize(recipe.ct_window)(d["ct"])[0].as_tensor())
    torch.testing.assert_close(d["image"][1], PETNormalize(recipe.pet_mode)(d["pet"])[0].as_tensor())
    assert float(d["ct"].min()) == -1000.0  # the CT key itself stays in HU
    assert float(d["image"][0].min()) >= 0.0 and float(d["image"][0].max()) <= 1.0
    assert float(d["image"][1].min()) >= 0.5 and float(d["image"][1].max()) <= 1.0
    assert set(torch.unique(d["rater_0"]).tolist()) == {0.0, 1.0, 2.0}
    # RAS output, and the PET hot spot stays at its physical position (PET resampled in world space)
    affine = d["pet"].affine.numpy()
    assert np.all(np.diag(affine)[:3] > 0)
    raw = hecktor_preprocessing(recipe, normalize=False, image_key=None)(paths)
    idx = np.unravel_index(int(torch.argmax(raw["pet"][0])), raw["pet"].shape[1:])
    world = affine[:3, :3] @ np.asarray(idx) + affine[:3, 3]
    np.testing.assert_allclose(world, [0.0, -2.0, -16.0], atol=2.0)
    # top of the box = top slice of the brain mask (z <= 16 mm after resampling), 50 mm downward
    assert affine[2, 3] + 2.0 * 24 == pytest.approx(16.0, abs=2.0)


def test_preprocessing_inverse_restores_original_ct_grid(tmp_path):
    paths, ct_aff = _write_petct(tmp_path)
    pre = hecktor_preprocessing(DEFAULT_RECIPE.replace(spacing=(1.5, 1.5, 1.5), box_mm=(90, 90, 90)))
    d = pre({"ct": paths["ct"], "pet": paths["pet"]})
    assert d["image"].shape[0] == 2
    d["pred"] = MetaTensor(d["image"][:1].as_tensor().clone(), affine=d["image"].affine.clone())
    d["pred"].applied_operations = list(d["ct"].applied_operations)
    out = Invertd(keys="pred", transform=pre, orig_keys="ct", nearest_interp=False)(d)["pred"]
    assert out.shape == (1, 30, 28, 20)
    np.testing.assert_allclose(out.affine.numpy(), ct_aff, atol=1e-5)
    np.testing.assert_allclose(out.pixdim.numpy(), [2.0, 2.0, 3.0], atol=1e-6)
    # values come back too: inside the box (z up to the top of the PET "brain", 16 mm, i.e. CT slice 15) the inverted
    # normalised CT equals window(CT) but for the interpolation at the body edges; above it, the crop removed the CT
    expected = CTWindowNormalize()(nib.load(paths["ct"]).get_fdata()[None].astype(np.float32))
    close = np.abs(out.numpy() - expected) < 0.05
    assert close[..., :15].all(axis=(0, 3))[6:24, 5:23].all()  # body interior, every slice up to the box top
    assert float(close[..., :15].mean()) > 0.9
    assert float(np.abs(out.numpy()[..., 17:]).max()) == 0.0  # above the box: padded back with zeros
    # a multi-channel prediction (B, 2L, *S) of one case inverts the same way
    d["pred"] = MetaTensor(torch.rand(4, *d["image"].shape[1:]), affine=d["image"].affine.clone())
    d["pred"].applied_operations = list(d["ct"].applied_operations)
    out = Invertd(keys="pred", transform=pre, orig_keys="ct")(d)["pred"]
    assert out.shape == (4, 30, 28, 20)
    np.testing.assert_allclose(out.affine.numpy(), ct_aff, atol=1e-5)


def test_preprocessing_rejects_duplicate_keys_and_bad_arguments():
    with pytest.raises(ValueError, match="distinct"):
        hecktor_preprocessing(ct_key="x", pet_key="x")
    with pytest.raises(ValueError, match="needs image_key"):
        hecktor_preprocessing(image_key=None)
    with pytest.raises(TypeError, match="HecktorRecipe"):
        hecktor_preprocessing((1.0, 1.0, 1.0))


# ------------------------------------------------------------------ box-only resampling (issue 11, item 5)
def _tie_voxels(out: MetaTensor, src_affine: np.ndarray) -> np.ndarray:
    """(N,) bool per output voxel: its sample lies exactly (1e-9) midway between two source voxels in some axis."""
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in out.shape[1:]], indexing="ij"), -1).reshape(-1, 3)
    to_src = np.linalg.solve(src_affine, out.affine.numpy())
    src = idx @ to_src[:3, :3].T + to_src[:3, 3]
    return (np.abs(np.abs(src - np.floor(src)) - 0.5) < 1e-9).any(1)


def _ras_affine(path: str) -> np.ndarray:
    from monai.transforms import LoadImage, Orientation

    return Orientation("RAS", labels=None)(LoadImage(image_only=True, ensure_channel_first=True)(path)).affine.numpy()


@pytest.mark.parametrize(
    "spacing, box_mm, chunk",
    [((2, 2, 2), (40, 40, 50), 2**22), ((1.3, 1.1, 1.7), (30, 36, 40), 500), ((2, 2, 2), (90, 90, 90), 700)],
    ids=["same-grid-box-inside", "odd-spacing-small-chunks", "box-larger-than-the-image"],
)
def test_box_preprocess_equals_the_whole_volume_chain(tmp_path, spacing, box_mm, chunk):
    """hecktor_box_preprocess (resampling only the box) gives the whole-volume chain's box, affine and values: CT and
    PET within 1e-4 (float64 sampling coordinates computed on another grid), masks equal except where a sample lies
    exactly midway between two source voxels (a tie that rounding decides either way); padding outside the grid too."""
    paths, _ = _write_petct(tmp_path)
    recipe = DEFAULT_RECIPE.replace(spacing=spacing, box_mm=box_mm)
    whole = hecktor_preprocessing(recipe, label_keys=["rater_0"], normalize=False, image_key=None)(paths)
    box = hecktor_box_preprocess(paths, recipe, label_keys=["rater_0"], max_chunk_voxels=chunk)
    for key in ("ct", "pet", "rater_0"):
        assert box[key].shape == whole[key].shape
        np.testing.assert_allclose(box[key].affine.numpy(), whole[key].affine.numpy(), atol=1e-9)
    np.testing.assert_allclose(box["ct"].numpy(), whole["ct"].numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(box["pet"].numpy(), whole["pet"].numpy(), atol=1e-4, rtol=0)
    differ = (box["rater_0"].numpy() != whole["rater_0"].numpy()).reshape(-1)
    assert not np.any(differ & ~_tie_voxels(box["rater_0"], _ras_affine(paths["rater_0"])))
    assert float(whole["rater_0"].sum()) > 0 and set(torch.unique(box["rater_0"]).tolist()) <= {0.0, 1.0, 2.0}
    if box_mm == (90, 90, 90):  # the box leaves the grid: CT padded with air, PET and masks with 0, as the chain
        assert float(box["ct"].min()) == -1000.0 and (box["ct"] == -1000.0).sum() > box["ct"].numel() // 4
        assert np.all(box["box_start"] < 0)


def test_resample_region_is_the_crop_of_the_whole_resampling():
    from monai.transforms import SpatialResample

    g = torch.Generator().manual_seed(0)
    img = MetaTensor(torch.rand(1, 9, 8, 7, generator=g) * 100, affine=torch.diag(torch.tensor([2.0, 2.5, 3.0, 1.0])))
    dst = np.diag([1.1, 1.3, 0.9, 1.0])
    dst[:3, 3] = [-1.0, 0.5, 2.0]
    for mode, padding in (("bilinear", "border"), ("bilinear", "zeros"), ("nearest", "zeros")):
        full = SpatialResample(mode=mode, padding_mode=padding, dtype=torch.float64)(
            img, dst_affine=torch.as_tensor(dst), spatial_size=(20, 18, 26)
        )
        part = resample_region(img, dst, (3, 0, 5), (17, 12, 26), mode, padding, max_voxels=100)  # 7 chunks
        assert part.shape == (1, 14, 12, 21) and part.dtype == torch.float32
        torch.testing.assert_close(part, full[:, 3:17, 0:12, 5:26].as_tensor(), atol=1e-4, rtol=0)
        assert resample_region(img, dst, (0, 0, 0), (0, 4, 4), mode, padding).shape == (1, 0, 4, 4)


def test_box_preprocess_warns_on_mask_voxels_outside_the_box_and_checks_arguments(tmp_path, caplog):
    paths, ct_aff = _write_petct(tmp_path)
    label = np.zeros((30, 28, 20), np.uint8)
    label[0:2, 0:2, 0:2] = 1  # 8 voxels in a corner of the CT, far from the box
    label[14, 14, 12] = 1  # inside
    nib.save(nib.Nifti1Image(label, ct_aff), paths["rater_0"])
    recipe = DEFAULT_RECIPE.replace(spacing=(2, 2, 2), box_mm=(20, 20, 20))
    with caplog.at_level(logging.WARNING, logger="monai_lexu"):
        out = hecktor_box_preprocess(paths, recipe, label_keys="rater_0")
    assert "8 non-zero voxels of 'rater_0'" in caplog.text
    assert int(out["rater_0"].sum()) >= 1
    with pytest.raises(ValueError, match="distinct"):
        hecktor_box_preprocess(paths, recipe, label_keys="ct")
    with pytest.raises(TypeError, match="HecktorRecipe"):
        hecktor_box_preprocess(paths, {"spacing": (1, 1, 1)})
