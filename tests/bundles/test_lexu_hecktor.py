"""End-to-end test of the lexu_hecktor bundle with its real configs on a small synthetic PET/CT set.

train.json (+ cpu_small.json) on an empty dataset_dir builds the synthetic set in the HECKTOR layout and converts it
with data_prep's converter; then evaluate.json (fold table + cross-validation summary), inference.json on the raw
CT/PET files (outputs in the original CT space), DDP training with torchrun (2 CPU processes, gloo), the paper's
2D slice protocol (train_slices.json / evaluate_slices.json) and the model-zoo checks.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "lexu_hecktor"
CONFIGS = BUNDLE / "configs"
SCHEMA = REPO / "monai_lexu" / "schemas" / "bundle_metadata_schema.json"
CPU = str(CONFIGS / "cpu_small.json")


def _overrides(tmp: Path, **extra) -> dict:
    return {
        "bundle_root": str(BUNDLE),
        "dataset_dir": str(tmp / "data"),
        "ckpt_dir": str(tmp / "models"),
        "output_dir": str(tmp / "eval"),
        "synthetic_data": {"num_cases": 6, "seed": 1},
        "epochs": 30,
        "val_interval": 30,
        **extra,
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from monai.bundle import run

    tmp = tmp_path_factory.mktemp("lexu_hecktor")
    run(config_file=[str(CONFIGS / "train.json"), CPU], **_overrides(tmp))
    return tmp


def test_train_builds_the_synthetic_set_and_saves_fold_models(trained):
    datalist = json.loads((trained / "data" / "datalist.json").read_text())
    cases = datalist["training"]
    assert len(cases) == 6 and sorted({c["fold"] for c in cases}) == [0, 1, 2]
    assert all(2 <= len(c["raters"]) <= 4 and len(c["image"]) == 2 for c in cases)
    assert (trained / "data" / "summary.csv").is_file()
    for name in ("model.pt", "model_fold0.pt"):
        state = torch.load(trained / "models" / name, map_location="cpu")
        assert any(k.startswith("heads.") for k in state)


def test_evaluate_fold_table_and_cross_validation_summary(trained):
    from monai.bundle import run

    run(config_file=[str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json"), CPU], **_overrides(trained))
    out = trained / "eval"
    summary = {r["metric"]: r for r in csv.DictReader((out / "metrics_fold0_summary.csv").open())}
    assert set(summary) == {"SR", "DC", "NCC", "soft_dice", "NLL", "WME", "ME", "ECE"}
    assert all(0.0 <= float(summary["soft_dice"][s]) <= 1.0 for s in ("GTVp", "GTVn"))
    cv = json.loads((out / "metrics_folds_summary.json").read_text())
    assert set(cv) == {"GTVp", "GTVn"} and "fold0" in cv["GTVp"]["NCC"]
    assert "missing: [1, 2]" in (out / "metrics_folds_summary.md").read_text()


def test_inference_in_the_original_ct_space_and_uncertainty_in_the_disagreement_band(trained):
    from monai.bundle import run

    datalist = json.loads((trained / "data" / "datalist.json").read_text())
    held_out = sorted(c["id"] for c in datalist["training"] if c["fold"] == 0)
    raw = trained / "data" / "raw"
    inputs = trained / "inputs"
    inputs.mkdir()
    for cid in held_out:  # inference on the raw CT/PET of the validation fold only
        for modality in ("CT", "PT"):
            shutil.copy(raw / "imagesTr" / f"{cid}__{modality}.nii.gz", inputs)
    out = trained / "inference"
    run(
        config_file=[str(CONFIGS / "inference.json"), CPU],
        bundle_root=str(BUNDLE),
        ckpt_dir=str(trained / "models"),
        input_dir=str(inputs),
        output_dir=str(out),
    )
    for cid in held_out:
        ct = nib.load(raw / "imagesTr" / f"{cid}__CT.nii.gz")
        label = nib.load(out / f"{cid}__CT_label.nii.gz")
        prob = nib.load(out / f"{cid}__CT_prob.nii.gz")
        unc = nib.load(out / f"{cid}__CT_unc.nii.gz")
        for img in (label, prob, unc):
            assert img.shape[:3] == ct.shape
            np.testing.assert_allclose(img.affine, ct.affine, atol=1e-4)
            np.testing.assert_allclose(img.header.get_zooms()[:3], ct.header.get_zooms(), atol=1e-4)
        assert set(np.unique(np.asarray(label.dataobj))) <= {0, 1, 2}
        p, u = prob.get_fdata(), unc.get_fdata()
        assert p.shape[-1] == 2 and p.min() >= 0 and p.max() <= 1 and u.min() >= 0
        raters = np.stack(
            [np.asarray(nib.load(f).dataobj) for f in sorted(glob.glob(str(raw / "labelsTr" / "*" / f"{cid}.nii.gz")))]
        )
        for channel, value in enumerate((1, 2)):
            masks = raters == value
            band = masks.any(0) & ~masks.all(0)  # where the raters disagree
            assert band.any()
            # acceptance: mean uncertainty inside the disagreement band >= 3x outside it
            assert u[..., channel][band].mean() >= 3 * u[..., channel][~band].mean(), (cid, channel)


def test_verify_metadata_net_in_out_and_ckpt_export(trained):
    from monai.bundle import ckpt_export, verify_metadata, verify_net_in_out

    verify_metadata(meta_file=str(CONFIGS / "metadata.json"), filepath=str(SCHEMA))
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(CONFIGS / "metadata.json"),
        config_file=str(CONFIGS / "inference.json"),
        n=2,
        bundle_root=str(BUNDLE),
    )
    ts = trained / "model.ts"
    ckpt_export(
        net_id="network_def",
        filepath=str(ts),
        ckpt_file=str(trained / "models" / "model.pt"),
        meta_file=str(CONFIGS / "metadata.json"),
        config_file=[str(CONFIGS / "inference.json"), CPU],
        bundle_root=str(BUNDLE),
    )
    x = torch.rand(1, 2, 32, 32, 32)
    from monai_lexu.networks import MultiHeadUNet

    eager = MultiHeadUNet(3, 2, 2, backbone="plain", features=json.loads(Path(CPU).read_text())["features"]).eval()
    eager.load_state_dict(torch.load(trained / "models" / "model.pt", map_location="cpu"))
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(ts)).eval()(x), eager(x), atol=1e-5)


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
    state = torch.load(tmp_path / "models" / "model.pt", map_location="cpu")
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
