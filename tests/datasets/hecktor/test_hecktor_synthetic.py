"""Tests for monai_lexu.datasets.hecktor.synthetic: layout, grids, raters and their disagreement band."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from monai_lexu.datasets.hecktor.synthetic import (
    SYNTHETIC_HECKTOR_RATERS,
    disagreement_band,
    make_synthetic_petct_case,
    write_synthetic_hecktor,
)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    return write_synthetic_hecktor(tmp_path_factory.mktemp("petct") / "raw", num_cases=4, seed=3)


def test_layout_rater_counts_and_grids(synth_root):
    info = json.loads((synth_root / "synthetic_info.json").read_text())
    assert sorted(info["cases"]) == ["SYN-001", "SYN-002", "SYN-003", "SYN-004"]
    assert (synth_root / "SYNTHETIC_DATA.txt").is_file()
    for k, (cid, case) in enumerate(sorted(info["cases"].items())):
        ct = nib.load(synth_root / "imagesTr" / f"{cid}__CT.nii.gz")
        pet = nib.load(synth_root / "imagesTr" / f"{cid}__PT.nii.gz")
        # the PET has its own grid: other shape, spacing and origin
        assert ct.shape == (64, 64, 48) and ct.get_data_dtype() == np.int16
        np.testing.assert_allclose(np.abs(np.diag(ct.affine)[:3]), [2.0, 2.0, 3.0])
        np.testing.assert_allclose(np.abs(np.diag(pet.affine)[:3]), [4.0, 4.0, 4.0])
        assert pet.shape != ct.shape and not np.allclose(pet.affine[:3, 3], ct.affine[:3, 3])
        raters = sorted(p.parent.name for p in (synth_root / "labelsTr").glob(f"*/{cid}.nii.gz"))
        assert raters == case["raters"] and len(raters) == 2 + k % 3
        assert set(raters) <= set(SYNTHETIC_HECKTOR_RATERS)
        for r in raters:
            mask = nib.load(synth_root / "labelsTr" / r / f"{cid}.nii.gz")
            np.testing.assert_allclose(mask.affine, ct.affine)
            assert set(np.unique(np.asarray(mask.dataobj)).tolist()) == {0, 1, 2}
        hu = np.asarray(ct.dataobj)
        assert hu.min() < -900 and hu.max() > 500  # air and bone are there


def test_raters_disagree_only_on_the_rim():
    case = make_synthetic_petct_case(5, raters=SYNTHETIC_HECKTOR_RATERS)
    labels = np.stack([case["raters"][r] for r in SYNTHETIC_HECKTOR_RATERS])  # (R, *S)
    raters = np.stack([labels == 1, labels == 2], axis=1)  # (R, L, *S)
    band = disagreement_band(raters)
    core, rim = case["core"], case["rim"]
    for ch in range(2):
        assert band[ch].sum() > 0 and core[ch].sum() > 0
        assert not (band[ch] & ~rim[ch]).any()  # disagreement only inside the faint rim
        assert raters[:, ch][:, core[ch]].all()  # every rater draws the whole core
        assert not raters[:, ch][:, ~(core[ch] | rim[ch])].any()  # and nothing outside the rim
    # the band is recomputable from synthetic_info-style geometry: rater radius thresholds on the ellipsoid distance
    s = case["info"]["structures"][0]
    aff = case["ct_affine"]
    xyz = np.einsum("ab,b...->a...", aff[:3, :3], np.indices(case["ct"].shape)) + aff[:3, 3].reshape(3, 1, 1, 1)
    rel = (xyz - np.reshape(s["centre_mm"], (3, 1, 1, 1))) / np.reshape(s["axes"], (3, 1, 1, 1))
    d = np.sqrt((rel**2).sum(0))
    r0 = SYNTHETIC_HECKTOR_RATERS[0]
    near = d <= s["r_outer_mm"] + 1.0
    np.testing.assert_array_equal((labels[0] == s["label"])[near], (d <= s["rater_radius_mm"][r0])[near])


def test_pet_core_brighter_than_rim_brighter_than_tissue():
    case = make_synthetic_petct_case(1, raters=["rater1", "rater2"])
    pet, aff = case["pet"], case["pet_affine"]
    s = case["info"]["structures"][0]

    def suv_at(offset_mm: float) -> float:
        world = np.asarray(s["centre_mm"]) + np.array([0.0, 0.0, offset_mm])
        ijk = np.round(np.linalg.solve(aff[:3, :3], world - aff[:3, 3])).astype(int)
        return float(pet[tuple(ijk)])

    core = suv_at(0.0)
    rim = suv_at((s["r_core_mm"] + s["r_outer_mm"]) / 2 * s["axes"][2])
    outside = suv_at(s["r_outer_mm"] * s["axes"][2] + 10.0)
    assert core > rim > outside > 0.3


def test_same_seed_same_data_and_errors():
    a = make_synthetic_petct_case(7)
    b = make_synthetic_petct_case(7)
    np.testing.assert_array_equal(a["ct"], b["ct"])
    np.testing.assert_array_equal(a["pet"], b["pet"])
    with pytest.raises(ValueError, match="field of view"):
        make_synthetic_petct_case(0, ct_shape=(20, 20, 20))
    with pytest.raises(ValueError, match="at least one rater"):
        make_synthetic_petct_case(0, raters=[])
    with pytest.raises(ValueError, match="num_cases"):
        write_synthetic_hecktor("unused", num_cases=0)


def test_disagreement_band_known_answer():
    raters = np.array([[[1, 1, 0, 0]], [[1, 0, 0, 1]], [[1, 1, 0, 0]]])  # (R=3, L=1, S=4)
    np.testing.assert_array_equal(disagreement_band(raters), [[False, True, False, True]])
    np.testing.assert_array_equal(disagreement_band(raters, valid=[True, False, True]), [[False, False, False, False]])
    with pytest.raises(ValueError, match="no valid rater"):
        disagreement_band(raters, valid=[False, False, False])


def test_default_set_crop_keeps_every_structure(tmp_path, caplog):
    """The quick-start set (9 cases, seed 0) through the synthetic crop loses no rater voxel and keeps the box."""
    import logging

    from monai_lexu.datasets.hecktor.recipe import SYNTHETIC_RECIPE
    from monai_lexu.datasets.hecktor.transforms import hecktor_preprocessing

    root = write_synthetic_hecktor(tmp_path / "raw")
    info = json.loads((root / "synthetic_info.json").read_text())["cases"]
    assert len(info) == 9
    keys = [f"r{i}" for i in range(4)]
    pipes = {
        n: hecktor_preprocessing(SYNTHETIC_RECIPE, label_keys=keys[:n], normalize=False, image_key=None)
        for n in (2, 3, 4)
    }
    with caplog.at_level(logging.WARNING, logger="monai_lexu"):
        for cid, case in info.items():
            data = {
                "ct": str(root / "imagesTr" / f"{cid}__CT.nii.gz"),
                "pet": str(root / "imagesTr" / f"{cid}__PT.nii.gz"),
            }
            data.update({k: str(root / "labelsTr" / r / f"{cid}.nii.gz") for k, r in zip(keys, case["raters"])})
            out = pipes[len(case["raters"])](data)
            assert out["ct"].shape == (1, 48, 48, 64)
            for k in keys[: len(case["raters"])]:
                assert set(np.unique(out[k].numpy()).tolist()) == {0.0, 1.0, 2.0}
    assert "outside the head-and-neck box" not in caplog.text
    assert "no PET voxel above" not in caplog.text
