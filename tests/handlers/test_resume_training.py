"""Kill a CPU-recipe training by PID, resume it, and end with the weights of an uninterrupted run.

The lexu_riga bundle (train.json + cpu_small.json + tiny overrides: 32 x 32 synthetic images, 8 training images,
6 epochs, a validation and a resumable checkpoint every epoch) runs as the user runs it,
``python -m monai.bundle run --config_file [...]``, in subprocesses: once uninterrupted, once killed with SIGKILL
after its checkpoint of epoch 2 appeared, then resumed with ``--resume true``. On the CPU the resumed training ends
with exactly (``torch.equal``) the weights of the uninterrupted one: the checkpoint holds the network, the Adam
moments, the trainer's epoch/iteration, the best metric and the random states (the LEXU loss samples raters from
torch's generator).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "lexu_riga"
EPOCHS = 6  # a margin of epochs between the kill decision and the end, also under load


def _override(tmp: Path, run: str) -> Path:
    cfg = {
        "bundle_root": str(BUNDLE),
        "dataset_dir": str(tmp / "data"),
        "make_synthetic": True,  # a synthetic set in this fresh folder
        "ckpt_dir": str(tmp / run / "models"),
        "output_dir": str(tmp / run / "eval"),
        "synthetic_data": {"num_per_source": {"BinRushed": 5, "MESSIDOR": 5, "Magrabia": 1}, "size": 32, "seed": 5},
        "image_size": [32, 32],
        "features": [8, 16, 32, 64],
        "epochs": EPOCHS,
        "batch_size": 4,
        "val_interval": 1,
        "checkpoint_interval": 1,
    }
    path = tmp / f"{run}.json"
    path.write_text(json.dumps(cfg))
    return path


def _command(override: Path, *extra: str) -> list[str]:
    configs = [str(BUNDLE / "configs" / "train.json"), str(BUNDLE / "configs" / "cpu_small.json"), str(override)]
    return [sys.executable, "-m", "monai.bundle", "run", "--config_file", json.dumps(configs), *extra]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _epoch_of(checkpoint: Path) -> int:
    try:
        trainer = torch.load(checkpoint, map_location="cpu", weights_only=True)["trainer"]
        return int(trainer["iteration"]) // int(trainer["epoch_length"])  # ignite saves the iteration
    except (OSError, EOFError, RuntimeError, KeyError):
        return 0


def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume")
    ref = subprocess.run(_command(_override(tmp, "reference")), env=_env(), capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr[-3000:]

    killed_override = _override(tmp, "killed")
    checkpoint = tmp / "killed" / "models" / "checkpoint.pt"
    log = (tmp / "killed.log").open("w")
    proc = subprocess.Popen(_command(killed_override), env=_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        seen = None  # read the checkpoint only when it changed: a cheap poll reacts fast even on a loaded machine
        while proc.poll() is None:
            stamp = checkpoint.stat().st_mtime_ns if checkpoint.exists() else None
            if stamp is not None and stamp != seen:
                seen = stamp
                if _epoch_of(checkpoint) >= 2:
                    break
            time.sleep(0.01)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    killed_at = _epoch_of(checkpoint)
    killed_files = sorted(p.name for p in checkpoint.parent.iterdir())
    resumed = subprocess.run(_command(killed_override, "--resume", "true"), env=_env(), capture_output=True, text=True)
    return {
        "tmp": tmp,
        "returncode": proc.returncode,
        "killed_at": killed_at,
        "killed_files": killed_files,
        "resumed": resumed,
    }


def test_killed_training_leaves_a_complete_checkpoint_and_no_final_model(runs):
    assert runs["returncode"] == -signal.SIGKILL, "the training ended before it was killed"
    assert 2 <= runs["killed_at"] < EPOCHS
    # the resumable checkpoint is there; the final model (written when training completes) is not
    assert "checkpoint.pt" in runs["killed_files"] and "model.pt" not in runs["killed_files"]


def test_resumed_training_ends_with_the_weights_of_an_uninterrupted_run(runs):
    resumed = runs["resumed"]
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from {runs['tmp'] / 'killed' / 'models' / 'checkpoint.pt'} at epoch {runs['killed_at']}" in (
        resumed.stdout + resumed.stderr
    )
    reference = _weights(runs["tmp"] / "reference" / "models" / "model.pt")
    final = _weights(runs["tmp"] / "killed" / "models" / "model.pt")
    assert reference.keys() == final.keys()
    unequal = [k for k in reference if not torch.equal(reference[k], final[k])]
    assert not unequal, f"{len(unequal)} tensors differ, e.g. {unequal[:3]}"
    # the checkpoint of the last epoch: same trainer state and optimiser moments as the reference
    ref_ckpt = _weights(runs["tmp"] / "reference" / "models" / "checkpoint.pt")
    res_ckpt = _weights(runs["tmp"] / "killed" / "models" / "checkpoint.pt")
    assert ref_ckpt["trainer"] == res_ckpt["trainer"]
    assert ref_ckpt["trainer"]["iteration"] == EPOCHS * ref_ckpt["trainer"]["epoch_length"]
    assert ref_ckpt["validator"] == res_ckpt["validator"]
    for key, state in ref_ckpt["optimizer"]["state"].items():
        assert torch.equal(state["exp_avg"], res_ckpt["optimizer"]["state"][key]["exp_avg"])


def test_resume_from_a_missing_checkpoint_names_it(tmp_path):
    override = _override(tmp_path, "nothing")
    missing = tmp_path / "nothing" / "models" / "checkpoint.pt"
    out = subprocess.run(_command(override, "--resume", "true"), env=_env(), capture_output=True, text=True)
    assert out.returncode != 0
    assert f"cannot resume: no checkpoint {missing}" in out.stderr
    assert not (tmp_path / "nothing" / "models" / "model.pt").exists()


def test_hecktor_resume_restores_the_random_crops(tmp_path):
    """lexu_hecktor's CPU recipe draws random crops and flips from the transforms' own generators: a training of 3
    epochs and one of 2 epochs resumed to 3 end with equal weights (in-process, ``monai.bundle.run``)."""
    from monai.bundle import run

    bundle = REPO / "bundles" / "lexu_hecktor"

    def overrides(name: str, epochs: int, resume: bool = False) -> dict:
        return {
            "bundle_root": str(bundle),
            "dataset_dir": str(tmp_path / "data"),
            "make_synthetic": True,  # a synthetic set in this fresh folder
            "ckpt_dir": str(tmp_path / name),
            "output_dir": str(tmp_path / name / "eval"),
            "synthetic_data": {"num_cases": 4, "seed": 1},
            "num_folds": 2,
            "features": [8, 16, 32, 64],
            "patch_size": [32, 32, 32],
            "num_samples": 2,
            "epochs": epochs,
            "val_interval": 1,
            "checkpoint_interval": 1,
            "resume": resume,
        }

    configs = [str(bundle / "configs" / n) for n in ("train.json", "cpu_small.json")]
    run(config_file=configs, **overrides("reference", 3))
    run(config_file=configs, **overrides("resumed", 2))
    run(config_file=configs, **overrides("resumed", 3, resume=True))
    reference, resumed = _weights(tmp_path / "reference" / "model.pt"), _weights(tmp_path / "resumed" / "model.pt")
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)
    checkpoint = _weights(tmp_path / "resumed" / "checkpoint.pt")
    assert len(checkpoint["random"]["transforms"]) == 4  # Compose, RandCropByPosNegLabeld (+ its cropper), RandFlipd


def test_random_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    import random

    import numpy as np
    from monai.transforms import Compose, RandCropByPosNegLabeld, RandFlipd

    from monai_lexu.handlers import RandomStates, atomic_torch_save

    transforms = Compose(
        [
            RandCropByPosNegLabeld(keys="image", label_key="image", spatial_size=(2, 2), num_samples=1),
            RandFlipd(keys="image", prob=0.5),
        ]
    )
    states = RandomStates(transforms)
    atomic_torch_save({"random": states.state_dict()}, tmp_path / "rng.pt")

    def draw() -> tuple:
        return (
            torch.rand(3).tolist(),
            np.random.rand(3).tolist(),
            random.random(),
            [g.rand() for g in states.generators],
        )

    first = draw()
    states.load_state_dict(torch.load(tmp_path / "rng.pt", weights_only=True)["random"])
    assert draw() == first
    with pytest.raises(ValueError, match="holds 4 random-transform generators, the training preprocessing has 0"):
        RandomStates(None).load_state_dict(torch.load(tmp_path / "rng.pt", weights_only=True)["random"])


def test_resume_checkpoint_of_another_training_is_refused_naming_it(tmp_path):
    from ignite.engine import Engine

    from monai_lexu.handlers import ResumableCheckpoint

    path = tmp_path / "checkpoint.pt"
    torch.save({"model": torch.nn.Linear(2, 1).state_dict()}, path)
    engine = Engine(lambda engine, batch: None)
    handler = ResumableCheckpoint(tmp_path, {"model": torch.nn.Linear(2, 1)}, resume=True)
    handler.attach(engine)
    with pytest.raises(ValueError, match=f"cannot resume from {path}: it has no random, trainer"):
        engine.run([0], max_epochs=1)
