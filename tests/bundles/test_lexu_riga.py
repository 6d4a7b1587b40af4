"""End-to-end test of the lexu_riga bundle: its real configs, a few iterations on small synthetic data.

Runs train.json (+ the CPU override) on an empty dataset_dir (so the synthetic RIGA-like fallback builds the data in
the RIGA layout and data_prep's converter reads it), then evaluate.json and inference.json, and the model-zoo checks
verify_metadata (offline, shipped schema), verify_net_in_out and ckpt_export.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "lexu_riga"
CONFIGS = BUNDLE / "configs"
SCHEMA = REPO / "monai_lexu" / "schemas" / "bundle_metadata_schema.json"


def _overrides(tmp: Path) -> dict:
    return {
        "bundle_root": str(BUNDLE),
        "dataset_dir": str(tmp / "data"),
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
def trained(tmp_path_factory):
    from monai.bundle import run

    tmp = tmp_path_factory.mktemp("lexu_riga")
    run(config_file=[str(CONFIGS / "train.json"), str(CONFIGS / "cpu_small.json")], **_overrides(tmp))
    return tmp


def test_train_builds_synthetic_data_and_saves_the_model(trained):
    data = trained / "data"
    datalist = json.loads((data / "datalist.json").read_text())
    # 5 + 5 BinRushed/MESSIDOR images split 80/20 -> 8 training, 2 validation; Magrabia -> 4 test
    assert [len(datalist[s]) for s in ("training", "validation", "test")] == [8, 2, 4]
    assert (data / "raw" / "Glaucoma_multirater_Magrabia.csv").is_file()
    assert all(len(case["raters"]) == 6 for case in datalist["test"])
    state = torch.load(trained / "models" / "model.pt", map_location="cpu")
    assert any(k.startswith("heads.") for k in state)


def test_train_logs_the_synthetic_fallback(tmp_path, caplog):
    from monai_lexu.data.riga import ensure_riga_dataset

    with caplog.at_level(logging.WARNING, logger="monai_lexu"):
        ensure_riga_dataset(
            tmp_path / "d", {"num_per_source": {"BinRushed": 2, "MESSIDOR": 2, "Magrabia": 1}, "size": 32}
        )
    assert any("synthetic" in r.getMessage().lower() for r in caplog.records)


def test_evaluate_writes_the_metric_table(trained):
    from monai.bundle import run

    run(
        config_file=[str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json"), str(CONFIGS / "cpu_small.json")],
        **_overrides(trained),
    )
    out = trained / "eval"
    summary = {r["metric"]: r for r in csv.DictReader((out / "metrics_test_summary.csv").open())}
    assert set(summary) == {"SR", "DC", "NCC", "soft_dice", "NLL", "WME", "ME", "ECE"}
    for structure in ("disc", "cup"):
        assert 0.0 <= float(summary["soft_dice"][structure]) <= 1.0
        assert float(summary["NLL"][structure]) > 0.0
        sr = float(summary["SR"][structure])
        assert math.isnan(sr) or -1.0 <= sr <= 1.0
    rows = list(csv.DictReader((out / "metrics_test_per_image.csv").open()))
    assert len(rows) == 4 and rows[0]["id"].startswith("Magrabia_")
    assert "| metric | disc | cup |" in (out / "metrics_test_summary.md").read_text()
    assert (out / "metrics_test_reliability.png").stat().st_size > 1000


def test_inference_writes_probability_and_uncertainty_in_the_input_geometry(trained):
    import nibabel as nib
    from monai.bundle import run
    from PIL import Image

    images = sorted((trained / "data" / "images").glob("Magrabia_*.png"))
    assert len(images) == 4
    out = trained / "inference"
    overrides = {
        k: v for k, v in _overrides(trained).items() if k in ("bundle_root", "ckpt_dir", "image_size", "features")
    }
    run(
        config_file=[str(CONFIGS / "inference.json"), str(CONFIGS / "cpu_small.json")],
        input_glob=str(trained / "data" / "images" / "Magrabia_*.png"),
        output_dir=str(out),
        **overrides,
    )
    width, height = Image.open(images[0]).size
    for image in images:
        prob = nib.load(out / f"{image.stem}_prob.nii.gz").get_fdata()
        unc = nib.load(out / f"{image.stem}_unc.nii.gz").get_fdata()
        # MONAI's PIL reader gives (W, H); the maps are written channel-last with the input's spatial shape
        assert prob.shape[:2] == (width, height) and prob.shape[-1] == 2
        assert unc.shape == prob.shape
        assert prob.min() >= 0.0 and prob.max() <= 1.0
        assert unc.min() >= 0.0 and unc.max() <= 1.0 / 3.0 + 1e-6  # variance of K values in [0, 1] is <= K/(4(K-1))


def test_verify_metadata_offline_and_rejects_a_broken_file(tmp_path):
    from monai.bundle import verify_metadata

    verify_metadata(meta_file=str(CONFIGS / "metadata.json"), filepath=str(SCHEMA))
    broken = json.loads((CONFIGS / "metadata.json").read_text())
    del broken["network_data_format"]["outputs"]["pred"]["num_channels"]
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="num_channels"):
        verify_metadata(meta_file=str(path), filepath=str(SCHEMA))


def test_verify_net_in_out_default_network():
    from monai.bundle import verify_net_in_out

    verify_net_in_out(
        net_id="network_def",
        meta_file=str(CONFIGS / "metadata.json"),
        config_file=str(CONFIGS / "inference.json"),
        n=2,
        bundle_root=str(BUNDLE),
    )


def test_ckpt_export_of_the_trained_model(trained):
    from monai.bundle import ckpt_export

    ts = trained / "model.ts"
    ckpt_export(
        net_id="network_def",
        filepath=str(ts),
        ckpt_file=str(trained / "models" / "model.pt"),
        meta_file=str(CONFIGS / "metadata.json"),
        config_file=[str(CONFIGS / "inference.json"), str(CONFIGS / "cpu_small.json")],
        bundle_root=str(BUNDLE),
        features=[8, 16, 32, 64],
    )
    scripted = torch.jit.load(str(ts))
    from monai_lexu.networks import MultiHeadUNet

    eager = MultiHeadUNet(2, 3, 2, backbone="plain", features=(8, 16, 32, 64))
    eager.load_state_dict(torch.load(trained / "models" / "model.pt", map_location="cpu"))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(scripted.eval()(x), eager.eval()(x), atol=1e-5)
