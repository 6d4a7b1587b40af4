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
