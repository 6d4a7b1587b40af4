from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset, MetaTensor
from monai.transforms import Compose, LoadImaged, RandFlipd, Resized
from monai.transforms.traits import RandomizableTrait
from monai.utils import set_determinism
from PIL import Image

from monai_lexu.transforms import (
    FlattenRatersd,
    FuseRatersd,
    LoadRatersd,
    MapStructuresd,
    RandFuseRatersd,
    RaterStatsd,
    UnflattenRatersd,
)

RIGA = {"disc": "nonzero", "cup": [255]}
HECKTOR = {"GTVp": [1], "GTVn": [2]}


def _riga_masks() -> list[np.ndarray]:
    """Three 5x7 (H x W) rater masks with values {0, 150, 255}."""
    masks = []
    for k in range(3):
        m = np.zeros((5, 7), dtype=np.uint8)
        m[1:4, 1 : 5 + k] = 150
        m[2, 2 : 3 + k] = 255
        masks.append(m)
    return masks


@pytest.fixture
def png_case(tmp_path):
    img = np.arange(35, dtype=np.uint8).reshape(5, 7)
    Image.fromarray(img).save(tmp_path / "img.png")
    files = []
    for k, m in enumerate(_riga_masks()):
        files.append(str(tmp_path / f"rater{k}.png"))
        Image.fromarray(m).save(files[-1])
    return {"id": "case1", "image": str(tmp_path / "img.png"), "raters": files, "fold": 0}


def _load(sample: dict, **kwargs) -> dict:
    d = LoadImaged(keys="image", ensure_channel_first=True)(sample)
    return LoadRatersd(keys="raters", structures=kwargs.pop("structures", RIGA), **kwargs)(d)


def test_load_raters_png(png_case):
    out = _load(png_case)
    raters = out["raters"]
    assert isinstance(raters, MetaTensor) and raters.dtype == torch.float32
    # MONAI's PIL reader gives (W, H); raters follow the image orientation
    assert out["image"].shape == (1, 7, 5) and raters.shape == (3, 2, 7, 5)
    for k, m in enumerate(_riga_masks()):
        np.testing.assert_array_equal(raters[k, 0].numpy(), (m != 0).T)
        np.testing.assert_array_equal(raters[k, 1].numpy(), (m == 255).T)
    assert out["rater_valid"].dtype == torch.bool and out["rater_valid"].tolist() == [True] * 3
    assert str(raters.meta["filename_or_obj"]).endswith("rater0.png")
    assert out["id"] == "case1" and out["fold"] == 0


def test_load_raters_nifti_3d_keeps_rater_affine(tmp_path):
    rng = np.random.default_rng(0)
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    nib.save(nib.Nifti1Image(rng.random((4, 5, 6)).astype(np.float32), affine), tmp_path / "ct.nii.gz")
    masks = [rng.integers(0, 3, size=(4, 5, 6)).astype(np.uint8) for _ in range(2)]
    files = []
    for k, m in enumerate(masks):
        files.append(str(tmp_path / f"r{k}.nii.gz"))
        nib.save(nib.Nifti1Image(m, affine), files[-1])
    out = _load({"image": str(tmp_path / "ct.nii.gz"), "raters": files}, structures=HECKTOR)
    assert out["raters"].shape == (2, 2, 4, 5, 6)
    for k, m in enumerate(masks):
        np.testing.assert_array_equal(out["raters"][k, 0].numpy(), m == 1)
        np.testing.assert_array_equal(out["raters"][k, 1].numpy(), m == 2)
    np.testing.assert_allclose(out["raters"].affine.numpy(), affine)


def test_load_raters_accepts_grey_rgb_rejects_coloured(png_case, tmp_path):
    m = _riga_masks()[0]
    Image.fromarray(np.stack([m] * 3, axis=-1)).save(tmp_path / "rgb.png")
    out = _load({**png_case, "raters": [str(tmp_path / "rgb.png")]})
    np.testing.assert_array_equal(out["raters"][0, 1].numpy(), (m == 255).T)
    coloured = np.stack([m, np.zeros_like(m), m], axis=-1)
    Image.fromarray(coloured).save(tmp_path / "col.png")
    with pytest.raises(ValueError, match="col.png.*differing channels"):
        _load({**png_case, "raters": [str(tmp_path / "col.png")]})


def _assert_untouched(sample: dict, files: list[str]) -> None:
    assert sample["raters"] == files and "rater_valid" not in sample


def test_load_raters_missing_file(png_case, tmp_path):
    d = LoadImaged(keys="image", ensure_channel_first=True)(png_case)
    files = [*png_case["raters"], str(tmp_path / "nope.png")]
    d["raters"] = list(files)
    with pytest.raises(FileNotFoundError, match=r"case 'case1'.*nope\.png"):
        LoadRatersd(structures=RIGA)(d)
    _assert_untouched(d, files)


def test_load_raters_zero_raters(png_case):
    d = LoadImaged(keys="image", ensure_channel_first=True)(png_case)
    d["raters"] = []
    with pytest.raises(ValueError, match=r"case 'case1'.*zero raters"):
        LoadRatersd(structures=RIGA)(d)


def test_load_raters_shape_mismatch(png_case, tmp_path):
    Image.fromarray(np.zeros((6, 7), dtype=np.uint8)).save(tmp_path / "big.png")
    d = LoadImaged(keys="image", ensure_channel_first=True)(png_case)
    files = [*png_case["raters"], str(tmp_path / "big.png")]
    d["raters"] = list(files)
    with pytest.raises(ValueError, match=r"case 'case1'.*big\.png.*\(7, 6\).*\(7, 5\)"):
        LoadRatersd(structures=RIGA)(d)
    _assert_untouched(d, files)


def test_load_raters_values_outside_mapping(png_case, tmp_path):
    m = _riga_masks()[0]
    m[0, 0] = 77
    Image.fromarray(m).save(tmp_path / "odd.png")
    d = LoadImaged(keys="image", ensure_channel_first=True)(png_case)
    files = [*png_case["raters"], str(tmp_path / "odd.png")]
    d["raters"] = list(files)
    with pytest.raises(ValueError, match=r"\[77\].*odd\.png.*'cup'"):
        LoadRatersd(structures={"rim": [150], "cup": [255]})(d)
    _assert_untouched(d, files)


def test_load_raters_needs_loaded_image(png_case):
    with pytest.raises(ValueError, match="LoadImaged"):
        LoadRatersd(structures=RIGA)(png_case)


def test_map_structures_d():
    d = {"label": np.array([[[0, 1, 2]]]), "other": 5}
    out = MapStructuresd(keys="label", structures=HECKTOR)(d)
    np.testing.assert_array_equal(out["label"], [[[0, 1, 0]], [[0, 0, 1]]])
    assert out["other"] == 5 and d["label"].shape == (1, 1, 3)


def test_rater_stats_d_and_fuse_d():
    raters = torch.zeros(3, 1, 1, 3)
    raters[0, 0, 0] = torch.tensor([1.0, 1.0, 0.0])
    raters[1, 0, 0] = torch.tensor([1.0, 0.0, 0.0])
    raters[2, 0, 0] = 1.0  # invalid
    d = {"raters": raters, "rater_valid": torch.tensor([True, True, False])}
    out = RaterStatsd()(d)
    np.testing.assert_allclose(out["soft_label"][0, 0].numpy(), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(out["rater_var"][0, 0].numpy(), [0.0, 0.5, 0.0])
    out = FuseRatersd(mode="majority")(out)
    np.testing.assert_array_equal(out["label"][0, 0].numpy(), [1, 0, 0])  # 1 of 2 is a tie -> 0
    out = FuseRatersd(mode="union", output_key=None)(out)
    np.testing.assert_array_equal(out["raters"][0, 0].numpy(), [1, 1, 0])


def test_random_fuse_d_seeded_through_dataloader():
    raters = torch.stack([torch.full((1, 2, 2), float(k)) for k in range(5)])
    data = [{"raters": raters, "rater_valid": torch.tensor([True, True, False, True, True])} for _ in range(16)]
    fuse = FuseRatersd(mode="random")
    assert isinstance(fuse, RandFuseRatersd) and isinstance(fuse, RandomizableTrait)
    assert not isinstance(FuseRatersd(mode="staple"), RandomizableTrait)  # deterministic modes stay cacheable
    ds = Dataset(data, transform=Compose([fuse]))

    def run(seed: int) -> list[int]:
        set_determinism(seed=seed)
        return [int(b["label"][0, 0, 0, 0]) for b in DataLoader(ds, batch_size=1, num_workers=0)]

    try:
        a, b, c = run(0), run(0), run(1)
    finally:
        set_determinism(seed=None)
    assert a == b and a != c
    assert set(a) <= {0, 1, 3, 4}


def test_random_fuse_d_same_rater_for_all_keys():
    raters = torch.stack([torch.full((1, 2, 2), float(k)) for k in range(4)])
    fuse = FuseRatersd(keys=["raters", "raters_lr"], mode="random", output_key=["label", "label_lr"])
    fuse.set_random_state(3)
    for _ in range(10):
        out = fuse({"raters": raters, "raters_lr": raters[:, :, :1, :1] * 10})
        assert float(out["label_lr"][0, 0, 0]) == 10 * float(out["label"][0, 0, 0])


def test_flatten_resize_flip_unflatten_round_trip():
    g = torch.Generator().manual_seed(0)
    affine = torch.diag(torch.tensor([1.5, 1.0, 1.0, 1.0], dtype=torch.float64))
    raters = MetaTensor((torch.rand(3, 2, 4, 6, generator=g) > 0.5).float(), affine=affine)
    image = MetaTensor(torch.rand(1, 4, 6, generator=g), affine=affine)
    sample = {"image": image, "raters": raters, "rater_valid": torch.tensor([True, True, False])}
    chain = Compose(
        [
            FlattenRatersd(keys="raters"),
            Resized(keys=["image", "raters"], spatial_size=(8, 12), mode=["bilinear", "nearest"]),
            RandFlipd(keys=["image", "raters"], prob=1.0, spatial_axis=1),
            UnflattenRatersd(keys="raters", valid_key="rater_valid"),
        ]
    )
    out = chain(sample)
    res = out["raters"]
    assert isinstance(res, MetaTensor) and res.shape == (3, 2, 8, 12)
    expected = raters.as_tensor().repeat_interleave(2, dim=2).repeat_interleave(2, dim=3).flip(3)
    torch.testing.assert_close(res.as_tensor(), expected)  # every (rater, structure) resized/flipped alone
    torch.testing.assert_close(res.affine, out["image"].affine)  # spatial meta follows the image
    assert float(res.affine[0, 0]) == pytest.approx(0.75)
    inv = chain.inverse(out)
    assert inv["raters"].shape == (3, 2, 4, 6)
    torch.testing.assert_close(inv["raters"].as_tensor(), raters.as_tensor())
    torch.testing.assert_close(inv["raters"].affine, affine)
    assert len(inv["raters"].applied_operations) == 0


def test_unflatten_errors():
    with pytest.raises(ValueError, match="'raters'.*into 4 raters"):
        UnflattenRatersd()({"raters": torch.zeros(6, 2, 2), "rater_valid": [True] * 4})
    with pytest.raises(ValueError, match="rater_valid"):
        UnflattenRatersd()({"raters": torch.zeros(6, 2, 2)})
