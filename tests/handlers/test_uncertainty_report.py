"""Tests for monai_lexu.handlers.uncertainty_report."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from monai_lexu.handlers import UncertaintyReport
from monai_lexu.report import write_case_maps


def _case(scale: float, seed: int):
    """One image, L=2, 4x4: rater variance with structure; uncertainty = scale * variance (perfectly correlated)."""
    g = torch.Generator().manual_seed(seed)
    var = torch.rand((2, 4, 4), generator=g) * 0.25
    soft = (torch.rand((2, 4, 4), generator=g) > 0.5).float()
    return {"prob": soft.clone(), "unc": var * scale, "label": {"soft_label": soft, "rater_var": var}}


def test_report_known_answers(tmp_path):
    report = UncertaintyReport(["disc", "cup"], tmp_path, prefix="m")
    for i, scale in enumerate([1.0, 2.0, 3.0, 4.0, 5.0]):
        c = _case(scale, i)
        report.add(c["prob"], c["unc"], c["label"]["soft_label"], c["label"]["rater_var"], case_id=f"case{i}")
    means = report.completed()
    for s in ("disc", "cup"):
        # unc = scale * var per image: NCC is exactly 1 everywhere
        assert means[s]["NCC"] == pytest.approx(1.0, abs=1e-6)
        # prob == soft label, binary: soft Dice 1 at every threshold, NLL = -log(1 - eps) ~ 1e-5
        assert means[s]["soft_dice"] == pytest.approx(1.0, abs=1e-6)
        assert means[s]["NLL"] == pytest.approx(0.0, abs=1e-4)
        assert -1.0 <= means[s]["SR"] <= 1.0 and 0.0 <= means[s]["DC"] <= 1.0
    rows = list(csv.DictReader((tmp_path / "m_per_image.csv").open()))
    assert [r["id"] for r in rows] == [f"case{i}" for i in range(5)]
    # per-image sums are written: unc_sum = scale * var_sum
    assert float(rows[2]["unc_sum_cup"]) == pytest.approx(3.0 * float(rows[2]["var_sum_cup"]), rel=1e-5)
    assert json.loads((tmp_path / "m.json").read_text())["num_images"] == 5
    md = (tmp_path / "m_summary.md").read_text()
    assert "| metric | disc | cup |" in md and "| NCC | 1.000 ± 0.000 | 1.000 ± 0.000 |" in md


def test_report_spearman_is_rank_correlation_of_sums(tmp_path):
    report = UncertaintyReport(["a"], tmp_path)
    var_sums = [1.0, 4.0, 2.0, 3.0, 5.0]  # 5 images: MIN_CASES_FOR_CORRELATION
    unc_sums = [10.0, 40.0, 30.0, 20.0, 50.0]  # ranks (1,4,3,2,5) vs (1,4,2,3,5): rho = 1 - 6*2/(5*24) = 0.9
    for v, u in zip(var_sums, unc_sums):
        var = torch.tensor([[[v / 4] * 2] * 2])  # (1,2,2) sums to v
        unc = torch.tensor([[[u / 4] * 2] * 2])
        report.add(torch.zeros_like(var), unc, torch.zeros_like(var), var)
    assert report.completed()["a"]["SR"] == pytest.approx(0.9)


def test_report_with_ignite_engine(tmp_path):
    from ignite.engine import Engine

    batches = [[_case(float(i + 1), i)] for i in range(4)]
    engine = Engine(lambda e, b: b)
    UncertaintyReport(["disc", "cup"], tmp_path, prefix="e").attach(engine)
    engine.run(batches, max_epochs=1)
    assert engine.state.metrics["NCC_cup"] == pytest.approx(1.0, abs=1e-6)
    assert (tmp_path / "e_summary.csv").is_file()


def test_report_errors(tmp_path):
    report = UncertaintyReport(["disc", "cup"], tmp_path)
    with pytest.raises(RuntimeError, match="no image"):
        report.completed()
    with pytest.raises(ValueError, match="case x"):
        report.add(torch.zeros(2, 4, 4), torch.zeros(2, 4, 4), torch.zeros(1, 4, 4), torch.zeros(2, 4, 4), "x")
    with pytest.raises(ValueError, match="unknown report metric"):
        UncertaintyReport(["a"], tmp_path, metrics=["SR", "nope"])
    with pytest.raises(ValueError, match="ground_truth"):
        UncertaintyReport(["a"], tmp_path, metrics=["Dice_gt"])


def test_report_wme_and_me_known_answer(tmp_path):
    # one 1x2 image: soft label (0.5, 0) -> expert entropy (1, 0) bits; prob (0.5, 0.5) -> predictive entropy (1, 1)
    # WME = (1*1 + 0*1) / (1 + 0) = 1; ME = (1 + 1) / 2 = 1
    # second image: prob (0.5, 0) -> entropies (1, 0): WME = 1, ME = 0.5
    report = UncertaintyReport(["a"], tmp_path)
    soft = torch.tensor([[[0.5, 0.0]]])
    report.add(torch.tensor([[[0.5, 0.5]]]), torch.rand(1, 1, 2), soft, torch.rand(1, 1, 2))
    report.add(torch.tensor([[[0.5, 0.0]]]), torch.rand(1, 1, 2), soft, torch.rand(1, 1, 2))
    means = report.completed()
    assert means["a"]["WME"] == pytest.approx(1.0) and means["a"]["ME"] == pytest.approx(0.75, abs=1e-4)


def test_report_dice_against_the_true_mask_and_json_statistics(tmp_path):
    # image 1: prob >= 0.5 on 2 pixels, true mask on 2 pixels, overlap 1 -> Dice 2*1/(2+2) = 0.5
    # image 2: prediction and true mask both empty -> Dice 1 (MONAI compute_dice, ignore_empty=False)
    report = UncertaintyReport(["object"], tmp_path, prefix="t", ground_truth_key="ground_truth")
    soft = torch.tensor([[[0.5, 0.0, 1.0, 0.0]]])
    var = torch.tensor([[[0.25, 0.0, 0.0, 0.0]]])
    report.add(torch.tensor([[[0.9, 0.6, 0.1, 0.0]]]), var, soft, var, "a", ground_truth=torch.tensor([[[1, 0, 1, 0]]]))
    report.add(torch.zeros(1, 1, 4), var, soft, var, "b", ground_truth=torch.zeros(1, 1, 4))
    means = report.completed()
    assert means["object"]["Dice_gt"] == pytest.approx(0.75)
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["per_image"]["object"]["Dice_gt"] == pytest.approx([0.5, 1.0])
    assert data["std"]["object"]["Dice_gt"] == pytest.approx(0.25)  # population std of (0.5, 1.0)
    assert data["mean"]["object"]["ME"] == pytest.approx(np.mean(data["per_image"]["object"]["ME"]))
    summary = {r["metric"] for r in csv.DictReader((tmp_path / "t_summary.csv").open())}
    assert "Dice_gt" in summary
    with pytest.raises(ValueError, match="no ground truth"):
        report.add(torch.zeros(1, 1, 4), var, soft, var, "c")


def test_report_saves_maps_of_the_first_images(tmp_path):
    from ignite.engine import Engine

    def _item(i: int, spatial: tuple[int, ...]) -> dict:
        g = torch.Generator().manual_seed(i)
        raters = (torch.rand((3, 2, *spatial), generator=g) > 0.5).float()
        valid = torch.tensor([True, True, False])
        soft, var = raters[:2].mean(0), raters[:2].var(0)
        return {
            "image": torch.rand((1, *spatial), generator=g),
            "prob": soft,
            "unc": var,
            "id": f"c{i}",
            "label": {"soft_label": soft, "rater_var": var, "raters": raters, "rater_valid": valid},
        }

    items = [_item(i, (4, 5)) for i in range(3)]
    engine = Engine(lambda e, b: b)
    UncertaintyReport(["a", "b"], tmp_path, prefix="m", save_maps=2).attach(engine)
    engine.run([[it] for it in items], max_epochs=1)
    files = sorted(p.name for p in (tmp_path / "m_maps").glob("*.npz"))
    assert files == ["c0.npz", "c1.npz"]
    with np.load(tmp_path / "m_maps" / "c1.npz") as z:
        assert z["raters"].shape == (2, 2, 4, 5)  # the invalid (padded) rater is dropped
        np.testing.assert_allclose(z["unc"], items[1]["unc"].numpy())
        assert z["image"].shape == (1, 4, 5) and int(z["slice"]) == -1 and str(z["id"]) == "c1"
    # 3D: the axial slice (last axis) with the largest rater variance is kept
    vol = _item(7, (4, 4, 6))
    vol["label"]["rater_var"] = torch.zeros(2, 4, 4, 6)
    vol["label"]["rater_var"][1, :, :, 4] = 0.25
    report = UncertaintyReport(["a", "b"], tmp_path, prefix="v", save_maps=1)
    report.keep_maps(vol, None, "vol")
    write_case_maps(report.maps, tmp_path / "v_maps")
    with np.load(tmp_path / "v_maps" / "vol.npz") as z:
        assert int(z["slice"]) == 4 and z["prob"].shape == (2, 4, 4) and z["raters"].shape == (2, 2, 4, 4)
    # both structures disagree somewhere: the slice that cuts both bands wins over the one with the largest total
    vol["label"]["rater_var"][0, :, :, 1] = 0.25
    vol["label"]["rater_var"][1, 0, 0, 1] = 0.25
    report = UncertaintyReport(["a", "b"], tmp_path, prefix="w", save_maps=1)
    report.keep_maps(vol, None, "vol")
    assert report.maps[0]["slice"] == 1


def _random_cases(n: int = 6, seed: int = 0) -> list[dict]:
    """n random images (L=2, 8x8): 3 raters, soft label/variance from them, a noisy prediction, a true mask."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for i in range(n):
        raters = (torch.rand((3, 2, 8, 8), generator=g) > 0.6).float()
        soft = raters.mean(0)
        cases.append(
            {
                "prob": (0.7 * soft + 0.3 * torch.rand((2, 8, 8), generator=g)).clamp(0, 1),
                "unc": torch.rand((2, 8, 8), generator=g) * 0.25,
                "soft_label": soft,
                "rater_var": raters.var(0),
                "ground_truth": (torch.rand((2, 8, 8), generator=g) > 0.5).float(),
                "id": f"case{i}",
            }
        )
    return cases


def _expected_from_functional_cores(cases: list[dict], bins: int) -> dict:
    """What the previous UncertaintyReport computed, from the functional cores (its formulas, written out)."""
    from monai.metrics import compute_dice

    from monai_lexu.metrics import (
        band_core_ratio,
        distance_correlation,
        mean_entropy,
        negative_log_likelihood,
        normalized_cross_correlation,
        reliability_curve,
        soft_dice,
        spearman_correlation,
        weighted_mean_entropy,
    )

    per_image: dict[str, list] = {m: [] for m in ("NCC", "band/core", "soft_dice", "NLL", "WME", "ME", "Dice_gt")}
    unc_sums, var_sums = [], []
    calib = torch.zeros((3, 2, bins), dtype=torch.float64)
    for c in cases:
        p, u, s, v, gt = (c[k].float()[None] for k in ("prob", "unc", "soft_label", "rater_var", "ground_truth"))
        # image sums in float64, as the SR/DC metric classes buffer them: the previous report summed in float32,
        # which split exactly tied variance sums (e.g. 46/3 in two images) and moved SR by 0.01 on this input
        unc_sums.append(u.double().sum(dim=(2, 3))[0])
        var_sums.append(v.double().sum(dim=(2, 3))[0])
        per_image["NCC"].append(normalized_cross_correlation(u, v)[0])
        per_image["band/core"].append(band_core_ratio(u, s)[0])
        per_image["soft_dice"].append(soft_dice(p, s)[0])
        per_image["NLL"].append(negative_log_likelihood(p, s)[0])
        per_image["WME"].append(weighted_mean_entropy(p, s)[0])
        per_image["ME"].append(mean_entropy(p)[0])
        per_image["Dice_gt"].append(compute_dice((p >= 0.5).float(), (gt > 0.5).float(), ignore_empty=False)[0])
        curve = reliability_curve(p, s, num_bins=bins)
        counts = curve.counts.double()
        calib[0] += torch.nan_to_num(curve.confidence.double()) * counts
        calib[1] += torch.nan_to_num(curve.frequency.double()) * counts
        calib[2] += counts
    unc, var = torch.stack(unc_sums), torch.stack(var_sums)
    conf = calib[0] / calib[2].clamp_min(1)
    freq = calib[1] / calib[2].clamp_min(1)
    ece = (torch.nan_to_num((conf - freq).abs()) * calib[2]).sum(-1) / calib[2].sum(-1).clamp_min(1)
    return {
        "across": {"SR": spearman_correlation(unc, var), "DC": distance_correlation(unc, var), "ECE": ece},
        "per_image": {m: torch.stack(v).double() for m, v in per_image.items()},
        "unc_sum": unc,
        "var_sum": var,
    }


def test_report_equals_the_functional_cores_on_random_input(tmp_path):
    # the report now reads the metric classes' buffers; the numbers must be those of the functional cores
    cases = _random_cases()
    report = UncertaintyReport(["disc", "cup"], tmp_path, prefix="r", ground_truth_key="ground_truth")
    assert type(report.metric_fns["SR"]).__name__ == "SpearmanCorrelationMetric"
    assert type(report.metric_fns["Dice_gt"]).__name__ == "DiceMetric"
    for c in cases:
        report.add(c["prob"], c["unc"], c["soft_label"], c["rater_var"], c["id"], ground_truth=c["ground_truth"])
    means = report.completed()
    expected = _expected_from_functional_cores(cases, bins=10)
    data = json.loads((tmp_path / "r.json").read_text())
    assert set(data) == {"num_images", "mean", "std", "per_image"} and data["num_images"] == 6
    metrics = ["SR", "DC", "NCC", "band/core", "soft_dice", "NLL", "WME", "ME", "ECE", "Dice_gt"]
    summary_rows = list(csv.DictReader((tmp_path / "r_summary.csv").open()))
    assert [r["metric"] for r in summary_rows] == metrics
    rows = list(csv.DictReader((tmp_path / "r_per_image.csv").open()))
    columns = ["unc_sum", "var_sum", "NCC", "band/core", "soft_dice", "NLL", "WME", "ME", "Dice_gt"]
    assert list(rows[0]) == ["id"] + [f"{c}_{s}" for s in ("disc", "cup") for c in columns]
    assert [r["id"] for r in rows] == [c["id"] for c in cases]
    for i, s in enumerate(("disc", "cup")):
        assert list(data["mean"][s]) == metrics and list(data["per_image"][s]) == columns[2:]
        for m, v in expected["across"].items():
            assert means[s][m] == pytest.approx(float(v[i]), rel=1e-5, abs=1e-6)
            assert float(summary_rows[metrics.index(m)][s]) == pytest.approx(float(v[i]), rel=1e-5, abs=1e-6)
            assert math.isnan(data["std"][s][m])
        for m, v in expected["per_image"].items():
            np.testing.assert_allclose(data["per_image"][s][m], v[:, i].numpy(), rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose([float(r[f"{m}_{s}"]) for r in rows], v[:, i].numpy(), rtol=1e-6, atol=1e-7)
            finite = v[:, i][torch.isfinite(v[:, i])].numpy()
            assert data["mean"][s][m] == pytest.approx(finite.mean(), rel=1e-6, abs=1e-7)
            assert data["std"][s][m] == pytest.approx(finite.std(), rel=1e-6, abs=1e-7)
        for m in ("unc_sum", "var_sum"):
            np.testing.assert_allclose([float(r[f"{m}_{s}"]) for r in rows], expected[m][:, i].numpy(), rtol=1e-6)
    md = (tmp_path / "r_summary.md").read_text()
    assert md.startswith("# Uncertainty and segmentation metrics\n\n6 images. SR/DC: correlation across images")
    assert "Dice_gt: Dice of prob >= 0.5 against the true mask.\n\n| metric | disc | cup |" in md
    assert f"| SR | {float(expected['across']['SR'][0]):.3f} |" in md
    assert (tmp_path / "r_reliability.png").is_file()


def test_report_metric_subset_and_fewer_than_three_images(tmp_path):
    report = UncertaintyReport(["a", "b"], tmp_path, prefix="s", metrics=["soft_dice", "SR"])
    assert set(report.metric_fns) == {"soft_dice", "SR"}
    for c in _random_cases(2):
        report.add(c["prob"], c["unc"], c["soft_label"], c["rater_var"])
    summary = report.summary()
    assert summary.metrics == ["soft_dice", "SR"] and summary.ids == ["0", "1"]
    assert np.isnan(summary.values["SR"]).all()  # SR/DC need 3 images
    assert summary.reliability is None and list(summary.image_columns) == ["unc_sum", "var_sum"]
    report.completed()
    assert not (tmp_path / "s_reliability.png").exists()
    assert [r["metric"] for r in csv.DictReader((tmp_path / "s_summary.csv").open())] == ["soft_dice", "SR"]
