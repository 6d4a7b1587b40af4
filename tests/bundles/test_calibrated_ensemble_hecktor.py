"""End-to-end test of the calibrated_ensemble_hecktor bundle: its real configs, a few iterations on tiny data.

The documented command sequence on the synthetic PET/CT-like fallback (6 cases, 3 folds): train.json (+ the CPU
override) for every fold (a shared base model for 1 of 2 epochs, then 7 members with shifted loss weights),
fit_calibration.json on the out-of-fold predictions of folds 1 and 2 (Gaussian sliding window), the seed-ensemble and
dropout baselines, evaluate_heatmaps.json on fold 0, inference.json on raw CT/PET with the calibrated inferer, and the
model-zoo checks (verify_metadata, verify_net_in_out, ckpt_export).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "calibrated_ensemble_hecktor"
CONFIGS = BUNDLE / "configs"


def _overrides(tmp: Path) -> dict:
    return {
        "bundle_root": str(BUNDLE),
        "dataset_dir": str(tmp / "data"),
        "make_synthetic": True,
        "models_dir": str(tmp / "models"),
        "output_dir": str(tmp / "eval"),
        "synthetic_data": {"num_cases": 6, "seed": 1},
        "epochs": 2,  # branch after epoch 1
        "val_interval": 100,  # no validation pass: the heatmap evaluation below covers the sliding window
    }


def _run(tmp: Path, *names: str, **extra) -> None:
    from monai.bundle import run

    files = [str(CONFIGS / "train.json"), str(CONFIGS / "cpu_small.json")] + [str(CONFIGS / n) for n in names]
    run(config_file=files, **{**_overrides(tmp), **extra})


@pytest.fixture(scope="module")
def trained(tmp_path_factory, bundle_checks):
    tmp = bundle_checks.train_small(BUNDLE, tmp_path_factory, _overrides)  # fold 0 -> model_fold0.pt, model.pt
    for fold in (1, 2):
        _run(tmp, fold=fold)
    _run(tmp, "fit_calibration.json")
    _run(tmp, "seed_ensemble.json")
    _run(tmp, "dropout.json")
    return tmp


def test_folds_and_coefficients(trained):
    models = trained / "models"
    for k in range(3):
        state = torch.load(models / f"model_fold{k}.pt", map_location="cpu", weights_only=True)
        assert not bool(state["shared"])
        assert {k.split(".")[1] for k in state if k.startswith("members.")} == {str(m) for m in range(7)}
    body = json.loads((models / "calibration.json").read_text())
    assert body["structures"] == ["GTVp", "GTVn"] and body["evaluation_fold"] == 0
    assert [f["fold"] for f in body["folds"]] == [1, 2]  # the evaluation fold 0 never enters the fit
    assert [f["checkpoint"] for f in body["folds"]] == ["model_fold1.pt", "model_fold2.pt"]
    assert len(body["coefficients"]) == 2 and all(len(r) == 7 for r in body["coefficients"])
    assert (models / "seed_ensemble" / "model_fold0.pt").is_file() and (models / "dropout" / "model_fold0.pt").is_file()


def test_evaluate_heatmaps_on_fold0(trained):
    _run(trained, "evaluate_heatmaps.json")
    out = trained / "eval" / "heatmaps_fold0"
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == {"calibrated", "seed_ensemble", "dropout"}
    assert summary["cases"] == 2
    for method in summary["methods"].values():
        for s in ("GTVp", "GTVn"):
            assert 0.0 <= method["structures"][s]["ece"] <= 1.0
    assert (out / "calibration_curves.png").stat().st_size > 1000
    assert (out / "union_intersection.csv").is_file() and (out / "trainee.csv").is_file()


def test_inference_in_ct_space(trained, bundle_checks):
    written = bundle_checks.run_hecktor_inference(BUNDLE, trained)
    assert written
    for cid in written:
        bundle_checks.check_ct_space_maps(trained, cid, unc_max=0.25)


def test_verify_metadata_offline(tmp_path, bundle_checks):
    meta = bundle_checks.verify_metadata(BUNDLE)
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == 14


def test_verify_net_in_out_default_network(bundle_checks):
    bundle_checks.verify_net_in_out(BUNDLE, n=1)


def test_ckpt_export_of_the_trained_model(trained, bundle_checks):
    from functools import partial

    from monai_lexu.networks import MultiHeadUNet, SharedBaseEnsemble

    member = partial(MultiHeadUNet, 3, 2, 2, backbone="plain", features=(8, 16, 32, 64), heads="last")
    bundle_checks.assert_export_equals_eager(
        BUNDLE,
        trained / "models" / "model.pt",
        trained / "model.ts",
        SharedBaseEnsemble(member, 7, 0),
        input_shape=(1, 2, 32, 32, 32),
        configs=("inference.json", "cpu_small.json"),
        output_shape=(1, 14, 32, 32, 32),
    )


def test_calibrate_heads_of_a_lexu_model(trained):
    """calibrate_heads.json after lexu_hecktor's configs: the heads of LEXU's fold-1 and fold-2 models predict their
    held-out folds (Gaussian sliding window) for the fit, as the calibrated ensemble's own protocol; the fold-0 model's
    heads, calibrated and as the plain mean of their masks, are evaluated on fold 0."""
    from monai.bundle import run

    lexu = REPO / "bundles" / "lexu_hecktor" / "configs"
    overrides = {
        **_overrides(trained),
        "bundle_root": str(REPO / "bundles" / "lexu_hecktor"),
        "ckpt_dir": str(trained / "lexu"),
        "output_dir": str(trained / "eval_lexu"),
    }
    overrides.pop("models_dir")
    train = [str(lexu / "train.json"), str(lexu / "cpu_small.json")]
    for fold in (0, 1, 2):
        run(config_file=train, **overrides, fold=fold)
    # a fresh process, as a user runs it: the merged config's own imports must suffice (this process has them all)
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        str(train + [str(CONFIGS / "calibrate_heads.json")]),
    ]
    for key, value in overrides.items():
        cmd += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    body = json.loads((trained / "lexu" / "calibration_heads.json").read_text())
    assert body["num_members"] == 3 and body["fit_section"] == "out-of-fold"  # 3 decoder heads (features 8-64)
    assert body["evaluation_fold"] == 0 and [f["fold"] for f in body["folds"]] == [1, 2]
    assert [f["checkpoint"] for f in body["folds"]] == ["model_fold1.pt", "model_fold2.pt"]
    summary = json.loads((trained / "eval_lexu" / "heatmaps_heads_fold0" / "summary.json").read_text())
    assert set(summary["methods"]) == {"calibrated_heads", "mean_of_head_masks"} and summary["cases"] == 2
    assert summary["prediction_from"] == "mean_of_head_masks"


@pytest.mark.docs
def test_docs_commands_run_in_order(tmp_path, doc_commands, doc_raw_data):
    """Every command block of docs/README.md in order, CPU-sized (tests/doc_commands.py), 2 epochs per training (the
    members branch after the first): the three folds, the fit, both baselines, the heatmap evaluation, evaluate,
    inference, and LEXU's three folds with calibrated heads."""
    skipped = doc_commands.run_bundle_doc("calibrated_ensemble_hecktor", tmp_path, doc_raw_data, epochs=2, timeout=3600)
    assert skipped == []
    work = tmp_path / "repo"  # the repository copy of run_bundle_doc
    calib = json.loads((work / "bundles/calibrated_ensemble_hecktor/models/calibration.json").read_text())
    assert calib["num_members"] == 7 and [f["fold"] for f in calib["folds"]] == [1, 2]
    heat = json.loads((work / "bundles/calibrated_ensemble_hecktor/eval/heatmaps_fold0/summary.json").read_text())
    assert set(heat["methods"]) == {"calibrated", "seed_ensemble", "dropout"}
    heads = json.loads((work / "bundles/lexu_hecktor/eval/heatmaps_heads_fold0/summary.json").read_text())
    assert set(heads["methods"]) == {"calibrated_heads", "mean_of_head_masks"}
