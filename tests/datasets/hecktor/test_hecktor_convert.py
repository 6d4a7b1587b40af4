"""Tests for monai_lexu.datasets.hecktor.{format,convert}: discovery, checks, conversion, summaries, idempotence,
the recorded recipe and the synthetic fallback."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_lexu.data.datalist import load_multirater_datalist, load_structures
from monai_lexu.datasets.hecktor.convert import (
    convert_hecktor,
    ensure_hecktor_dataset,
    hecktor_folds,
    mean_pairwise_dice,
)
from monai_lexu.datasets.hecktor.format import HECKTOR_SINGLE_RATER, HECKTOR_STRUCTURES, find_hecktor_cases
from monai_lexu.datasets.hecktor.recipe import (
    DEFAULT_RECIPE,
    SYNTHETIC_RECIPE,
    RecipeMismatchError,
    load_recipe,
)
from monai_lexu.datasets.hecktor.synthetic import write_synthetic_hecktor

SHAPE = (20, 20, 20)
# with the PET below, the 1 mm box is exactly the whole 20^3 image
ONE_MM = DEFAULT_RECIPE.replace(spacing=(1.0, 1.0, 1.0), box_mm=(20.0, 20.0, 20.0))


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*.nii.gz")}


def _cube(lo: tuple[int, int, int], size: int, value: int, out: np.ndarray | None = None) -> np.ndarray:
    m = np.zeros(SHAPE, np.uint8) if out is None else out
    m[lo[0] : lo[0] + size, lo[1] : lo[1] + size, lo[2] : lo[2] + size] = value
    return m


def _write_case(
    root: Path,
    cid: str,
    raters: dict[str, np.ndarray],
    pet: bool = True,
    pet_shift: float = 0.0,
    single: bool = False,
) -> None:
    """A 20^3, 1 mm, identity-affine (RAS) case; the PET has a hot 'brain' at the top so the crop keeps everything."""
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.full(SHAPE, 40, np.int16), np.eye(4)), root / "imagesTr" / f"{cid}__CT.nii.gz")
    if pet:
        p = np.ones(SHAPE, np.float32)
        p[5:15, 5:15, 15:20] = 8.0  # centroid x / y 9.5 -> 10, top slice 19: box [0, 20)^3
        aff = np.eye(4)
        aff[:3, 3] = pet_shift
        nib.save(nib.Nifti1Image(p, aff), root / "imagesTr" / f"{cid}__PT.nii.gz")
    for name, mask in raters.items():
        path = root / "labelsTr" / f"{cid}.nii.gz" if single else root / "labelsTr" / name / f"{cid}.nii.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(mask, np.eye(4)), path)


def _known_raters() -> dict[str, np.ndarray]:
    a = _cube((4, 4, 4), 4, 1)
    b = _cube((5, 4, 4), 4, 1)  # shifted by one voxel: overlap 3 x 4 x 4 = 48 of 64
    c = _cube((12, 12, 12), 2, 2, out=a.copy())  # a plus one 8-voxel node
    return {"a": a, "b": b, "c": c}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    base = tmp_path_factory.mktemp("hecktor")
    raw = write_synthetic_hecktor(base / "raw", num_cases=3, seed=1)
    digest = _tree_digest(raw)
    out = base / "out"
    datalist = convert_hecktor(raw, out, recipe=SYNTHETIC_RECIPE, folds=3, seed=5)
    return raw, out, datalist, digest


def test_conversion_outputs_same_grid_and_folds(synthetic):
    raw, out, datalist, _ = synthetic
    assert datalist == out / "datalist.json"
    assert load_structures(datalist) == HECKTOR_STRUCTURES == {"GTVp": [1], "GTVn": [2]}
    assert load_recipe(out) == load_recipe(datalist) == SYNTHETIC_RECIPE  # recorded next to the data
    assert json.loads(datalist.read_text())["preprocessing"] == "preprocessing.json"
    cases = load_multirater_datalist(datalist, "training")
    assert [c["id"] for c in cases] == ["SYN-001", "SYN-002", "SYN-003"]
    assert sorted(c["fold"] for c in cases) == [0, 1, 2]  # every case in exactly one fold
    for case, n_raters in zip(cases, (2, 3, 4)):
        ct_path, pt_path = case["image"]
        assert ct_path.endswith(f"images/{case['id']}__CT.nii.gz") and pt_path.endswith("__PT.nii.gz")
        assert len(case["raters"]) == len(case["rater_names"]) == n_raters
        ref = nib.load(ct_path)
        assert ref.shape == (64, 64, 64)
        for path in [pt_path, *case["raters"]]:
            img = nib.load(path)
            assert img.shape == ref.shape
            np.testing.assert_allclose(img.affine, ref.affine)
        for path in case["raters"]:
            values = set(np.unique(np.asarray(nib.load(path).dataobj)).tolist())
            assert values == {0, 1, 2}
    assert json.loads((out / "errors.json").read_text()) == {}
    report = json.loads((out / "conversion.json").read_text())
    assert report["converted"] == ["SYN-001", "SYN-002", "SYN-003"] and report["failed"] == []
    with open(out / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == ["SYN-001", "SYN-002", "SYN-003"]
    for r in rows:
        assert 0.3 < float(r["GTVp_interrater_dice"]) < 1.0  # raters disagree on the rim
        assert float(r["GTVp_volume_ml"]) > 0.5
    table = (out / "summary.md").read_text()
    assert "| 0 | 1 |" in table and "| all | 3 |" in table


def test_second_run_skips_and_input_untouched(synthetic, caplog):
    raw, out, _, digest = synthetic
    before = _mtimes(out)
    convert_hecktor(raw, out, recipe=SYNTHETIC_RECIPE, folds=3, seed=5)
    assert _mtimes(out) == before  # finished cases were not rewritten
    report = json.loads((out / "conversion.json").read_text())
    assert report["skipped"] == ["SYN-001", "SYN-002", "SYN-003"] and report["converted"] == []
    assert _tree_digest(raw) == digest  # the input was never modified
    # another recipe into the same folder: an explicit error naming the recorded file, nothing changed
    with pytest.raises(RecipeMismatchError, match=r"spacing: recorded \(2, 2, 2\), asked \(3, 3, 3\)") as err:
        convert_hecktor(raw, out, recipe=SYNTHETIC_RECIPE.replace(spacing=(3, 3, 3)))
    assert str(out / "preprocessing.json") in str(err.value)
    assert load_recipe(out) == SYNTHETIC_RECIPE and _mtimes(out) == before


def test_known_interrater_dice_and_volumes(tmp_path):
    root = tmp_path / "in"
    raters = _known_raters()
    _write_case(root, "K-1", raters)
    _write_case(root, "K-2", {"a": raters["a"], "b": raters["b"]})
    _write_case(root, "K-3", {"a": raters["a"], "c": raters["c"]})
    convert_hecktor(root, tmp_path / "out", recipe=ONE_MM, folds=3)
    # 1 mm identity grid and a box equal to the image: the processed masks are the input masks
    for name, mask in raters.items():
        np.testing.assert_array_equal(
            np.asarray(nib.load(tmp_path / "out" / "labels" / name / "K-1.nii.gz").dataobj), mask
        )
    with open(tmp_path / "out" / "summary.csv", newline="") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    k1 = rows["K-1"]
    assert k1["num_raters"] == "3" and k1["raters"] == "a;b;c"
    assert float(k1["GTVp_interrater_dice"]) == pytest.approx((0.75 + 1.0 + 0.75) / 3, abs=1e-4)
    assert float(k1["GTVn_interrater_dice"]) == pytest.approx(0.0)  # (a, c) and (b, c): 0; (a, b) both empty
    assert float(k1["GTVp_volume_ml"]) == pytest.approx(0.064, abs=1e-4)  # 64 voxels of 1 mm^3
    assert float(k1["GTVn_volume_ml"]) == pytest.approx(0.008 / 3, abs=1e-4)
    assert rows["K-2"]["GTVn_interrater_dice"] == ""  # no rater drew a node: no value
    assert float(rows["K-2"]["GTVp_interrater_dice"]) == pytest.approx(0.75, abs=1e-4)


def test_bad_cases_are_reported_and_others_converted(tmp_path, caplog):
    root = tmp_path / "in"
    raters = _known_raters()
    two = {"a": raters["a"], "b": raters["b"]}
    _write_case(root, "GOOD-1", raters)
    _write_case(root, "GOOD-2", two)
    _write_case(root, "NOPET", two, pet=False)
    _write_case(root, "ONERATER", {"a": raters["a"]})
    _write_case(root, "TRUNC", two)
    ct = root / "imagesTr" / "TRUNC__CT.nii.gz"
    ct.write_bytes(ct.read_bytes()[: len(ct.read_bytes()) // 2])
    _write_case(root, "BADVAL", {"a": raters["a"], "b": _cube((4, 4, 4), 2, 3)})
    _write_case(root, "SHIFTED", two)
    shifted = np.eye(4)
    shifted[:3, 3] = [2.0, 0.0, 0.0]
    nib.save(nib.Nifti1Image(raters["b"], shifted), root / "labelsTr" / "b" / "SHIFTED.nii.gz")
    _write_case(root, "FARPET", two, pet_shift=1000.0)
    digest = _tree_digest(root)
    out = tmp_path / "out"
    with caplog.at_level(logging.ERROR, logger="monai_lexu"):
        datalist = convert_hecktor(root, out, recipe=ONE_MM, folds=3)
    assert [c["id"] for c in load_multirater_datalist(datalist)] == ["GOOD-1", "GOOD-2"]
    errors = json.loads((out / "errors.json").read_text())
    expected = {
        "NOPET": "PET file missing",
        "ONERATER": "needs >= 2 raters",
        "TRUNC": "truncated or not a valid NIfTI",
        "BADVAL": "values [3] outside {0, 1, 2}",
        "SHIFTED": "differs from the CT's by up to 2",
        "FARPET": "do not overlap in physical space",
    }
    assert sorted(errors) == sorted(expected)
    for cid, phrase in expected.items():
        assert f"case '{cid}'" in errors[cid] and phrase in errors[cid], errors[cid]
        assert cid in caplog.text
        assert not [p for p in out.rglob(f"*{cid}*")]  # nothing written for a failed case
    assert not list(out.rglob(".tmp-*"))
    assert json.loads((out / "conversion.json").read_text())["succeeded"] == ["GOOD-1", "GOOD-2"]
    assert _tree_digest(root) == digest


def test_single_rater_layout_warns(tmp_path, caplog):
    root = tmp_path / "in"
    for k in range(3):
        _write_case(root, f"S-{k}", {"x": _cube((4, 4, 4), 3, 1)}, single=True)
    cases = find_hecktor_cases(root)
    assert [c.id for c in cases] == ["S-0", "S-1", "S-2"] and not cases[0].multi_rater
    with caplog.at_level(logging.WARNING, logger="monai_lexu"):
        datalist = convert_hecktor(root, tmp_path / "out", recipe=ONE_MM)
    assert "single-rater layout" in caplog.text and "zero" in caplog.text
    entries = load_multirater_datalist(datalist)
    assert all(e["rater_names"] == [HECKTOR_SINGLE_RATER] and len(e["raters"]) == 1 for e in entries)


def test_input_inside_output_and_missing_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="imagesTr"):
        convert_hecktor(tmp_path / "nothing", tmp_path / "out")
    root = tmp_path / "o" / "images"
    for k in range(3):
        _write_case(root, f"C-{k}", _known_raters())
    with pytest.raises(ValueError, match="never overwritten"):
        convert_hecktor(root, tmp_path / "o", recipe=ONE_MM)


def test_folds_sorted_and_balanced():
    ids = [f"P{i:02d}" for i in range(10)]
    folds = hecktor_folds(ids, folds=3, seed=27)
    assert folds == hecktor_folds(list(reversed(ids)), folds=3, seed=27)  # input order does not matter
    assert sorted(folds) == ids
    assert sorted(np.bincount(list(folds.values())).tolist()) == [3, 3, 4]
    assert folds != hecktor_folds(ids, folds=3, seed=28)
    with pytest.raises(ValueError, match="folds must be in"):
        hecktor_folds(ids[:2], folds=3)


def test_mean_pairwise_dice_known_answers():
    a = np.array([1, 1, 0, 0])
    b = np.array([1, 0, 0, 0])
    empty = np.zeros(4)
    assert mean_pairwise_dice(np.stack([a, b])) == pytest.approx(2 / 3)
    assert mean_pairwise_dice(np.stack([a, b, a])) == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    assert mean_pairwise_dice(np.stack([a, empty, empty])) == pytest.approx(0.0)  # (empty, empty) skipped
    assert math.isnan(mean_pairwise_dice(np.stack([empty, empty])))
    assert math.isnan(mean_pairwise_dice(a[None]))


def test_ensure_dataset_synthetic_fallback(tmp_path, caplog):
    target = tmp_path / "hecktor"
    with caplog.at_level(logging.WARNING, logger="monai_lexu"):
        datalist = ensure_hecktor_dataset(target, synthetic_kwargs={"num_cases": 3, "seed": 2})
    assert "SYNTHETIC" in caplog.text
    assert datalist == target / "datalist.json" and (target / "raw" / "SYNTHETIC_DATA.txt").is_file()
    assert load_recipe(target) == SYNTHETIC_RECIPE  # the synthetic set's recipe, recorded with the data
    before = datalist.stat().st_mtime_ns
    assert ensure_hecktor_dataset(target) == datalist and datalist.stat().st_mtime_ns == before
    assert ensure_hecktor_dataset(target, recipe=SYNTHETIC_RECIPE) == datalist
    with pytest.raises(RecipeMismatchError, match="preprocessing.json"):
        ensure_hecktor_dataset(target, recipe=DEFAULT_RECIPE)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="not empty"):
        ensure_hecktor_dataset(junk)


def test_ensure_dataset_converts_layout_in_place(tmp_path):
    for k in range(3):
        _write_case(tmp_path, f"C-{k}", _known_raters())
    datalist = ensure_hecktor_dataset(tmp_path, recipe=ONE_MM)
    assert datalist == tmp_path / "datalist.json"
    assert len(load_multirater_datalist(datalist)) == 3
    assert (tmp_path / "images" / "C-0__PT.nii.gz").is_file()


def test_box_conversion_equals_the_whole_volume_conversion(synthetic, tmp_path):
    """The default conversion (resampling only the crop box) writes the files of the whole-volume chain: same shapes
    and affines, CT (int16 HU) and masks equal, PET within 1e-4 SUV (issue 11, item 5)."""
    raw, out, _, _ = synthetic
    whole = tmp_path / "whole"
    convert_hecktor(raw, whole, recipe=SYNTHETIC_RECIPE, folds=3, seed=5, resample="whole")
    files = sorted(p.relative_to(out) for p in (out / "images").rglob("*.nii.gz"))
    files += sorted(p.relative_to(out) for p in (out / "labels").rglob("*.nii.gz"))
    assert len(files) == 6 + 9
    for rel in files:
        a, b = nib.load(out / rel), nib.load(whole / rel)
        np.testing.assert_allclose(a.affine, b.affine, atol=1e-6)
        x, y = np.asarray(a.dataobj), np.asarray(b.dataobj)
        assert x.dtype == y.dtype and x.shape == y.shape, rel
        np.testing.assert_allclose(x.astype(np.float64), y.astype(np.float64), atol=1e-4, rtol=0, err_msg=str(rel))
    with pytest.raises(ValueError, match="resample must be 'box' or 'whole'"):
        convert_hecktor(raw, tmp_path / "bad", recipe=SYNTHETIC_RECIPE, resample="crop")
