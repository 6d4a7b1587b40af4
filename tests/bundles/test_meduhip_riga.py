"""End-to-end test of the meduhip_riga bundle with its real configs on tiny synthetic data (well under a minute).

train.json + cpu_small.json on an empty dataset_dir (the synthetic RIGA-like fallback builds 8 training images of
64 px), 2 epochs of MedUHIP's three-stage interactive training; then evaluate.json (the interactive evaluation: Dice
after k per strategy, Table 1, NoC, ablation, the case figure) on the test split, inference.json (vote fraction and
its variance written per input), and the model-zoo checks verify_metadata (offline), verify_net_in_out and
ckpt_export (mechanics from the ``bundle_checks`` fixture of tests/bundles/conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "meduhip_riga"
CONFIGS = BUNDLE / "configs"


def _overrides(tmp: Path) -> dict:
    return {
        "bundle_root": str(BUNDLE),
        "dataset_dir": str(tmp / "data"),
        "make_synthetic": True,
        "ckpt_dir": str(tmp / "models"),
        "output_dir": str(tmp / "eval"),
        "synthetic_data": {"num_per_source": {"BinRushed": 5, "MESSIDOR": 5, "Magrabia": 1}, "size": 64, "seed": 3},
        "epochs": 2,
        "rounds": 2,
        "num_interactions": 3,
        "noc_thresholds": [0.5],
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory, bundle_checks):
    return bundle_checks.train_small(BUNDLE, tmp_path_factory, _overrides)


def test_train_saves_a_model_of_the_cpu_recipe(trained, bundle_checks):
    datalist = json.loads((trained / "data" / "datalist.json").read_text())
    assert [len(datalist[s]) for s in ("training", "validation", "test")] == [8, 2, 1]
    state = torch.load(trained / "models" / "model.pt", map_location="cpu", weights_only=True)
    net = bundle_checks.parser([CONFIGS / "inference.json", CONFIGS / "cpu_small.json"]).get_parsed_content(
        "network_def"
    )
    net.load_state_dict(state)  # strict: the weights fit the CPU recipe's network
    assert net.num_samples == 8 and net.num_components == 4 and tuple(state["eval_noise"].shape) == (8, 8)
    assert json.loads((trained / "models" / "model.json").read_text())["weights"] == "model.pt"


def test_evaluate_writes_the_interactive_tables(trained):
    from monai.bundle import run

    run(
        config_file=[str(CONFIGS / n) for n in ("train.json", "evaluate.json", "cpu_small.json")], **_overrides(trained)
    )
    out = trained / "eval" / "interactive_test"
    summary = json.loads((out / "interactive_summary.json").read_text())
    assert summary["num_cases"] == 1 and summary["num_interactions"] == 3
    assert set(summary["dice_after_k"]) == {"random", "disagreement", "last_wrong", "meduhip"}
    curves = np.array(list(summary["dice_after_k"].values()))
    assert curves.shape == (4, 4) and np.all((curves >= 0) & (curves <= 1))
    assert np.allclose(curves[:, 0], curves[0, 0])  # k = 0: no click yet, the same for every strategy
    assert list(summary["table1_dice_after_3"]["meduhip"]) == ["1", "2", "3", "4", "5", "6", "mean"]
    # NoC@0.5 of one case: the first k in 0..3 with Dice >= 0.5, else 10 (not reached)
    for strategy, noc in summary["noc"]["0.5"].items():
        curve = summary["dice_after_k"][strategy]
        want = next((k for k, d in enumerate(curve) if d >= 0.5), 10)
        assert noc == want
    assert set(summary["table4"]) == {"sampling", "mean_variance", "weight", "full"}
    assert summary["table4"]["full"]["dice_after_3"] == pytest.approx(summary["dice_after_k"]["meduhip"][3])
    assert "## Table 3: number of clicks" in (out / "interactive_tables.md").read_text()
    assert (out / "interactive_case.png").stat().st_size > 10000


def test_inference_writes_vote_fraction_and_its_variance(trained):
    import nibabel as nib
    from monai.bundle import run

    out = trained / "inference"
    run(
        config_file=[str(CONFIGS / "inference.json"), str(CONFIGS / "cpu_small.json")],
        bundle_root=str(BUNDLE),
        dataset_dir=str(trained / "data"),
        ckpt_dir=str(trained / "models"),
        output_dir=str(out),
    )
    summary = json.loads((out / "inference_summary.json").read_text())
    assert summary["num_inputs"] == summary["num_written"] == 11 and summary["num_failed"] == 0
    prob = nib.load(out / "BinRushed_001_prob.nii.gz").get_fdata()
    unc = nib.load(out / "BinRushed_001_unc.nii.gz").get_fdata()
    assert prob.shape == unc.shape == (256, 256)  # the converted PNGs' geometry (the network saw 64 x 64)
    assert prob.min() >= 0 and prob.max() <= 1 and unc.min() >= 0 and unc.max() <= 0.25 + 1e-6


def test_zoo_checks(trained, tmp_path, bundle_checks):
    meta = bundle_checks.verify_metadata(BUNDLE)
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == 16
    bundle_checks.assert_metadata_rejected_without(
        BUNDLE, tmp_path, "network_data_format", "outputs", "pred", "num_channels"
    )
    bundle_checks.verify_net_in_out(BUNDLE, n=2)
    eager = bundle_checks.parser([CONFIGS / "inference.json", CONFIGS / "cpu_small.json"]).get_parsed_content(
        "network_def"
    )
    bundle_checks.assert_export_equals_eager(
        BUNDLE,
        trained / "models" / "model.pt",
        tmp_path / "model.ts",
        eager,
        (1, 3, 64, 64),
        configs=("inference.json", "cpu_small.json"),
        output_shape=(1, 8, 64, 64),
    )


@pytest.mark.docs
def test_docs_commands_run_in_order(tmp_path, doc_commands, doc_raw_data):
    """Every command block of this bundle's docs/README.md, in order, CPU-sized (see tests/doc_commands.py)."""
    skipped = doc_commands.run_bundle_doc("meduhip_riga", tmp_path, doc_raw_data)
    assert all("MONAI Label" in reason for _, reason in skipped)
