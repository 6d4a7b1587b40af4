"""Tests for monai_lexu.report.evaluation: the evaluation files written from an EvaluationSummary."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from monai_lexu.report import EvaluationSummary, load_evaluation, plot_reliability_diagram, write_evaluation


def _summary(**kwargs) -> EvaluationSummary:
    values = {
        "SR": np.array([0.5, float("nan")]),
        "NCC": np.array([[0.2, 1.0], [0.4, float("nan")], [0.6, 0.0]]),
        "Dice_gt": np.array([[1.0, 0.5], [0.5, 0.5], [0.0, 0.5]]),
    }
    return EvaluationSummary(
        structures=["disc", "cup"],
        ids=["a", "b", "c"],
        values=values,
        image_columns={"unc_sum": np.arange(6.0).reshape(3, 2)},
        notes={"Dice_gt": "Dice of prob >= 0.5 against the true mask"},
        **kwargs,
    )


def test_summary_statistics_and_rows():
    summary = _summary()
    assert summary.num_images == 3 and summary.metrics == ["SR", "NCC", "Dice_gt"]
    assert summary.is_per_image("NCC") and not summary.is_per_image("SR")
    means, stds = summary.statistics()
    assert means["disc"]["NCC"] == pytest.approx(0.4) and stds["disc"]["NCC"] == pytest.approx(math.sqrt(0.08 / 3))
    assert means["cup"]["NCC"] == pytest.approx(0.5)  # the NaN image is left out
    assert means["disc"]["SR"] == 0.5 and math.isnan(stds["disc"]["SR"]) and math.isnan(means["cup"]["SR"])
    assert summary.by_structure()["cup"]["Dice_gt"] == [0.5, 0.5, 0.5]
    row = summary.per_image_rows()[1]
    assert list(row) == ["id", "unc_sum_disc", "NCC_disc", "Dice_gt_disc", "unc_sum_cup", "NCC_cup", "Dice_gt_cup"]
    assert row["id"] == "b" and row["unc_sum_cup"] == 3.0
    with pytest.raises(ValueError, match="NCC"):
        EvaluationSummary(["disc", "cup"], ["a"], {"NCC": np.zeros((2, 2))})


def test_write_evaluation_files(tmp_path):
    counts = np.array([[2.0, 0.0, 2.0], [4.0, 0.0, 0.0]])
    conf = np.array([[0.1, np.nan, 0.9], [0.2, np.nan, np.nan]])
    freq = np.array([[0.25, np.nan, 0.75], [0.2, np.nan, np.nan]])
    maps = [{"id": "a", "prob": np.zeros((2, 3, 3), np.float32), "slice": -1}]
    paths = write_evaluation(_summary(reliability=(conf, freq, counts)), tmp_path, "t", "Test", maps=maps)
    assert set(paths) == {"summary_md", "summary_csv", "per_image_csv", "json", "reliability_png"}
    data = load_evaluation(tmp_path / "t.json")
    assert data["num_images"] == 3 and list(data["mean"]["disc"]) == ["SR", "NCC", "Dice_gt"]
    assert data["per_image"]["disc"] == {"NCC": [0.2, 0.4, 0.6], "Dice_gt": [1.0, 0.5, 0.0]}
    assert math.isnan(data["std"]["disc"]["SR"])
    rows = list(csv.DictReader((tmp_path / "t_summary.csv").open()))
    assert [r["metric"] for r in rows] == ["SR", "NCC", "Dice_gt"] and float(rows[1]["disc"]) == pytest.approx(0.4)
    assert [r["id"] for r in csv.DictReader((tmp_path / "t_per_image.csv").open())] == ["a", "b", "c"]
    md = (tmp_path / "t_summary.md").read_text()
    assert md.startswith("# Test\n\n3 images. SR/DC:")
    assert "Dice_gt: Dice of prob >= 0.5 against the true mask.\n\n| metric | disc | cup |" in md
    assert "| SR | 0.500 | nan |" in md and "| NCC | 0.400 ± 0.163 | 0.500 ± 0.500 (n=2/3) |" in md
    with np.load(tmp_path / "t_maps" / "a.npz") as z:
        assert z["prob"].shape == (2, 3, 3)
    # without reliability data or maps: no diagram, no maps folder
    paths = write_evaluation(_summary(), tmp_path / "plain", "p")
    assert "reliability_png" not in paths and not (tmp_path / "plain" / "p_maps").exists()
    assert json.loads((tmp_path / "plain" / "p.json").read_text())["num_images"] == 3


@pytest.mark.filterwarnings("ignore:Data has no positive values")  # the empty structure's log-scaled histogram
def test_reliability_diagram_with_an_empty_structure(tmp_path, monkeypatch):
    # the second structure has no pixel: its pooled ECE is NaN (the one empty policy), the figure is still drawn
    import monai_lexu.report.figures as figures

    titles: list[str] = []
    save = figures.save_figure

    def _save(fig, path, dpi=100):
        titles.extend(ax.get_title() for ax in fig.axes)
        return save(fig, path, dpi)

    monkeypatch.setattr(figures, "save_figure", _save)
    conf, freq = np.array([[0.1, 0.9], [np.nan, np.nan]]), np.array([[0.25, 0.75], [np.nan, np.nan]])
    path = plot_reliability_diagram(conf, freq, np.array([[2.0, 2.0], [0.0, 0.0]]), ["a", "b"], tmp_path / "r.png")
    assert path.is_file() and path.stat().st_size > 0
    assert "a (ECE 0.150)" in titles and "b (ECE nan)" in titles


def test_correlation_over_too_few_images_is_n_too_small(tmp_path):
    """SR over 3 images with a minimum of 5: Markdown 'n too small', JSON null plus the n, CSV NaN."""
    summary = _summary(min_images={"SR": 5})
    assert summary.too_small("SR") and not summary.too_small("NCC")
    write_evaluation(summary, tmp_path, "t", "Test")
    md = (tmp_path / "t_summary.md").read_text()
    assert "| SR | n too small (n=3 < 5) | n too small (n=3 < 5) |" in md
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["mean"]["disc"]["SR"] is None and data["std"]["cup"]["SR"] is None
    assert data["n_too_small"] == {"SR": {"n": 3, "min": 5}}
    assert data["mean"]["disc"]["NCC"] == pytest.approx(0.4)
    rows = list(csv.DictReader((tmp_path / "t_summary.csv").open()))
    assert math.isnan(float(rows[0]["disc"]))
    # at the minimum the value is shown
    enough = EvaluationSummary(["disc"], list("abcde"), {"SR": np.array([0.7])}, min_images={"SR": 5})
    assert not enough.too_small("SR")
    write_evaluation(enough, tmp_path / "ok", "t", "Test")
    assert "| SR | 0.700 |" in (tmp_path / "ok" / "t_summary.md").read_text()
    assert "n_too_small" not in json.loads((tmp_path / "ok" / "t.json").read_text())


def test_report_handler_marks_sr_dc_over_four_images_too_small(tmp_path):
    import torch

    from monai_lexu.handlers import UncertaintyReport
    from monai_lexu.metrics import MIN_CASES_FOR_CORRELATION

    assert MIN_CASES_FOR_CORRELATION == 5
    report = UncertaintyReport(["a"], tmp_path, prefix="m")
    for k in range(4):
        var = torch.rand(1, 3, 3) * (k + 1)
        report.add(torch.rand(1, 3, 3), var * 2, torch.rand(1, 3, 3), var, f"c{k}")
    report.completed()
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["mean"]["a"]["SR"] is None and data["mean"]["a"]["DC"] is None
    assert data["n_too_small"] == {"SR": {"n": 4, "min": 5}, "DC": {"n": 4, "min": 5}}
    md = (tmp_path / "m_summary.md").read_text()
    assert "| SR | n too small (n=4 < 5) |" in md and "| DC | n too small (n=4 < 5) |" in md
    assert "| ECE | n too small" not in md  # pooled over pixels: not a correlation across images


def test_case_picture_of_a_volume_slice(tmp_path):
    """A kept slice of a volume gets a picture: image + raters, probability, per-structure uncertainty with the band."""
    from monai_lexu.report import plot_case

    yy, xx = np.mgrid[:24, :24]
    radius = np.hypot(yy - 12, xx - 8), np.hypot(yy - 12, xx - 18)
    # (R=3, L=2, H, W): three raters at radii 3, 4, 5 around two centres
    raters = np.stack([np.stack([(r <= t) for r in radius]) for t in (3.0, 4.0, 5.0)]).astype(np.float32)
    soft = raters.mean(0)
    band = (soft > 0) & (soft < 1)
    unc = np.where(band, 0.2, np.where(soft >= 1, 0.05, 0.0)).astype(np.float32)
    record = {
        "id": "SYN-001",
        "slice": 7,
        "image": np.stack([np.where(soft[0] > 0, 0.6, 0.4), np.exp(-((radius[0] / 4) ** 2))]).astype(np.float32),
        "raters": raters,
        "prob": soft,
        "unc": unc,
        "soft_label": soft,
        "rater_var": raters.var(0),
    }
    summary = EvaluationSummary(["GTVp", "GTVn"], ["SYN-001"], {"NCC": np.array([[0.5, 0.5]])})
    paths = write_evaluation(summary, tmp_path, "metrics_fold0", "lexu_hecktor: fold 0", maps=[record])
    assert paths["case_png"] == tmp_path / "metrics_fold0_case_SYN-001.png"
    assert paths["case_png"].stat().st_size > 10_000
    import matplotlib.image

    png = matplotlib.image.imread(paths["case_png"])
    assert png.shape[1] > 2 * png.shape[0]  # one row of panels: CT, PET, probability, 2 uncertainty maps
    with pytest.raises(ValueError, match="expects"):
        plot_case({**record, "prob": soft[:1]}, tmp_path / "bad.png", ["GTVp", "GTVn"])
