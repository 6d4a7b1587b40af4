"""Training stops at the first non-finite loss, naming the batch's cases, and never saves non-finite weights.

The end-to-end case: a short lexu_riga CPU training (its real train.json + cpu_small.json, tiny overrides) in which
one training case is forced through with NaN in its image (a test transform appended to the training preprocessing,
after the loaders' finiteness checks): the run fails with a ``FloatingPointError`` naming that case, and the
checkpoint folder holds no file (no ``model.pt``, no ``checkpoint.pt``) with non-finite weights. The unit cases:
the handler on a hand-made engine state, and the savers' refusal of a non-finite state.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from ignite.engine import Engine
from monai.transforms import MapTransform

from monai_lexu.handlers import (
    FiniteCheckpointSaver,
    NonFiniteCheckpointError,
    StopOnNonFiniteLoss,
    atomic_torch_save,
    nonfinite_tensors,
)

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "lexu_riga"


class NaNImageForCases(MapTransform):
    """Test transform: NaN in the first voxels of ``image`` for the listed case ids (a bad case forced through)."""

    def __init__(self, ids: list[str], keys: str = "image") -> None:
        super().__init__(keys)
        self.ids = set(ids)

    def __call__(self, data):
        d = dict(data)
        if d.get("id") in self.ids:
            for key in self.keys:
                d[key] = d[key].clone()
                d[key].view(-1)[:10] = float("nan")
        return d


def _overrides(tmp: Path) -> dict:
    return {
        "bundle_root": str(BUNDLE),
        "dataset_dir": str(tmp / "data"),
        "make_synthetic": True,  # a synthetic set in this fresh folder
        "ckpt_dir": str(tmp / "models"),
        "output_dir": str(tmp / "eval"),
        "synthetic_data": {"num_per_source": {"BinRushed": 5, "MESSIDOR": 5, "Magrabia": 1}, "size": 32, "seed": 5},
        "image_size": [32, 32],
        "features": [8, 16, 32, 64],
        "epochs": 2,
        "batch_size": 4,
        "val_interval": 1,
        "checkpoint_interval": 1,
    }


def test_nan_case_stops_training_named_and_no_nonfinite_checkpoint(tmp_path):
    from monai.bundle import run

    from monai_lexu.datasets.riga import ensure_riga_dataset

    overrides = _overrides(tmp_path)
    datalist = json.loads(Path(ensure_riga_dataset(tmp_path / "data", overrides["synthetic_data"])).read_text())
    bad = datalist["training"][3]["id"]
    overrides["nan_inject"] = {"_target_": f"{__name__}.NaNImageForCases", "ids": [bad]}
    overrides["train#preprocessing"] = {
        "_target_": "Compose",
        "transforms": "$list(@preprocessing.transforms) + [@nan_inject]",
    }
    with pytest.raises(RuntimeError) as excinfo:
        run(config_file=[str(BUNDLE / "configs" / n) for n in ("train.json", "cpu_small.json")], **overrides)
    cause = excinfo.value.__cause__
    assert isinstance(cause, FloatingPointError)
    message = str(cause)
    assert "non-finite loss nan at epoch 1" in message
    assert f"non-finite input in: {bad}" in message
    batch_ids = message.split("batch cases: ")[1].split(";")[0].split(", ")
    assert bad in batch_ids and all(i in {c["id"] for c in datalist["training"]} for i in batch_ids)
    # stopped in the first epoch, before any checkpoint: nothing with non-finite weights (nothing at all) is written
    models = tmp_path / "models"
    written = sorted(models.glob("*.pt")) if models.exists() else []  # weights only (not the model.json record)
    for path in written:
        assert not nonfinite_tensors(torch.load(path, map_location="cpu", weights_only=True)), path
    assert not [p for p in written if p.suffix == ".pt"]


def _engine(loss: float, batch: dict) -> SimpleNamespace:
    return SimpleNamespace(
        state=SimpleNamespace(output={"loss": torch.tensor(loss)}, batch=batch, epoch=3, iteration=7)
    )


def test_stop_on_nonfinite_loss_names_the_cases():
    image = torch.zeros(3, 1, 4, 4)
    image[1, 0, 2, 2] = float("inf")
    batch = {"id": ["a", "b", "a"], "image": image}
    handler = StopOnNonFiniteLoss()
    handler(_engine(0.5, batch))  # finite: nothing happens
    with pytest.raises(
        FloatingPointError,
        match=r"non-finite loss nan at epoch 3, iteration 7; batch cases: a, b; " r"non-finite input in: b\.",
    ):
        handler(_engine(float("nan"), batch))
    with pytest.raises(FloatingPointError, match="batch cases: a, b; the inputs are finite"):
        handler(_engine(float("inf"), {"id": ["a", "b"], "image": torch.zeros(2, 1, 4, 4)}))


def test_savers_refuse_nonfinite_states_and_write_atomically(tmp_path):
    net = torch.nn.Linear(2, 1)
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    (tmp_path / f".good.pt.{finished.pid}.tmp").write_bytes(b"half")  # left by a killed writer
    atomic_torch_save({"model": net.state_dict()}, tmp_path / "good.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.pt"]  # no temporary file left, the stale one removed
    with torch.no_grad():
        net.weight[0, 1] = float("nan")
    with pytest.raises(
        NonFiniteCheckpointError,
        match=r"refusing to write the checkpoint .*bad\.pt: non-finite " r"values in 1 tensors \(model\.weight\)",
    ):
        atomic_torch_save({"model": net.state_dict()}, tmp_path / "bad.pt")
    assert not (tmp_path / "bad.pt").exists()

    saver = FiniteCheckpointSaver(
        save_dir=str(tmp_path), save_dict={"model": net}, save_final=True, final_filename="model.pt"
    )
    engine = Engine(lambda engine, batch: None)
    engine.state.iteration = 5
    with pytest.raises(NonFiniteCheckpointError, match="model.pt"):
        saver.completed(engine)
    # on an exception in the run (e.g. the NaN stop) the original error propagates, nothing is written
    original = FloatingPointError("non-finite loss nan at epoch 1; batch cases: x")
    with pytest.raises(FloatingPointError, match="batch cases: x"):
        saver.exception_raised(engine, original)
    assert not (tmp_path / "model.pt").exists()
