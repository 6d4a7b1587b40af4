"""Tests for monai_lexu.datasets.hecktor.slices (the paper's 2D protocol)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from monai_lexu.data import load_multirater_datalist, write_multirater_datalist
from monai_lexu.datasets.hecktor.slices import ensure_axial_slices, extract_axial_slices

AFFINE = np.diag([2.0, 2.0, 3.0, 1.0])
AFFINE[:3, 3] = [-10.0, -20.0, 5.0]


def _volume_set(tmp_path):
    """Two cases, 8x8x6; case a: rater 1 marks GTVp on z=1,2, rater 2 GTVn on z=2,4; case b: one rater, z=5."""
    cases = []
    for cid, marks in (("a", [[(1, 1), (2, 1)], [(2, 2), (4, 2)]]), ("b", [[(5, 2)], []])):
        ct = np.arange(8 * 8 * 6, dtype=np.float32).reshape(8, 8, 6)
        pt = ct * 10
        files = []
        for name, arr in (("CT", ct), ("PT", pt)):
            p = tmp_path / "vol" / f"{cid}__{name}.nii.gz"
            p.parent.mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(arr, AFFINE), p)
            files.append(str(p))
        raters = []
        for r, rater_marks in enumerate(marks):
            m = np.zeros((8, 8, 6), np.uint8)
            for z, value in rater_marks:
                m[2:4, 3:6, z] = value
            p = tmp_path / "vol" / f"{cid}_r{r}.nii.gz"
            nib.save(nib.Nifti1Image(m, AFFINE), p)
            raters.append(str(p))
        cases.append({"id": cid, "image": files, "raters": raters, "fold": 0 if cid == "a" else 1})
    return write_multirater_datalist(
        tmp_path / "vol" / "datalist.json", {"training": cases}, {"GTVp": [1], "GTVn": [2]}
    )


def test_extract_nonempty_axial_slices(tmp_path):
    datalist = _volume_set(tmp_path)
    out = extract_axial_slices(datalist, tmp_path / "slices")
    cases = load_multirater_datalist(out, "training")
    # case a: union of raters non-empty at z = 1, 2, 4; case b: z = 5
    assert [c["id"] for c in cases] == ["a_z001", "a_z002", "a_z004", "b_z005"]
    assert [c["fold"] for c in cases] == [0, 0, 0, 1] and cases[0]["case"] == "a" and cases[2]["slice"] == 4
    first = cases[1]  # a, z = 2
    ct = nib.load(first["image"][0])
    pt = nib.load(first["image"][1])
    expected_ct = np.arange(8 * 8 * 6, dtype=np.float32).reshape(8, 8, 6)[:, :, 2]
    np.testing.assert_array_equal(ct.get_fdata(), expected_ct)
    np.testing.assert_array_equal(pt.get_fdata(), expected_ct * 10)
    # the slice plane sits at z = 5 + 3 * 2 = 11 mm, in-plane spacing kept
    np.testing.assert_allclose(ct.affine[:3, 3], [-10.0, -20.0, 11.0])
    np.testing.assert_allclose(np.diag(ct.affine)[:2], [2.0, 2.0])
    r1, r2 = (np.asarray(nib.load(p).dataobj) for p in first["raters"])
    assert r1.dtype == np.uint8 and r1[2, 3] == 1 and r2[2, 3] == 2 and r1.sum() == 6
    assert json.loads((tmp_path / "slices" / "slices_summary.json").read_text()) == {
        "volumes": 2,
        "slices": 4,
        "slices_total": 12,
    }


def test_all_slices_and_ensure_is_idempotent(tmp_path):
    datalist = _volume_set(tmp_path)
    out = extract_axial_slices(datalist, tmp_path / "all", nonempty_only=False)
    assert len(load_multirater_datalist(out, "training")) == 12
    path = ensure_axial_slices(datalist, tmp_path / "ens")
    mtime = path.stat().st_mtime
    assert ensure_axial_slices(datalist, tmp_path / "ens") == path and path.stat().st_mtime == mtime


def test_grid_mismatch_names_the_case(tmp_path):
    datalist = _volume_set(tmp_path)
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 5), np.uint8), AFFINE), tmp_path / "vol" / "b_r0.nii.gz")
    with pytest.raises(ValueError, match="case 'b'"):
        extract_axial_slices(datalist, tmp_path / "bad")
