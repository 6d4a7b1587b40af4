"""End-to-end test of the lexu_hecktor bundle with its real configs on a small synthetic PET/CT set.

train.json (+ cpu_small.json) on an empty dataset_dir builds the synthetic set in the HECKTOR layout and converts it
with data_prep's converter; then evaluate.json (fold table + cross-validation summary), inference.json on the raw
CT/PET files (outputs in the original CT space), DDP training with torchrun (2 CPU processes, gloo), the paper's
2D slice protocol (train_slices.json / evaluate_slices.json) and the model-zoo checks (their mechanics, the inference
run and the CT-space map checks come from the ``bundle_checks`` fixture of tests/bundles/conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "lexu_hecktor"
CONFIGS = BUNDLE / "configs"
CPU = str(CONFIGS / "cpu_small.json")


def _overrides(tmp: Path, **extra) -> dict:
    return {
        "bundle_root": str(BUNDLE),
        "dataset_dir": str(tmp / "data"),
        "make_synthetic": True,  # a synthetic set in this fresh folder
        "ckpt_dir": str(tmp / "models"),
        "output_dir": str(tmp / "eval"),
        "synthetic_data": {"num_cases": 6, "seed": 1},
        "epochs": 30,
        "val_interval": 30,
        **extra,
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory, bundle_checks):
    return bundle_checks.train_small(BUNDLE, tmp_path_factory, _overrides)


def test_train_builds_the_synthetic_set_and_saves_fold_models(trained):
    datalist = json.loads((trained / "data" / "datalist.json").read_text())
    cases = datalist["training"]
    assert len(cases) == 6 and sorted({c["fold"] for c in cases}) == [0, 1, 2]
    assert all(2 <= len(c["raters"]) <= 4 and len(c["image"]) == 2 for c in cases)
    assert (trained / "data" / "summary.csv").is_file()
    for name in ("model.pt", "model_fold0.pt"):
        state = torch.load(trained / "models" / name, map_location="cpu", weights_only=True)
        assert any(k.startswith("heads.") for k in state)


def test_evaluate_fold_table_and_cross_validation_summary(trained, bundle_checks):
    from monai.bundle import run

    run(config_file=[str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json"), CPU], **_overrides(trained))
    out = trained / "eval"
    summary = bundle_checks.metric_summary(out / "metrics_fold0_summary.csv")
    assert all(0.0 <= float(summary["soft_dice"][s]) <= 1.0 for s in ("GTVp", "GTVn"))
    cv = json.loads((out / "metrics_folds_summary.json").read_text())
    assert set(cv) == {"GTVp", "GTVn"} and "fold0" in cv["GTVp"]["NCC"]
    assert "missing: [1, 2]" in (out / "metrics_folds_summary.md").read_text()


def test_inference_in_the_original_ct_space(trained, bundle_checks):
    held_out = bundle_checks.run_hecktor_inference(BUNDLE, trained)
    for cid in held_out:
        _, u = bundle_checks.check_ct_space_maps(trained, cid)
        assert np.isfinite(u).all() and u.max() > 0, cid
    # No band-vs-outside assertion here any more: this test trains 30 epochs, and on the head-and-neck phantom that is
    # too short for the property (measured: GTVp band 2.3x outside for SYN-001 but 0.84x for SYN-002, GTVn 1.09x). The
    # quick start's 400 epochs give band/core GTVp 4.6, GTVn 2.1 (bundles/lexu_hecktor/docs/results/quickstart.json);
    # the band/core metric itself has known-answer tests (tests/metrics/test_band_core.py).


def test_verify_metadata_net_in_out_and_ckpt_export(trained, bundle_checks):
    from monai_lexu.networks import MultiHeadUNet

    bundle_checks.verify_metadata(BUNDLE)
    bundle_checks.verify_net_in_out(BUNDLE, n=2)
    bundle_checks.assert_export_equals_eager(
        BUNDLE,
        trained / "models" / "model.pt",
        trained / "model.ts",
        MultiHeadUNet(3, 2, 2, backbone="plain", features=json.loads(Path(CPU).read_text())["features"]),
        input_shape=(1, 2, 32, 32, 32),
        configs=("inference.json", "cpu_small.json"),
    )


def test_multi_gpu_train_with_torchrun_gloo(trained, tmp_path):
    """DDP training: 2 CPU processes with the gloo backend, the real multi_gpu_train.json."""
    configs = [str(CONFIGS / "train.json"), str(CONFIGS / "multi_gpu_train.json"), CPU]
    args = _overrides(trained, epochs=2, val_interval=2)
    args.update(ckpt_dir=str(tmp_path / "models"), output_dir=str(tmp_path / "eval"))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
           "monai.bundle", "run", "--config_file", str(configs)]  # fmt: skip
    for key, value in args.items():
        cmd += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 0 of 2 (gloo)" in proc.stdout + proc.stderr and "rank 1 of 2 (gloo)" in proc.stdout + proc.stderr
    state = torch.load(tmp_path / "models" / "model.pt", map_location="cpu", weights_only=True)
    assert not any(k.startswith("module.") for k in state)  # saved unwrapped from DistributedDataParallel


def test_paper_slice_protocol(trained, tmp_path):
    from monai.bundle import run

    args = _overrides(trained, epochs=1, val_interval=1)
    args.update(
        ckpt_dir=str(tmp_path / "models"),
        output_dir=str(tmp_path / "eval"),
        backbone="plain",
        features=[8, 16, 32, 64],
        image_size=[64, 64],
        batch_size=8,
        num_workers=0,
    )
    run(config_file=[str(CONFIGS / "train_slices.json")], **args)
    slices = json.loads((trained / "data" / "slices" / "datalist.json").read_text())["training"]
    volumes = {c["id"]: c for c in json.loads((trained / "data" / "datalist.json").read_text())["training"]}
    assert slices and all(s["fold"] == volumes[s["case"]]["fold"] for s in slices)  # patient-level folds kept
    run(config_file=[str(CONFIGS / "train_slices.json"), str(CONFIGS / "evaluate_slices.json")], **args)
    assert (tmp_path / "eval" / "metrics_slices_fold0_summary.md").is_file()
    assert (tmp_path / "eval" / "metrics_slices_folds_summary.md").is_file()


@pytest.mark.docs
def test_docs_commands_run_in_order(tmp_path, doc_commands, doc_raw_data):
    """Every command block of this bundle's docs/README.md, in order, CPU-sized (see tests/doc_commands.py)."""
    skipped = doc_commands.run_bundle_doc("lexu_hecktor", tmp_path, doc_raw_data)
    assert all("MONAI Label" in reason for _, reason in skipped)  # run by tests/label against a real server
