"""Tests for monai_lexu.handlers.uncertainty_report."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from monai_lexu.handlers import UncertaintyReport, from_engine_output


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
    var_sums = [1.0, 4.0, 2.0, 3.0]
    unc_sums = [10.0, 40.0, 30.0, 20.0]  # ranks (1,4,3,2) vs (1,4,2,3): rho = 1 - 6*2/(4*15) = 0.8
    for v, u in zip(var_sums, unc_sums):
        var = torch.tensor([[[v / 4] * 2] * 2])  # (1,2,2) sums to v
        unc = torch.tensor([[[u / 4] * 2] * 2])
        report.add(torch.zeros_like(var), unc, torch.zeros_like(var), var)
    assert report.completed()["a"]["SR"] == pytest.approx(0.8)


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


def test_from_engine_output_looks_inside_label():
    out = [_case(1.0, 0), _case(2.0, 1)]
    prob, soft = from_engine_output(["prob", "soft_label"])(out)
    assert len(prob) == 2 and torch.equal(soft[1], out[1]["label"]["soft_label"])


def test_loss_terms_output_reads_the_loss_and_its_terms():
    from monai_lexu.handlers import loss_terms_output

    class _Loss:
        last_terms = {"seg": torch.tensor(0.5), "dgm": torch.tensor(0.25), "loss": torch.tensor(9.0)}

    loss = torch.tensor(1.75, requires_grad=True) * 1.0
    transform = loss_terms_output(_Loss())
    assert transform({"loss": loss}) == {"loss": 1.75, "seg": 0.5, "dgm": 0.25}
    assert transform([{"loss": loss}, {"loss": loss}]) == {"loss": 1.75, "seg": 0.5, "dgm": 0.25}


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
    report.save_case_maps()
    with np.load(tmp_path / "v_maps" / "vol.npz") as z:
        assert int(z["slice"]) == 4 and z["prob"].shape == (2, 4, 4) and z["raters"].shape == (2, 2, 4, 4)
