"""Tests for monai_lexu.datasets.riga.synthetic (the RIGA-like fundus disc / cup set in the RIGA layout)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr

from monai_lexu.datasets.riga.format import RIGA_CSV_HEADER
from monai_lexu.datasets.riga.synthetic import make_riga_like_sample, write_riga_like


def _mean_pairwise_dice(masks: np.ndarray) -> float:
    vals = []
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            a, b = masks[i], masks[j]
            vals.append(2.0 * (a & b).sum() / max(a.sum() + b.sum(), 1))
    return float(np.mean(vals))


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
