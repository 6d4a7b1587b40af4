"""Tests for monai_lexu.datasets.jungo.synthetic (the Jungo et al. 2018 synthetic multi-observer set)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_lexu.data.datalist import load_multirater_datalist, load_structures
from monai_lexu.datasets.jungo.format import JUNGO_STRUCTURES
from monai_lexu.datasets.jungo.synthetic import ensure_jungo_dataset, make_jungo_sample, write_jungo_dataset


def _jungo_samples(n: int, size: int = 64, seed: int = 11) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [make_jungo_sample(rng, size=size) for _ in range(n)]


@pytest.fixture(scope="module")
def jungo_samples():
    return _jungo_samples(20)


def test_jungo_sample_shapes_types_and_binary_masks(jungo_samples):
    s = jungo_samples[0]
    assert s["gt"].shape == (64, 64) and s["gt"].dtype == np.uint8
    assert s["observers"].shape == (5, 64, 64) and s["observers"].dtype == np.uint8
    assert s["image_unperturbed"].dtype == np.float32 and s["image_perturbed"].dtype == np.float32
    assert s["image_unperturbed"].shape == s["image_perturbed"].shape == (64, 64)
    assert s["points"].shape == (8, 2) and s["observer_points"].shape == (5, 8, 2)
    for sample in jungo_samples:
        assert set(np.unique(sample["gt"])) <= {0, 1} and set(np.unique(sample["observers"])) <= {0, 1}
        assert 0.03 < sample["gt"].mean() < 0.6


def test_jungo_ground_truth_geometry(jungo_samples):
    for s in jungo_samples:
        rel = s["points"] - s["centre"]
        dist = np.hypot(rel[:, 0], rel[:, 1]) / (0.2 * 64)
        assert np.all(dist >= 0.75 - 1e-9) and np.all(dist <= 1.5 + 1e-9)
        angles = np.rad2deg(np.arctan2(-rel[:, 1], rel[:, 0])) % 360.0
        dev = (angles - 45.0 * np.arange(8) + 180.0) % 360.0 - 180.0
        assert np.all(np.abs(dev) <= 15.0 + 1e-9)
        # the three perturbed points are the three largest-x points
        assert set(s["perturbed_indices"]) == set(np.argsort(s["points"][:, 0])[-3:])


def test_jungo_observers_move_only_the_three_rightmost_points(jungo_samples):
    for s in jungo_samples:
        idx = s["perturbed_indices"]
        others = np.setdiff1d(np.arange(8), idx)
        assert np.allclose(s["observer_points"][:, others], s["points"][None, others])
        gt_rel = s["points"][idx] - s["centre"]
        gt_d = np.hypot(gt_rel[:, 0], gt_rel[:, 1])
        for o in range(5):
            rel = s["observer_points"][o, idx] - s["centre"]
            d = np.hypot(rel[:, 0], rel[:, 1])
            assert np.all(np.abs(d - gt_d) <= 0.4 * gt_d + 1e-9)
            dang = np.rad2deg(np.arctan2(-rel[:, 1], rel[:, 0]) - np.arctan2(-gt_rel[:, 1], gt_rel[:, 0]))
            assert np.all(np.abs((dang + 180.0) % 360.0 - 180.0) <= 10.0 + 1e-9)


def test_jungo_observers_differ_from_gt_only_on_the_right(jungo_samples):
    num_differing = 0
    for s in jungo_samples:
        diff = (s["observers"] != s["gt"][None]).any(axis=0)
        ys, xs = np.nonzero(diff)
        if xs.size == 0:
            continue
        num_differing += 1
        # the contour only changes between the unperturbed neighbours of the perturbed points...
        idx = set(s["perturbed_indices"].tolist())
        neighbours = [j for j in range(8) if j not in idx and ({(j - 1) % 8, (j + 1) % 8} & idx)]
        assert xs.min() >= s["points"][neighbours, 0].min() - 1.0
        # ...which lie right of the centre minus a small margin (1.5 r sin 15 deg < 0.4 r)
        assert xs.min() > s["centre"][0] - 0.4 * 0.2 * 64
    assert num_differing >= 18


def test_jungo_determinism_and_seed_dependence():
    a = make_jungo_sample(np.random.default_rng(3), size=48)
    b = make_jungo_sample(3, size=48)
    c = make_jungo_sample(4, size=48)
    for key in ("gt", "observers", "image_unperturbed", "image_perturbed"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["image_perturbed"], c["image_perturbed"])


def test_jungo_perturbed_image_darkens_to_the_right(jungo_samples):
    ratios = {"image_perturbed": [], "image_unperturbed": []}
    for s in jungo_samples:
        agree = (s["observers"].min(axis=0) == 1) & (s["gt"] == 1)
        xx = np.broadcast_to(np.arange(64)[None, :], agree.shape)
        left, right = agree & (xx < s["centre"][0]), agree & (xx > s["centre"][0])
        for key, values in ratios.items():
            values.append(s[key][right].mean() / s[key][left].mean())
    assert np.mean(ratios["image_perturbed"]) < 0.85
    assert np.mean(ratios["image_perturbed"]) < np.mean(ratios["image_unperturbed"]) - 0.2
    assert 0.85 < np.mean(ratios["image_unperturbed"]) < 1.2


def test_jungo_image_value_ranges(jungo_samples):
    for s in jungo_samples:
        for key in ("image_unperturbed", "image_perturbed"):
            img = s[key].astype(np.float64)
            assert np.isfinite(img).all()
            corner = np.concatenate([img[:6, :6].ravel(), img[:6, -6:].ravel(), img[-6:, :6].ravel()])
            noise = corner.std()
            # background is zero-mean noise; the object is at most 255 (max intensity in [30, 255]) plus noise
            assert abs(corner.mean()) < 4.0 * noise / np.sqrt(corner.size) + 1.0
            assert img.max() <= 255.0 + 6.0 * noise
        inside = s["gt"] == 1
        un = s["image_unperturbed"]
        assert un[inside].mean() > un[~inside].mean() + 5.0
        assert un[inside].mean() <= 255.0 * 1.05
    # noise std is 0.15 * (max - min) of the blurred image: background std is a sizable fraction of the range
    s = jungo_samples[0]
    img = s["image_unperturbed"]
    assert 0.05 < img[:8, :8].std() / (np.percentile(img, 99.5) - np.percentile(img, 0.5)) < 0.3


def test_write_jungo_dataset_files_split_and_pngs(tmp_path):
    out = write_jungo_dataset(tmp_path / "jungo", num_samples=10, size=32, seed=5)
    for variant in ("unperturbed", "perturbed"):
        path = out / f"datalist_{variant}.json"
        assert load_structures(path) == JUNGO_STRUCTURES == {"object": "nonzero"}
        train = load_multirater_datalist(path, "training")
        test = load_multirater_datalist(path, "test")
        assert [c["id"] for c in train] == [f"jungo_{i:03d}" for i in range(8)]
        assert [c["id"] for c in test] == ["jungo_008", "jungo_009"]
        assert all(len(c["raters"]) == 5 and Path(c["ground_truth"]).is_file() for c in train + test)
    # files hold exactly the first generated sample (clipped and rounded to 8 bit)
    first = make_jungo_sample(np.random.default_rng(5), size=32)
    png = np.asarray(Image.open(out / "images_perturbed" / "jungo_000.png"))
    np.testing.assert_array_equal(png, np.clip(np.rint(first["image_perturbed"]), 0, 255).astype(np.uint8))
    np.testing.assert_array_equal(np.asarray(Image.open(out / "masks" / "jungo_000_gt.png")), first["gt"] * 255)
    obs3 = np.asarray(Image.open(out / "masks" / "jungo_000_obs3.png"))
    np.testing.assert_array_equal(obs3, first["observers"][2] * 255)


def test_write_jungo_dataset_custom_splits_and_errors(tmp_path):
    out = write_jungo_dataset(tmp_path, 5, 24, 0, splits={"training": 0.6, "validation": 0.2, "test": 0.2})
    path = out / "datalist_unperturbed.json"
    sizes = [len(load_multirater_datalist(path, s)) for s in ("training", "validation", "test")]
    assert sizes == [3, 1, 1]
    with pytest.raises(ValueError, match="sum to 1"):
        write_jungo_dataset(tmp_path / "x", 5, 24, 0, splits={"training": 0.5})
    with pytest.raises(ValueError, match="num_samples"):
        write_jungo_dataset(tmp_path / "y", 0)


def test_write_jungo_dataset_to_a_relative_folder(tmp_path, monkeypatch):
    # regression: a relative out_dir was stored twice in the datalist paths (relative to the JSON's own folder)
    monkeypatch.chdir(tmp_path)
    out = write_jungo_dataset(Path("rel") / "jungo", num_samples=2, size=24, seed=0)
    cases = load_multirater_datalist(out / "datalist_unperturbed.json", "training")
    assert Path(cases[0]["image"]) == (tmp_path / "rel" / "jungo" / "images_unperturbed" / "jungo_000.png")


def test_ensure_jungo_dataset_writes_once_then_reuses(tmp_path, caplog):
    import logging

    root = tmp_path / "jungo"
    with caplog.at_level(logging.INFO, logger="monai_lexu"):
        path = ensure_jungo_dataset(root, "perturbed", {"num_samples": 5, "size": 24, "seed": 1})
    assert path == root / "datalist_perturbed.json" and path.is_file()
    assert any("Jungo" in r.getMessage() for r in caplog.records)
    assert len(load_multirater_datalist(path, "training")) == 4
    stamp = path.stat().st_mtime_ns
    # the other variant was written in the same pass; a second call reuses the files (different kwargs ignored)
    assert ensure_jungo_dataset(root, "unperturbed", {"num_samples": 50}).is_file()
    assert ensure_jungo_dataset(root, "perturbed").stat().st_mtime_ns == stamp
    assert len(load_multirater_datalist(root / "datalist_unperturbed.json", "test")) == 1
    with pytest.raises(ValueError, match="variant"):
        ensure_jungo_dataset(root, "blurred")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="datalist_unperturbed.json"):
        ensure_jungo_dataset(other)
