"""Tests for monai_lexu.data.synthetic (Jungo 2018 set and RIGA-like set)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr

from monai_lexu.data.datalist import load_multirater_datalist, load_structures
from monai_lexu.data.synthetic import (
    RIGA_CSV_HEADER,
    make_jungo_sample,
    make_riga_like_sample,
    write_jungo_dataset,
    write_riga_like,
)


def _jungo_samples(n: int, size: int = 64, seed: int = 11) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [make_jungo_sample(rng, size=size) for _ in range(n)]


@pytest.fixture(scope="module")
def jungo_samples():
    return _jungo_samples(20)


def _mean_pairwise_dice(masks: np.ndarray) -> float:
    vals = []
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            a, b = masks[i], masks[j]
            vals.append(2.0 * (a & b).sum() / max(a.sum() + b.sum(), 1))
    return float(np.mean(vals))


# ------------------------------------------------------------------------------------------------------- Jungo


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
        assert load_structures(path) == {"object": "nonzero"}
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

    from monai_lexu.data import ensure_jungo_dataset

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


# --------------------------------------------------------------------------------------------------- RIGA-like


@pytest.fixture(scope="module")
def riga_samples():
    rng = np.random.default_rng(7)
    return [make_riga_like_sample(rng, size=64) for _ in range(24)]


def test_riga_like_sample_shapes_and_nesting(riga_samples):
    for s in riga_samples:
        assert s["image"].shape == (64, 64, 3) and s["image"].dtype == np.uint8
        assert s["disc"].shape == s["cup"].shape == (6, 64, 64) and s["disc"].dtype == bool
        assert 0.0 <= s["difficulty"] <= 1.0
        assert not np.any(s["cup"] & ~s["disc"])  # cup inside disc for every rater
        assert np.all(s["cup"].sum(axis=(1, 2)) > 0) and np.all(s["disc"].sum(axis=(1, 2)) > s["cup"].sum(axis=(1, 2)))


def test_riga_like_cup_disagreement_exceeds_disc_disagreement(riga_samples):
    disc = np.array([_mean_pairwise_dice(s["disc"]) for s in riga_samples])
    cup = np.array([_mean_pairwise_dice(s["cup"]) for s in riga_samples])
    assert cup.mean() < disc.mean() - 0.08
    assert np.mean(cup < disc) > 0.8
    assert disc.mean() > 0.9 and 0.65 < cup.mean() < 0.9  # near the real RIGA (0.954 / 0.789)


def test_riga_like_disagreement_grows_with_difficulty(riga_samples):
    d = [s["difficulty"] for s in riga_samples]
    cup_var = [s["cup"].astype(np.float64).var(axis=0, ddof=1).sum() for s in riga_samples]
    disc_var = [s["disc"].astype(np.float64).var(axis=0, ddof=1).sum() for s in riga_samples]
    assert spearmanr(d, cup_var).statistic > 0.6
    assert spearmanr(d, disc_var).statistic > 0.4
    assert max(cup_var) > 4.0 * min(cup_var)  # varies a lot between images


def test_riga_like_cup_boundary_fades_with_difficulty():
    contrasts = []
    for d in (0.0, 0.5, 1.0):
        s = make_riga_like_sample(np.random.default_rng(2), size=64, difficulty=d)
        grey = s["image"].astype(np.float64).mean(axis=2)
        rim = s["true_disc"] & ~s["true_cup"]
        contrasts.append(grey[s["true_cup"]].mean() - grey[rim].mean())
    assert contrasts[0] > contrasts[1] > contrasts[2] and contrasts[0] > 20.0


def test_riga_like_determinism_and_errors():
    a = make_riga_like_sample(9, size=48)
    b = make_riga_like_sample(np.random.default_rng(9), size=48)
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["cup"], b["cup"])
    with pytest.raises(ValueError, match="difficulty"):
        make_riga_like_sample(0, size=48, difficulty=1.5)
    with pytest.raises(ValueError, match="rater_bias"):
        make_riga_like_sample(0, size=48, rater_bias=[0.0, 1.0])


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_write_riga_like_layout(tmp_path):
    counts = {"BinRushed": 5, "MESSIDOR": 2, "Magrabia": 3}
    root = write_riga_like(tmp_path / "raw", num_per_source=counts, size=40, seed=1)
    for source, n in counts.items():
        rows = _read_csv(root / f"Glaucoma_multirater_{source}.csv")
        assert tuple(rows[0]) == RIGA_CSV_HEADER
        body = rows[1:]
        assert len(body) == 7 * n
        assert [int(r[0]) for r in body] == list(range(7 * n))
        assert [int(r[-1]) for r in body] == list(range(7)) * n
        for b in range(n):
            block = body[7 * b : 7 * b + 7]
            assert len({r[1] for r in block}) == 1 and block[0][1].startswith(f"DiscCrop\\{source}\\")
            assert block[0][2].startswith("FinalLabel\\") and block[3][2].startswith("Rater3\\")
            assert block[3][2].split("\\", 1)[1] == block[0][1].split("\\", 1)[1]
            assert all(r[4] == source for r in block)
            image = Image.open(root / block[0][1].replace("\\", "/"))
            assert image.mode == "RGB" and image.size == (40, 40)
            for r in block:
                mask = np.asarray(Image.open(root / r[2].replace("\\", "/")))
                assert mask.shape == (40, 40) and set(np.unique(mask)) <= {0, 150, 255}
    assert (root / "DiscCrop/BinRushed/BinRushed4/image1.tif").is_file()  # 5 images over BinRushed1..4
    assert (root / "Rater6/Magrabia/MagrabiFemale/image1.tif").is_file()
    assert (root / "Rater1/MESSIDOR/image2.tif").is_file()
    latents = _read_csv(root / "synthetic_latents.csv")
    assert latents[0] == ["center", "imgName", "difficulty"] and len(latents) == 1 + sum(counts.values())
    assert "SYNTHETIC" in (root / "SYNTHETIC_DATA.txt").read_text()


def test_write_riga_like_is_deterministic(tmp_path):
    counts = {"BinRushed": 1, "MESSIDOR": 1, "Magrabia": 1}
    a = write_riga_like(tmp_path / "a", num_per_source=counts, size=32, seed=3)
    b = write_riga_like(tmp_path / "b", num_per_source=counts, size=32, seed=3)
    c = write_riga_like(tmp_path / "c", num_per_source=counts, size=32, seed=4)
    rel = "Rater2/MESSIDOR/image1.tif"
    assert (a / "Glaucoma_multirater_MESSIDOR.csv").read_text() == (b / "Glaucoma_multirater_MESSIDOR.csv").read_text()
    np.testing.assert_array_equal(np.asarray(Image.open(a / rel)), np.asarray(Image.open(b / rel)))
    img = "DiscCrop/Magrabia/MagrabiaMale/image1.tif"
    assert not np.array_equal(np.asarray(Image.open(a / img)), np.asarray(Image.open(c / img)))
