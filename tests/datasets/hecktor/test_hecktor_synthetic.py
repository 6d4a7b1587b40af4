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
    structure_distance,
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
        assert ct.shape == (72, 72, 48) and ct.get_data_dtype() == np.int16
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
    # the band is recomputable from synthetic_info-style geometry: rater radius thresholds on the lobulated distance
    s = case["info"]["structures"][0]
    aff = case["ct_affine"]
    xyz = np.einsum("ab,b...->a...", aff[:3, :3], np.indices(case["ct"].shape)) + aff[:3, 3].reshape(3, 1, 1, 1)
    d = structure_distance(xyz, s)
    r0 = SYNTHETIC_HECKTOR_RATERS[0]
    near = d <= s["r_outer_mm"] + 1.0
    np.testing.assert_array_equal((labels[0] == s["label"])[near], (d <= s["rater_radius_mm"][r0])[near])


def test_pet_core_brighter_than_rim_brighter_than_tissue():
    case = make_synthetic_petct_case(1, raters=["rater1", "rater2"])
    pet = case["pet"]
    aff = case["pet_affine"]
    xyz = np.einsum("ab,b...->a...", aff[:3, :3], np.indices(pet.shape)) + aff[:3, 3].reshape(3, 1, 1, 1)
    s = case["info"]["structures"][0]
    d = structure_distance(xyz, s)
    core = pet[d <= s["r_core_mm"]].mean()
    rim = pet[(d > s["r_core_mm"]) & (d <= s["r_outer_mm"])].mean()
    outside = np.median(pet[(d > s["r_outer_mm"] + 12.0) & (d <= s["r_outer_mm"] + 24.0) & (xyz[2] < 0)])
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
            assert out["ct"].shape == (1, 64, 64, 64)
            for k in keys[: len(case["raters"])]:
                assert set(np.unique(out[k].numpy()).tolist()) == {0.0, 1.0, 2.0}
    assert "outside the head-and-neck box" not in caplog.text
    assert "no PET voxel above" not in caplog.text


def _world(case: dict, key: str) -> np.ndarray:
    aff = case[f"{key}_affine"]
    return np.einsum("ab,b...->a...", aff[:3, :3], np.indices(case[key].shape)) + aff[:3, 3].reshape(3, 1, 1, 1)


def test_looks_like_a_head_and_neck_study():
    """CT tissue classes at their HU, an airway and bone in the neck, SUV ranges of background, brain and lesions."""
    case = make_synthetic_petct_case(11, raters=["rater1", "rater2", "rater3"])
    ct, tissue, info = case["ct"].astype(float), case["tissue"], case["info"]
    names = list(info["tissues"])
    noise_free = {n: info["tissues"][n]["hu"] for n in names}
    for name in ("air", "soft", "fat", "brain", "mandible", "cancellous", "airway"):
        sel = (tissue == names.index(name)) & ~case["rim"].any(0) & ~case["core"].any(0)
        assert sel.sum() > 20, name
        assert abs(np.median(ct[sel]) - noise_free[name]) < 15, name  # noise sd 12 HU, clipped at -1024
    assert noise_free["air"] == -1000 and noise_free["soft"] == 40 and noise_free["fat"] == -100
    assert 700 <= noise_free["mandible"] <= 1000 and 700 <= noise_free["skull"] <= 1000
    # air outside the body at the corners of every slice, body in the middle of the neck slices
    assert (ct[0, 0, :] < -900).all() and (ct[-1, -1, :] < -900).all()
    assert (tissue != names.index("air")).mean() > 0.3  # a body, not a speck
    # the airway: an air column inside the body in the neck slices
    xyz = _world(case, "ct")
    neck = xyz[2] < -20
    assert ((tissue == names.index("airway")) & neck).sum() > 50
    # PET: SUV-like background ~0.5-1, hot brain, primary 6-15, nodes 3-8 (before partial-volume blur)
    pet, pxyz = case["pet"], _world(case, "pet")
    body = pet > 0.2
    assert 0.4 < np.median(pet[body & (pxyz[2] < 0)]) < 1.2
    assert pet[pxyz[2] > 40].max() > 5.0  # brain
    for s in info["structures"]:
        lo, hi = (6.0, 15.0) if s["name"] == "GTVp" else (3.0, 8.0)
        assert lo <= s["core_suv"] <= hi
        peak = pet[structure_distance(pxyz, s) <= s["r_outer_mm"] + 4.0].max()
        assert 1.5 < peak <= s["core_suv"] * 1.25  # blurred: a small node loses part of its peak (noise 7 %)
    assert info["pet_fwhm_mm"] == 6.5


def test_structures_are_placed_like_head_and_neck_lesions():
    """Primary next to the oropharyngeal airway, nodes lateral in the neck, at least one on the primary's side."""
    for seed in range(6):
        info = make_synthetic_petct_case(seed)["info"]
        shift = np.asarray(info["anatomy_shift_mm"])
        gtvp = next(s for s in info["structures"] if s["name"] == "GTVp")
        nodes = [s for s in info["structures"] if s["name"] == "GTVn"]
        p = np.asarray(gtvp["centre_mm"]) - shift
        assert abs(p[0]) <= 15.0 and 10.0 <= p[1] <= 26.0 and -20.0 <= p[2] <= -8.0
        assert 1 <= len(nodes) <= 2
        n0 = np.asarray(nodes[0]["centre_mm"]) - shift
        assert 29.0 <= abs(n0[0]) <= 34.0 and 2.0 <= n0[1] <= 8.0  # lateral, in the carotid sheath fat
        assert np.sign(n0[0]) == np.sign(p[0]) or abs(p[0]) <= 5.0  # on the primary's side (midline: either)
        assert 0.0 <= p[2] - n0[2] <= 14.0  # the first node at most 14 mm below the primary
        assert all(len(s["bumps"]) >= 2 for s in info["structures"])  # lobulated, not ellipsoids


def test_generation_is_fast_and_deterministic(tmp_path):
    import time

    start = time.process_time()
    a = write_synthetic_hecktor(tmp_path / "a", num_cases=2, seed=4)
    elapsed = time.process_time() - start
    b = write_synthetic_hecktor(tmp_path / "b", num_cases=2, seed=4)
    for rel in ("imagesTr/SYN-002__CT.nii.gz", "imagesTr/SYN-002__PT.nii.gz"):
        np.testing.assert_array_equal(np.asarray(nib.load(a / rel).dataobj), np.asarray(nib.load(b / rel).dataobj))
    assert (a / "synthetic_info.json").read_text() == (b / "synthetic_info.json").read_text()
    assert elapsed > 0  # speed is measured in benchmarks/, not asserted here
