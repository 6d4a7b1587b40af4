"""End-to-end test of the lexu_riga bundle: its real configs, a few iterations on small synthetic data.

Runs train.json (+ the CPU override) on an empty dataset_dir (so the synthetic RIGA-like fallback builds the data in
the RIGA layout and data_prep's converter reads it), then evaluate.json and inference.json, and the model-zoo checks
verify_metadata (offline, shipped schema), verify_net_in_out and ckpt_export (the mechanics of these checks and of the
metric-table and inference-map checks come from the ``bundle_checks`` fixture of tests/bundles/conftest.py).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "lexu_riga"


def _overrides(tmp: Path) -> dict:
    return {
        "bundle_root": str(BUNDLE),
        "dataset_dir": str(tmp / "data"),
        "make_synthetic": True,  # a synthetic set in this fresh folder
        "ckpt_dir": str(tmp / "models"),
        "output_dir": str(tmp / "eval"),
        "synthetic_data": {"num_per_source": {"BinRushed": 5, "MESSIDOR": 5, "Magrabia": 4}, "size": 64, "seed": 3},
        "image_size": [64, 64],
        "features": [8, 16, 32, 64],
        "epochs": 2,
        "batch_size": 4,
        "val_interval": 1,
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory, bundle_checks):
    return bundle_checks.train_small(BUNDLE, tmp_path_factory, _overrides)


def test_train_builds_synthetic_data_and_saves_the_model(trained):
    data = trained / "data"
    datalist = json.loads((data / "datalist.json").read_text())
    # 5 + 5 BinRushed/MESSIDOR images split 80/20 -> 8 training, 2 validation; Magrabia -> 4 test
    assert [len(datalist[s]) for s in ("training", "validation", "test")] == [8, 2, 4]
    assert (data / "raw" / "Glaucoma_multirater_Magrabia.csv").is_file()
    assert all(len(case["raters"]) == 6 for case in datalist["test"])
    state = torch.load(trained / "models" / "model.pt", map_location="cpu", weights_only=True)
    assert any(k.startswith("heads.") for k in state)


def test_train_logs_the_synthetic_fallback(tmp_path, caplog):
    from monai_lexu.datasets.riga import ensure_riga_dataset

    with caplog.at_level(logging.WARNING, logger="monai_lexu"):
        ensure_riga_dataset(
            tmp_path / "d", {"num_per_source": {"BinRushed": 2, "MESSIDOR": 2, "Magrabia": 1}, "size": 32}
        )
    assert any("synthetic" in r.getMessage().lower() for r in caplog.records)


def test_evaluate_writes_the_metric_table(trained, bundle_checks):
    out = bundle_checks.run_riga_evaluation(BUNDLE, _overrides(trained))
    assert "| metric | disc | cup |" in (out / "metrics_test_summary.md").read_text()
    assert (out / "metrics_test_reliability.png").stat().st_size > 1000


def test_inference_writes_probability_and_uncertainty_in_the_input_geometry(trained, bundle_checks):
    # unbiased variance of K values in [0, 1] is at most K/(4(K-1)) (even K), (K+1)/(4K) (odd K): 1/3 for 3 heads
    bundle_checks.check_riga_inference(BUNDLE, trained, _overrides(trained), unc_max=1.0 / 3.0)


def test_verify_metadata_offline_and_rejects_a_broken_file(tmp_path, bundle_checks):
    bundle_checks.verify_metadata(BUNDLE)
    bundle_checks.assert_metadata_rejected_without(
        BUNDLE, tmp_path, "network_data_format", "outputs", "pred", "num_channels"
    )


def test_verify_net_in_out_default_network(bundle_checks):
    bundle_checks.verify_net_in_out(BUNDLE, n=2)


def test_ckpt_export_of_the_trained_model(trained, bundle_checks):
    from monai_lexu.networks import MultiHeadUNet

    bundle_checks.assert_export_equals_eager(
        BUNDLE,
        trained / "models" / "model.pt",
        trained / "model.ts",
        MultiHeadUNet(2, 3, 2, backbone="plain", features=(8, 16, 32, 64)),
        input_shape=(1, 3, 64, 64),
        configs=("inference.json", "cpu_small.json"),
        features=[8, 16, 32, 64],
    )


@pytest.mark.docs
def test_docs_commands_run_in_order(tmp_path, doc_commands, doc_raw_data):
    """Every command block of this bundle's docs/README.md, in order, CPU-sized (see tests/doc_commands.py)."""
    skipped = doc_commands.run_bundle_doc("lexu_riga", tmp_path, doc_raw_data)
    assert all("MONAI Label" in reason for _, reason in skipped)  # run by tests/label against a real server
