"""Training records the configs that made the weights beside them; a checkpoint that does not fit says which to add.

lexu_riga is trained for one epoch with the CPU recipe (``configs/cpu_small.json``) on a tiny synthetic set, then
inference runs without ``cpu_small.json``: it must stop with a two-line error naming the checkpoint, the config that
made it and the ``--config_file`` to run with; with the config added as told, inference succeeds.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_lexu.networks import MultiHeadUNet
from monai_lexu.utils import check_checkpoint, weights_origin

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "lexu_riga"


def _bundle_run(tmp: Path, configs: list[str], *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(configs), *args]
    return subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=900, env=dict(os.environ))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("origin")
    synthetic = {"num_per_source": {"BinRushed": 4, "MESSIDOR": 4, "Magrabia": 2}, "size": 64, "seed": 3}
    proc = _bundle_run(
        tmp,
        [f"{BUNDLE}/configs/train.json", f"{BUNDLE}/configs/cpu_small.json"],
        *("--dataset_dir", str(tmp / "data"), "--make_synthetic", "true", "--ckpt_dir", str(tmp / "models")),
        *("--output_dir", str(tmp / "eval"), "--synthetic_data", json.dumps(synthetic)),
        *("--image_size", "[64,64]", "--epochs", "1", "--batch_size", "4", "--val_interval", "1"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp


def test_training_records_the_configs_beside_the_weights(trained):
    record = json.loads((trained / "models" / "model.json").read_text())
    assert record["weights"] == "model.pt"
    assert record["config_file"] == ["configs/train.json", "configs/cpu_small.json"]  # relative to the bundle
    assert record["overrides"]["epochs"] == 1 and record["overrides"]["ckpt_dir"] == str(trained / "models")
    assert weights_origin(trained / "models" / "model.pt") == record
    assert not list((trained / "models").glob(".*.tmp"))  # written through a temporary name


def test_inference_without_the_training_config_names_it_and_the_override(trained):
    from PIL import Image

    images = trained / "images"
    images.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(images / "a.png")
    io_args = ("--input_glob", f"{images}/*.png", "--ckpt_dir", str(trained / "models"))
    inference = f"{BUNDLE}/configs/inference.json"
    proc = _bundle_run(trained, [inference], *io_args, "--output_dir", str(trained / "out"))
    assert proc.returncode != 0
    ckpt = trained / "models" / "model.pt"
    lines = proc.stderr.splitlines()
    first = [
        i for i, line in enumerate(lines) if re.match(rf".*the checkpoint {re.escape(str(ckpt))} does not fit", line)
    ]
    assert first, proc.stderr[-3000:]
    hint = lines[first[0] + 1]
    assert hint.startswith("  the weights were made with configs/cpu_small.json")
    assert "add cpu_small.json: --config_file" in hint
    assert not (trained / "out").exists()
    # the suggested --config_file, run as told, works
    suggested = ast.literal_eval(hint.split("--config_file ", 1)[1].strip().strip('"'))
    assert suggested == [inference, f"{BUNDLE}/configs/cpu_small.json"]
    proc = _bundle_run(trained, suggested, *io_args, "--output_dir", str(trained / "out"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (trained / "out" / "a_prob.nii.gz").is_file()


def test_check_checkpoint_without_a_record_keeps_the_generic_hint(tmp_path):
    small = MultiHeadUNet(2, 3, 2, backbone="plain", features=(8, 16, 32, 64))
    big = MultiHeadUNet(2, 3, 2, backbone="plain", features=(16, 32, 64, 128))
    torch.save(small.state_dict(), tmp_path / "model.pt")
    with pytest.raises(ValueError, match=r"does not fit the network.*\n  run with the overrides it was trained with"):
        check_checkpoint(tmp_path / "model.pt", big)
    (tmp_path / "model.json").write_text(json.dumps({"weights": "other.pt", "config_file": ["configs/train.json"]}))
    assert weights_origin(tmp_path / "model.pt") is None  # a record of other weights is not used
    (tmp_path / "model.json").write_text(
        json.dumps({"weights": "model.pt", "config_file": ["configs/train.json", "configs/cpu_small.json"]})
    )
    with pytest.raises(ValueError) as err:
        check_checkpoint(tmp_path / "model.pt", big)
    message = str(err.value).splitlines()
    assert len(message) == 2 and message[1].startswith("  the weights were made with configs/cpu_small.json")


def test_hecktor_training_records_the_fold_weights_it_writes(tmp_path):
    from monai.bundle import run

    bundle = REPO / "bundles" / "lexu_hecktor"
    configs = [str(bundle / "configs" / f"{n}.json") for n in ("train", "cpu_small")]
    run(
        config_file=configs,
        **{"bundle_root": str(bundle), "dataset_dir": str(tmp_path / "data"), "make_synthetic": True},
        **{"ckpt_dir": str(tmp_path / "models"), "output_dir": str(tmp_path / "eval"), "fold": 1},
        **{"synthetic_data": {"num_cases": 6, "seed": 1}, "epochs": 1, "val_interval": 1},
    )
    models = tmp_path / "models"
    record = json.loads((models / "model_fold1.json").read_text())
    assert record["weights"] == "model_fold1.pt" and (models / "model_fold1.pt").is_file()
    assert (
        record["config_file"] == ["configs/train.json", "configs/cpu_small.json"] and record["overrides"]["fold"] == 1
    )
    assert not (models / "model.json").exists() and not (models / "model.pt").exists()  # fold 1 leaves model.pt alone
