"""End-to-end test of the calibrated_ensemble_riga bundle: its real configs, a few iterations on small synthetic data.

The documented command sequence on the synthetic RIGA-like fallback: train.json (+ the CPU override) for the three
cross-validation folds (a shared base model for 3 of 4 epochs, then 7 members with shifted loss weights),
fit_calibration.json (coefficients from the out-of-fold predictions -> calibration.json), the seed-ensemble and
dropout baselines, evaluate_heatmaps.json (curves, tables, scatter, ECE), evaluate.json and inference.json with the
calibrated inferer, and the model-zoo checks (verify_metadata, verify_net_in_out, ckpt_export).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "calibrated_ensemble_riga"
CONFIGS = BUNDLE / "configs"


def _overrides(tmp: Path) -> dict:
    return {
        "bundle_root": str(BUNDLE),
        "dataset_dir": str(tmp / "data"),
        "make_synthetic": True,
        "models_dir": str(tmp / "models"),
        "output_dir": str(tmp / "eval"),
        "synthetic_data": {"num_per_source": {"BinRushed": 5, "MESSIDOR": 5, "Magrabia": 4}, "size": 64, "seed": 3},
        "image_size": [64, 64],
        "features": [8, 16, 32, 64],
        "epochs": 4,
        "batch_size": 4,
        "val_interval": 2,
    }


def _run(tmp: Path, *names: str, **extra) -> None:
    from monai.bundle import run

    files = [str(CONFIGS / "train.json"), str(CONFIGS / "cpu_small.json")] + [str(CONFIGS / n) for n in names]
    run(config_file=files, **{**_overrides(tmp), **extra})


@pytest.fixture(scope="module")
def trained(tmp_path_factory, bundle_checks):
    tmp = bundle_checks.train_small(BUNDLE, tmp_path_factory, _overrides)  # fold 0 -> models/model.pt
    for fold in (1, 2):
        _run(tmp, fold=fold)
    _run(tmp, "fit_calibration.json")
    _run(tmp, "seed_ensemble.json")
    _run(tmp, "dropout.json")
    return tmp


def test_folds_branch_into_members_and_fit_writes_coefficients(trained):
    models = trained / "models"
    for path in (models / "model.pt", models / "fold1" / "model.pt", models / "fold2" / "model.pt"):
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert not bool(state["shared"])  # branched at epoch 3 of 4
        assert {k.split(".")[1] for k in state if k.startswith("members.")} == {str(m) for m in range(7)}
        assert not torch.equal(state["members.0.heads.0.weight"], state["members.6.heads.0.weight"])
    body = json.loads((models / "calibration.json").read_text())
    assert body["structures"] == ["disc", "cup"] and body["target"] == "soft"
    assert len(body["coefficients"]) == 2 and all(len(row) == 7 for row in body["coefficients"])
    assert [f["cases"] for f in body["folds"]] == [3, 3, 2]  # 8 training cases, index modulo 3
    assert body["shifts"] == [-3, -2, -1, 0, 1, 2, 3]
    assert (models / "seed_ensemble" / "model.pt").is_file() and (models / "dropout" / "model.pt").is_file()


def test_evaluate_heatmaps_writes_curves_tables_and_scatter(trained):
    _run(trained, "evaluate_heatmaps.json")
    out = trained / "eval" / "heatmaps"
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == {"calibrated", "seed_ensemble", "dropout"}
    assert summary["cases"] == 4 and summary["prediction_from"] == "seed_ensemble"
    for method in summary["methods"].values():
        assert method["members"] == 7
        for s in ("disc", "cup"):
            figures = method["structures"][s]
            assert 0.0 <= figures["ece"] <= 1.0
            assert figures["dice_estimate"]["n"] <= 4
    for name in ("calibration_curves.png", "dice_estimate.png"):
        assert (out / name).stat().st_size > 1000
    rows = list(csv.DictReader((out / "union_intersection.csv").open()))
    assert {(r["method"], r["structure"]) for r in rows} == {
        (m, s) for m in ("calibrated", "seed_ensemble", "dropout") for s in ("disc", "cup")
    }
    curve = list(csv.DictReader((out / "parzen_calibrated.csv").open()))
    assert curve[0]["node"] == "0.0" and {"voxels", "frequency", "mean_confidence"} <= set(curve[0])
    assert "| method | structure |" in (out / "summary.md").read_text()


def test_evaluate_uses_the_calibrated_inferer(trained, bundle_checks):
    out = bundle_checks.run_riga_evaluation(BUNDLE, {**_overrides(trained), "output_dir": str(trained / "eval_base")})
    assert "| metric | disc | cup |" in (out / "metrics_test_summary.md").read_text()


def test_inference_writes_probability_and_uncertainty(trained, bundle_checks):
    # uncertainty = p (1 - p) <= 1/4
    overrides = {**_overrides(trained), "ckpt_dir": str(trained / "models")}
    bundle_checks.check_riga_inference(BUNDLE, trained, overrides, unc_max=0.25)


def test_inference_without_coefficients_names_the_file(trained, tmp_path):
    from monai.bundle import run

    models = tmp_path / "models"
    models.mkdir()
    (models / "model.pt").write_bytes((trained / "models" / "model.pt").read_bytes())
    with pytest.raises(RuntimeError):  # every input fails, naming the file (MONAI wraps the error of 'run')
        run(
            config_file=[str(CONFIGS / "inference.json"), str(CONFIGS / "cpu_small.json")],
            bundle_root=str(BUNDLE),
            ckpt_dir=str(models),
            input_glob=str(trained / "data" / "images" / "Magrabia_00[12].png"),
            output_dir=str(tmp_path / "out"),
            image_size=[64, 64],
            features=[8, 16, 32, 64],
        )
    summary = (tmp_path / "out" / "inference_summary.json").read_text()
    assert f"{models / 'calibration.json'}: no calibration coefficients" in summary


def test_verify_metadata_offline(tmp_path, bundle_checks):
    meta = bundle_checks.verify_metadata(BUNDLE)
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == 14
    bundle_checks.assert_metadata_rejected_without(
        BUNDLE, tmp_path, "network_data_format", "outputs", "pred", "num_channels"
    )


def test_verify_net_in_out_default_network(bundle_checks):
    bundle_checks.verify_net_in_out(BUNDLE, n=2)


def test_ckpt_export_of_the_trained_model(trained, bundle_checks):
    from functools import partial

    from monai_lexu.networks import MultiHeadUNet, SharedBaseEnsemble

    member = partial(MultiHeadUNet, 2, 3, 2, backbone="plain", features=(8, 16, 32, 64), heads="last")
    bundle_checks.assert_export_equals_eager(
        BUNDLE,
        trained / "models" / "model.pt",
        trained / "model.ts",
        SharedBaseEnsemble(member, 7, 0),
        input_shape=(1, 3, 64, 64),
        configs=("inference.json", "cpu_small.json"),
        output_shape=(1, 14, 64, 64),
        features=[8, 16, 32, 64],
    )


def test_calibrate_heads_of_a_lexu_model(tmp_path):
    """calibrate_heads.json after lexu_riga's configs: the heads' coefficients and the single-pass heatmap figures."""
    from monai.bundle import run

    lexu = REPO / "bundles" / "lexu_riga" / "configs"
    overrides = {
        **_overrides(tmp_path),
        "bundle_root": str(REPO / "bundles" / "lexu_riga"),
        "ckpt_dir": str(tmp_path / "models"),
        "epochs": 2,
        "val_interval": 2,
    }
    overrides.pop("models_dir")
    run(config_file=[str(lexu / "train.json"), str(lexu / "cpu_small.json")], **overrides)
    run(
        config_file=[str(lexu / "train.json"), str(lexu / "cpu_small.json"), str(CONFIGS / "calibrate_heads.json")],
        **overrides,
    )
    body = json.loads((tmp_path / "models" / "calibration_heads.json").read_text())
    assert body["num_members"] == 3 and body["fit_section"] == "validation"  # 3 decoder heads (features 8-64)
    summary = json.loads((tmp_path / "eval" / "heatmaps_heads" / "summary.json").read_text())
    assert set(summary["methods"]) == {"calibrated_heads", "mean_of_head_masks"}
    assert summary["prediction_from"] == "mean_of_head_masks"


DOC_EPOCHS = 12
"""Epochs per training of the docs run: with one epoch, untrained members vote no cup or disc anywhere and the
coefficient fit (rightly) refuses to solve Eq. 2 without a non-empty vote pattern."""
QUICK = {'Q=""': "Q=\",'bundles/calibrated_ensemble_riga/configs/quick.json'\""}
"""The documented tiny-data setting of the docs' ``Q`` (configs/quick.json after every command's configs)."""


@pytest.mark.docs
def test_docs_commands_run_in_order(tmp_path, doc_commands):
    """Every command block of docs/README.md in order, CPU-sized (tests/doc_commands.py) and with the docs' tiny-data
    setting ``Q`` (configs/quick.json): the three folds, the fit, both baselines, the heatmap evaluation, evaluate,
    inference, LEXU with calibrated heads (fit, figures, metric table) and the comparison with cost rows. The page
    names no real-data folder, so the session's raw-data stand-ins (doc_raw_data) are not needed."""
    skipped = doc_commands.run_bundle_doc("calibrated_ensemble_riga", tmp_path, QUICK, epochs=DOC_EPOCHS)
    assert skipped == []
    work = tmp_path / "repo"  # the repository copy of run_bundle_doc
    calib = json.loads((work / "bundles/calibrated_ensemble_riga/models/calibration.json").read_text())
    assert calib["num_members"] == 7 and len(calib["folds"]) == 3
    heat = json.loads((work / "bundles/calibrated_ensemble_riga/eval/heatmaps/summary.json").read_text())
    assert set(heat["methods"]) == {"calibrated", "seed_ensemble", "dropout"}
    assert (work / "bundles/lexu_riga/eval_calibrated_heads/metrics_test.json").is_file()
    table = (work / "eval/compare/table2_uncertainty.md").read_text()
    assert "| CE | 1 |" in table and "| LEXU-cal | 1 |" in table
