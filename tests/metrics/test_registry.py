"""Tests for monai_lexu.metrics.registry: the evaluation report's columns."""

from __future__ import annotations

import csv
import json
from typing import Any

import pytest
import torch
from monai.metrics.metric import CumulativeIterationMetric

from monai_lexu.metrics import REPORT_METRICS, PerImageMetric, ReportMetric, report_metric_names
from monai_lexu.metrics.registry import ACROSS_IMAGES, PER_IMAGE

DEFAULT = ["SR", "DC", "NCC", "band/core", "soft_dice", "NLL", "WME", "ME", "ECE"]


def test_default_columns_depend_on_the_available_inputs():
    assert report_metric_names({"prob", "unc", "soft_label", "rater_var"}) == DEFAULT
    assert report_metric_names({"prob", "unc", "soft_label", "rater_var", "ground_truth"}) == [*DEFAULT, "Dice_gt"]
    assert report_metric_names({"prob"}) == ["ME"]


def test_every_entry_builds_a_cumulative_metric():
    for name, spec in REPORT_METRICS.items():
        metric = spec.factory({"calibration_bins": 4})
        assert isinstance(metric, CumulativeIterationMetric), name
        assert spec.scope in (PER_IMAGE, ACROSS_IMAGES)
    assert REPORT_METRICS["ECE"].factory({"calibration_bins": 4}).num_bins == 4
    assert {n for n, s in REPORT_METRICS.items() if s.scope == ACROSS_IMAGES} == {"SR", "DC", "ECE"}


def test_report_metric_validates_its_declaration():
    with pytest.raises(ValueError, match="scope"):
        ReportMetric(lambda _: None, ("prob",), scope="pooled")
    with pytest.raises(ValueError, match="inputs"):
        ReportMetric(lambda _: None, ("prob", "logits"))
    with pytest.raises(ValueError, match="inputs"):
        ReportMetric(lambda _: None, ())


# ---- what adding a metric takes: a functional core, a class, a registry line (here a Brier score) ----


def brier_score(y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between probability and soft label, (B, L, *S) -> (B, L)."""
    return ((y_pred.double() - y.double()) ** 2).flatten(2).mean(-1).float()


class BrierScoreMetric(PerImageMetric):
    """Cumulative :func:`brier_score`."""

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        return brier_score(y_pred, y)


def test_a_registered_metric_appears_in_the_report(tmp_path, monkeypatch):
    from monai_lexu.handlers import UncertaintyReport

    brier = ReportMetric(lambda _: BrierScoreMetric(), ("prob", "soft_label"), description="squared error")
    monkeypatch.setitem(REPORT_METRICS, "Brier", brier)  # the one line in REPORT_METRICS
    report = UncertaintyReport(["a"], tmp_path, prefix="b")
    prob, soft = torch.tensor([[[0.5, 1.0]]]), torch.tensor([[[1.0, 1.0]]])
    report.add(prob, torch.rand(1, 1, 2), soft, torch.rand(1, 1, 2), "x")
    report.add(soft, torch.rand(1, 1, 2), soft, torch.rand(1, 1, 2), "y")
    means = report.completed()
    assert means["a"]["Brier"] == pytest.approx((0.125 + 0.0) / 2)  # image x: (0.25 + 0) / 2
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["per_image"]["a"]["Brier"] == pytest.approx([0.125, 0.0])
    assert [r["metric"] for r in csv.DictReader((tmp_path / "b_summary.csv").open())] == [*DEFAULT, "Brier"]
    assert "Brier_a" in next(csv.DictReader((tmp_path / "b_per_image.csv").open()))
    assert "Brier: squared error." in (tmp_path / "b_summary.md").read_text()
