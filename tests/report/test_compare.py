"""Tests for monai_lexu.report.compare and the ``python -m monai_lexu.compare`` command line."""

from __future__ import annotations

import csv
import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from monai_lexu.report import (
    expand_runs,
    fusion_table,
    load_case_maps,
    load_evaluation,
    measure_inference_cost,
    plot_method_comparison,
    uncertainty_table,
)

REPO = Path(__file__).resolve().parents[2]


def _run(path: Path, values: dict[str, dict[str, float]], per_image: dict | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"num_images": 3, "mean": values, "std": {}, "per_image": per_image or {}}))
    return path


def _table2_run(sr: float, ncc: float) -> dict[str, dict[str, float]]:
    base = {"SR": sr, "DC": 0.5, "NCC": ncc, "soft_dice": 0.9, "NLL": 0.1}
    return {"disc": dict(base), "cup": {**base, "SR": sr - 0.5}}


def test_uncertainty_table_mean_std_over_runs(tmp_path):
    lexu = expand_runs([str(_run(tmp_path / f"lexu{i}.json", _table2_run(sr, 0.7))) for i, sr in enumerate([0.6, 0.8])])
    de = [load_evaluation(_run(tmp_path / "de.json", _table2_run(0.4, float("nan"))))]
    costs = {
        "LEXU": {"parameters": 2e6, "seconds_per_image": 0.01},
        "DE": {"parameters": 1e7, "seconds_per_image": 0.05},
    }
    rows, records = uncertainty_table({"LEXU": lexu, "DE": de}, costs=costs)
    assert [r["method"] for r in rows] == ["LEXU", "DE"] and rows[0]["runs"] == 2
    assert rows[0]["SR disc"] == "0.700 ± 0.100" and rows[0]["SR cup"] == "0.200 ± 0.100"
    assert rows[1]["SR disc"] == "0.400 ± 0.000"
    assert rows[1]["NCC disc"] == "nan"  # every run NaN
    assert rows[0]["params (M)"] == "2.000" and rows[1]["s / image"] == "0.0500"
    rec = {(r["method"], r["structure"], r["metric"]): r for r in records}
    assert rec[("LEXU", "disc", "SR")]["mean"] == pytest.approx(0.7) and rec[("LEXU", "disc", "SR")][
        "std"
    ] == pytest.approx(0.1)
    assert rec[("DE", "", "parameters")]["mean"] == 1e7
    with pytest.raises(ValueError, match="no 'DC'"):
        uncertainty_table({"X": [{"mean": {"disc": {"SR": 1.0}}, "path": "x.json"}]})
    with pytest.raises(ValueError, match="no method has an evaluation run"):
        uncertainty_table({"X": []})
    with pytest.raises(ValueError, match="'Y' has no evaluation run"):
        uncertainty_table({"LEXU": lexu, "Y": []}, costs=costs)
    cost_only, _ = uncertainty_table({"LEXU": lexu, "DE": []}, costs=costs)
    assert cost_only[1]["runs"] == 0 and cost_only[1]["SR cup"] == "not run" and cost_only[1]["params (M)"] == "10.000"


def test_load_evaluation_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_evaluation(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="UncertaintyReport"):
        load_evaluation(bad)
    with pytest.raises(FileNotFoundError, match="no evaluation file"):
        expand_runs([str(tmp_path / "nothing*.json")])


def test_fusion_table_is_mean_std_over_images(tmp_path):
    def run(wme: list[float], dice: list[float]) -> dict:
        per_image = {"object": {"WME": wme, "ME": [0.1, 0.1], "Dice_gt": dice}}
        return load_evaluation(_run(tmp_path / f"{wme[0]}.json", {"object": {"WME": 0.0}}, per_image))

    runs = {
        ("random", "unperturbed"): run([0.6, 0.8], [1.0, 0.9]),
        ("union", "unperturbed"): run([0.2, float("nan")], [0.8, 0.9]),
        ("random", "perturbed"): run([0.5, 0.7], [0.9, 0.9]),
    }
    rows, records = fusion_table(runs)
    assert [(r["metric"], r["images"]) for r in rows][:2] == [("WME", "U"), ("WME", "P")]
    assert rows[0]["random"] == "0.70 ± 0.10" and rows[0]["union"] == "0.20 ± 0.00 (n=1/2)"
    assert rows[1]["union"] == ""  # not run
    dice_u = next(r for r in rows if r["metric"] == "Dice_gt" and r["images"] == "U")
    assert dice_u["random"] == "0.95 ± 0.05"
    assert {r["fusion"] for r in records} == {"random", "union"}
    with pytest.raises(ValueError, match="ground_truth_key"):
        fusion_table({("random", "unperturbed"): {"mean": {"object": {}}, "per_image": {"object": {}}}})


def test_measure_inference_cost_counts_every_member():
    from monai_lexu.inferers import MultiHeadInferer
    from monai_lexu.networks import DeepEnsemble, MultiHeadUNet

    member = partial(MultiHeadUNet, 2, 1, 2, backbone="plain", features=(4, 8), heads="last")
    single, ensemble = member(), DeepEnsemble(member, num_members=3, seed=0)
    lexu = MultiHeadUNet(2, 1, 2, backbone="plain", features=(4, 8), heads="decoder")
    nets = {"single": single, "DE": ensemble, "LEXU": lexu}
    infs = {name: MultiHeadInferer(net.num_heads) for name, net in nets.items()}
    cost = measure_inference_cost(nets, infs, (1, 16, 16), device="cpu", repeats=2, warmup=1)
    n_single = sum(p.numel() for p in single.parameters())
    assert cost["DE"]["parameters"] == 3 * n_single
    assert cost["LEXU"]["parameters"] == sum(p.numel() for p in lexu.parameters())
    assert all(c["seconds_per_image"] > 0 and c["repeats"] == 2 for c in cost.values())
    with pytest.raises(ValueError, match="no inferer"):
        measure_inference_cost({"x": single}, {}, (1, 8, 8), device="cpu")


def test_bundle_inference_cost_builds_only_network_and_inferer(tmp_path):
    from monai_lexu.networks import MultiHeadUNet
    from monai_lexu.report import bundle_inference_cost

    configs = REPO / "bundles" / "lexu_riga" / "configs"
    files = [configs / "train.json", configs / "cpu_small.json"]
    cost = bundle_inference_cost(
        {"LEXU": files},
        (3, 32, 32),
        device="cpu",
        repeats=1,
        warmup=0,
        overrides={"LEXU": {"features": [4, 8, 16], "dataset_dir": str(tmp_path / "never")}},
    )
    expected = MultiHeadUNet(2, 3, 2, backbone="plain", features=(4, 8, 16))
    assert cost["LEXU"]["parameters"] == sum(p.numel() for p in expected.parameters())
    assert not (tmp_path / "never").exists()  # no data set was built


def _maps(seed: int, shape=(2, 16, 16)) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    raters = (rng.random((3, *shape)) > 0.5).astype(np.float32)
    return {
        "image": rng.random((3, *shape[1:])).astype(np.float32),
        "raters": raters,
        "soft_label": raters.mean(0),
        "rater_var": raters.var(0, ddof=1),
        "prob": rng.random(shape).astype(np.float32),
        "unc": rng.random(shape).astype(np.float32) * 0.1,
    }


def test_plot_method_comparison_writes_a_png(tmp_path):
    np.savez_compressed(tmp_path / "c.npz", **_maps(0))
    maps = {"LEXU": load_case_maps(tmp_path / "c.npz"), "LE": _maps(1), "DE": _maps(2)}
    out = plot_method_comparison(maps, tmp_path / "fig" / "f.png", ["disc", "cup"], title="t")
    from PIL import Image

    with Image.open(out) as im:  # 3 rows x 5 columns of 2.6-inch panels at 110 dpi
        assert im.size == (int(2.6 * 5 * 110), int(2.6 * 3 * 110))
    with pytest.raises(ValueError, match="reference shape"):
        plot_method_comparison({"a": _maps(0), "b": _maps(1, (2, 8, 8))}, tmp_path / "x.png", ["disc", "cup"])
    with pytest.raises(ValueError, match="L=1"):
        plot_method_comparison({"a": _maps(0)}, tmp_path / "x.png", ["disc"])
    with pytest.raises(FileNotFoundError):
        load_case_maps(tmp_path / "missing.npz")


def test_command_line_uncertainty_fusion_and_figure(tmp_path, capsys):
    from monai_lexu.compare import main

    for i, sr in enumerate([0.6, 0.8]):
        _run(tmp_path / "lexu" / f"s{i}" / "metrics_test.json", _table2_run(sr, 0.7))
    _run(tmp_path / "de" / "metrics_test.json", _table2_run(0.3, 0.5))
    out = tmp_path / "out"
    assert main(["uncertainty", "--out", str(out), "--method", f"LEXU={tmp_path}/lexu/*/metrics_test.json",
                 "--method", f"DE={tmp_path}/de/metrics_test.json"]) == 0  # fmt: skip
    rows = list(csv.DictReader((out / "table2_uncertainty.csv").open()))
    assert {(r["method"], r["structure"], r["metric"]) for r in rows} >= {("LEXU", "disc", "SR"), ("DE", "cup", "NLL")}
    assert "| LEXU | 2 | 0.700 ± 0.100 |" in (out / "table2_uncertainty.md").read_text()

    per = {"object": {"WME": [0.5], "ME": [0.1], "Dice_gt": [0.9]}}
    for fusion in ("union", "random", "majority"):
        for variant in ("perturbed", "unperturbed"):
            _run(tmp_path / "mc" / f"{fusion}_{variant}" / "metrics_test.json", {"object": {"WME": 0.5}}, per)
    assert main(["fusion", "--root", str(tmp_path / "mc"), "--out", str(out)]) == 0
    md = (out / "table1_fusion.md").read_text()
    assert "| metric | images | random | majority | union |" in md  # paper order, not alphabetical
    assert "| WME | U | 0.50 ± 0.00 |" in md

    for name, seed in (("LEXU", 0), ("DE", 1)):
        (tmp_path / name).mkdir()
        np.savez_compressed(tmp_path / name / "case7.npz", **_maps(seed))
    png = tmp_path / "fig.png"
    args = ["figure", "--out", str(png), "--structures", "disc", "cup"]
    assert main(args + ["--maps", f"LEXU={tmp_path / 'LEXU'}", "--maps", f"DE={tmp_path / 'DE'}"]) == 0
    assert png.stat().st_size > 10_000 and "case7" not in capsys.readouterr().err

    with pytest.raises(SystemExit, match="--input-shape"):
        main(["uncertainty", "--out", str(out), "--method", f"DE={tmp_path}/de/metrics_test.json",
              "--cost", "DE=a.json"])  # fmt: skip
    with pytest.raises(SystemExit):
        main(["uncertainty", "--out", str(out), "--method", "no-equals-sign"])


def test_bundle_inference_cost_of_calibrated_ensemble_and_calibrated_heads(tmp_path):
    """The calibrated ensemble (evaluate.json's CalibratedEnsembleInferer) and LEXU with calibrated heads get cost
    rows; a coefficient file that is not there yet is replaced by equal coefficients (cost does not depend on them)."""
    from monai_lexu.inferers import save_coefficients
    from monai_lexu.networks import MultiHeadUNet
    from monai_lexu.report import bundle_inference_cost

    ce = REPO / "bundles" / "calibrated_ensemble_riga" / "configs"
    lexu = REPO / "bundles" / "lexu_riga" / "configs"
    small = {"features": [4, 8, 16], "dataset_dir": str(tmp_path / "never")}
    bundles = {
        "CE": [ce / "train.json", ce / "cpu_small.json", ce / "evaluate.json"],
        "LEXU-cal": [lexu / "train.json", lexu / "cpu_small.json", ce / "evaluate_calibrated_heads.json"],
    }
    overrides = {"CE": {**small, "models_dir": str(tmp_path / "ce")}, "LEXU-cal": {**small, "ckpt_dir": str(tmp_path)}}
    cost = bundle_inference_cost(bundles, (3, 32, 32), device="cpu", repeats=1, warmup=0, overrides=overrides)
    member = MultiHeadUNet(2, 3, 2, backbone="plain", features=(4, 8, 16), heads="last")
    assert cost["CE"]["parameters"] == 7 * sum(p.numel() for p in member.parameters())
    lexu_net = MultiHeadUNet(2, 3, 2, backbone="plain", features=(4, 8, 16))
    assert cost["LEXU-cal"]["parameters"] == sum(p.numel() for p in lexu_net.parameters())
    assert cost["CE"]["coefficients"] == cost["LEXU-cal"]["coefficients"] == "placeholder"
    assert not (tmp_path / "never").exists()

    save_coefficients(tmp_path / "calibration_heads.json", [[0.25] * lexu_net.num_heads] * 2, ["disc", "cup"])
    cost = bundle_inference_cost(
        {"LEXU-cal": bundles["LEXU-cal"]}, (3, 32, 32), "cpu", 1, 0, overrides={"LEXU-cal": overrides["LEXU-cal"]}
    )
    assert "coefficients" not in cost["LEXU-cal"] and cost["LEXU-cal"]["seconds_per_image"] > 0


def test_command_line_uncertainty_rows_and_cost_of_calibrated_methods(tmp_path):
    from monai_lexu.compare import main

    _run(tmp_path / "ce" / "metrics_test.json", _table2_run(0.4, 0.6))
    _run(tmp_path / "lexu_cal" / "metrics_test.json", _table2_run(0.5, 0.65))
    ce = REPO / "bundles" / "calibrated_ensemble_riga" / "configs"
    lexu = REPO / "bundles" / "lexu_riga" / "configs"
    out = tmp_path / "out"
    args = ["uncertainty", "--out", str(out), "--input-shape", "3,32,32", "--repeats", "1", "--device", "cpu",
            "--method", f"CE={tmp_path}/ce/metrics_test.json",
            "--method", f"LEXU-cal={tmp_path}/lexu_cal/metrics_test.json",
            "--cost", f"CE={ce}/train.json,{ce}/cpu_small.json,{ce}/evaluate.json",
            "--cost", f"LEXU-cal={lexu}/train.json,{lexu}/cpu_small.json,{ce}/evaluate_calibrated_heads.json",
            ]  # fmt: skip
    assert main(args) == 0
    md = (out / "table2_uncertainty.md").read_text()
    assert "| CE | 1 | 0.400 ± 0.000 |" in md and "| LEXU-cal | 1 | 0.500 ± 0.000 |" in md
    rows = list(csv.DictReader((out / "table2_uncertainty.csv").open()))
    params = {r["method"]: float(r["mean"]) for r in rows if r["metric"] == "parameters"}
    assert set(params) == {"CE", "LEXU-cal"} and params["CE"] > params["LEXU-cal"] > 0
