"""Tests for monai_lexu.report.cv."""

from __future__ import annotations

import csv
import json

import pytest

from monai_lexu.report import cross_validation_summary


def _fold(tmp_path, k, sr, dice):
    data = {"num_images": 3, "mean": {"GTVp": {"SR": sr, "soft_dice": dice}, "GTVn": {"SR": -sr, "soft_dice": 0.5}}}
    (tmp_path / f"metrics_fold{k}.json").write_text(json.dumps(data))


def test_mean_and_std_over_folds(tmp_path):
    _fold(tmp_path, 0, 0.2, 0.8)
    _fold(tmp_path, 1, 0.4, 0.6)
    _fold(tmp_path, 2, 0.6, 0.7)
    result = cross_validation_summary(tmp_path)
    # SR GTVp: mean 0.4, population std sqrt((0.04 + 0 + 0.04) / 3) = 0.1633
    assert result["GTVp"]["SR"]["mean"] == pytest.approx(0.4)
    assert result["GTVp"]["SR"]["std"] == pytest.approx(0.163299, abs=1e-6)
    assert result["GTVn"]["SR"]["fold2"] == pytest.approx(-0.6)
    md = (tmp_path / "metrics_folds_summary.md").read_text()
    assert "| SR | 0.400 ± 0.163 | -0.400 ± 0.163 |" in md and "missing" not in md
    rows = list(csv.DictReader((tmp_path / "metrics_folds_summary.csv").open()))
    assert len(rows) == 4 and rows[0]["metric"] == "SR" and rows[0]["structure"] == "GTVp"


def test_missing_folds_are_reported(tmp_path):
    assert cross_validation_summary(tmp_path) is None
    _fold(tmp_path, 1, 0.3, 0.9)
    result = cross_validation_summary(tmp_path)
    assert result["GTVp"]["soft_dice"] == {"fold1": 0.9, "mean": 0.9, "std": 0.0}
    assert "missing: [0, 2]" in (tmp_path / "metrics_folds_summary.md").read_text()


def test_too_small_folds_show_n_too_small(tmp_path):
    """Folds whose SR had too few images (JSON null + n_too_small): 'n too small' cells, left out of the mean."""
    for k in range(3):
        data = {
            "num_images": 3,
            "mean": {"GTVp": {"SR": None, "soft_dice": 0.5 + 0.1 * k}},
            "n_too_small": {"SR": {"n": 3, "min": 5}},
        }
        (tmp_path / f"metrics_fold{k}.json").write_text(json.dumps(data))
    result = cross_validation_summary(tmp_path)
    md = (tmp_path / "metrics_folds_summary.md").read_text()
    assert "| SR | n too small (n=3 < 5) | n too small (n=3 < 5) |" in md
    assert result["GTVp"]["soft_dice"]["mean"] == pytest.approx(0.6)
    assert result["GTVp"]["SR"]["fold0"] != result["GTVp"]["SR"]["fold0"]  # NaN


def _per_image(folder, k, unc, var, ncc):
    """A per-image CSV of fold ``k`` (the columns :func:`pooled_folds` reads, one structure ``GTVp``)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"metrics_fold{k}_per_image.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, ["id", "unc_sum_GTVp", "var_sum_GTVp", "NCC_GTVp"])
        w.writeheader()
        for i, (u, v, n) in enumerate(zip(unc, var, ncc)):
            w.writerow({"id": f"f{k}c{i}", "unc_sum_GTVp": u, "var_sum_GTVp": v, "NCC_GTVp": n})


def test_pooled_folds_uses_the_folds_every_method_has(tmp_path):
    from monai_lexu.report.cv import pooled_folds

    a, b = tmp_path / "A", tmp_path / "B"
    _per_image(a, 0, [1, 2, 3], [10, 20, 30], [0.1, 0.2, 0.3])
    _per_image(a, 1, [9, 9, 9], [1, 1, 1], [0.9, 0.9, 0.9])  # B lacks fold 1: left out for A too
    _per_image(a, 2, [4, 5, 6], [40, 50, 60], [0.4, 0.5, 0.6])
    _per_image(b, 0, [3, 2, 1], [10, 20, 30], [0.5, 0.5, 0.5])
    _per_image(b, 2, [6, 5, 4], [40, 50, 60], [0.5, 0.5, 0.5])
    out = pooled_folds({"A": a, "B": b}, [0, 1, 2], ["GTVp"])
    assert out["common"] == [0, 2] and out["finished"] == {"A": [0, 1, 2], "B": [0, 2]}
    ra, rb = out["results"]["A"], out["results"]["B"]
    assert ra["_folds"] == [0, 2] and ra["_cases"] == 6
    assert ra["GTVp"]["SR"] == pytest.approx(1.0)  # the pooled sums rise together
    # B's ranks over the 6 pooled cases: unc (3,2,1,6,5,4) vs var (1..6): 1 - 6*sum d^2/(n(n^2-1)) = 1 - 6*16/210
    assert rb["GTVp"]["SR"] == pytest.approx(1 - 96 / 210)
    assert ra["GTVp"]["NCC"] == pytest.approx(0.35) and ra["GTVp"]["NCC_std"] == pytest.approx(0.170783, abs=1e-6)
    assert "soft_dice" not in ra["GTVp"]  # a column the CSV lacks is not invented
