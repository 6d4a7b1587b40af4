"""A bad or missing checkpoint is an error naming the file: ``monai_lexu.utils.check_checkpoint`` and bundle runs.

The bundles' inference and evaluation configs pass their ``CheckpointLoader`` path through ``check_checkpoint``, so
``python -m monai.bundle run`` stops before reading any input or writing any output, with a two-line error naming
the checkpoint. The bundle runs use lexu_riga's configs with the CPU recipe and a CPU-size network (features
[8, 16, 32, 64]) on two random fundus-like PNGs; nothing is trained.
"""

from __future__ import annotations

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
from monai_lexu.utils import check_checkpoint, load_checkpoint, state_dict_mismatch

REPO = Path(__file__).resolve().parents[1]
RIGA = REPO / "bundles" / "lexu_riga"
FEATURES = (8, 16, 32, 64)


def _net(features=FEATURES) -> MultiHeadUNet:
    torch.manual_seed(0)
    return MultiHeadUNet(2, 3, 2, backbone="plain", features=tuple(features))


class _Opens:
    """Pickles as a call of ``open(marker, "w")``: loading it with ``weights_only=False`` would create ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _write_case(path: Path, case: str) -> None:
    """Write the checkpoint ``case`` to ``path`` (``missing`` writes nothing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if case == "missing":
        return
    if case in ("ok", "truncated"):
        torch.save(_net().state_dict(), path)
        if case == "truncated":
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
    elif case == "wrong_content":  # a valid torch file, but training metadata instead of weights
        torch.save({"epoch": 3, "best_metric": 0.5}, path)
    elif case == "size_mismatch":  # trained with other features than the run's
        torch.save(_net((8, 16, 32, 128)).state_dict(), path)
    else:
        raise AssertionError(case)


# the first line of each error, as a regular expression with the checkpoint path substituted for {path}
FIRST_LINE = {
    "missing": r"FileNotFoundError: checkpoint not found: {path}$",
    "truncated": r"ValueError: cannot read the checkpoint {path} \(\d+ bytes\): \w+: .+$",
    "wrong_content": r"ValueError: the checkpoint {path} does not hold a state dict \(got a dict of 2 entries of type "
    r"float, int\)$",
    "size_mismatch": r"ValueError: the checkpoint {path} does not fit the network MultiHeadUNet: 15 shape mismatches "
    r"\(encoder\.levels\.3\.convs\.conv_0\.conv\.weight \(128, 32, 3, 3\) vs \(64, 32, 3, 3\), .+$",
}


# ---------------------------------------------------------------------------------------------- check_checkpoint
def test_check_checkpoint_accepts_weights_and_training_checkpoints(tmp_path):
    net = _net()
    torch.save(net.state_dict(), tmp_path / "plain.pt")
    assert check_checkpoint(tmp_path / "plain.pt", net) == str(tmp_path / "plain.pt")
    # a resumable checkpoint holds the weights under the loader's key next to other state
    torch.save({"model": net.state_dict(), "optimizer": {"state": {}}, "epoch": 4}, tmp_path / "full.pt")
    assert check_checkpoint(tmp_path / "full.pt", net) == str(tmp_path / "full.pt")
    assert set(load_checkpoint(tmp_path / "full.pt")) == set(net.state_dict())
    assert check_checkpoint(tmp_path / "plain.pt", torch.nn.DataParallel(net)) == str(tmp_path / "plain.pt")
    assert check_checkpoint(tmp_path / "plain.pt") == str(tmp_path / "plain.pt")  # no network: no fit check


@pytest.mark.parametrize("case", ["missing", "truncated", "wrong_content", "size_mismatch"])
def test_check_checkpoint_names_the_file(tmp_path, case):
    path = tmp_path / "models" / "model.pt"
    _write_case(path, case)
    error = FileNotFoundError if case == "missing" else ValueError
    with pytest.raises(error) as err:
        check_checkpoint(path, _net())
    first, *rest = str(err.value).splitlines()
    expected = FIRST_LINE[case].split(": ", 1)[1].format(path=re.escape(str(path)))
    assert re.match(expected, first), first
    assert len(rest) == 1 and rest[0].startswith("  ")  # two lines: what is wrong, then what to do


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", r"cannot read the checkpoint .*model\.pt \(0 bytes\)"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), r"cannot read the checkpoint .*model\.pt \(208 bytes\)"),
        (b'{"features": [8, 16]}', r"cannot read the checkpoint .*model\.pt"),
    ],
)
def test_check_checkpoint_refuses_files_that_are_no_checkpoint(tmp_path, content, message):
    (tmp_path / "model.pt").write_bytes(content)
    with pytest.raises(ValueError, match=message):
        check_checkpoint(tmp_path / "model.pt")


def test_check_checkpoint_never_unpickles_code(tmp_path):
    marker = tmp_path / "executed"
    torch.save({"weight": torch.zeros(2), "payload": _Opens(marker)}, tmp_path / "model.pt")
    with pytest.raises(ValueError, match=r"cannot read the checkpoint .*model\.pt .*UnpicklingError"):
        check_checkpoint(tmp_path / "model.pt")
    assert not marker.exists()


def test_check_checkpoint_other_contents(tmp_path):
    for obj, got in (([1, 2], "list"), ({}, "an empty dict"), ({"model": [1]}, "a dict of 1 entries of type list")):
        torch.save(obj, tmp_path / "x.pt")
        with pytest.raises(ValueError, match=rf"x\.pt does not hold a state dict \(got {got}\)"):
            check_checkpoint(tmp_path / "x.pt")
    state = _net().state_dict()
    state["heads.1.weight"][0, 0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    with pytest.raises(ValueError, match=r"nan\.pt holds non-finite weights in 1 tensors \(heads\.1\.weight\)"):
        check_checkpoint(tmp_path / "nan.pt")


def test_state_dict_mismatch_text():
    a = {"w": torch.zeros(2, 3), "b": torch.zeros(2)}
    assert state_dict_mismatch(a, a) == ""
    found = {"w": torch.zeros(4, 3), "x": torch.zeros(1)}
    assert (
        state_dict_mismatch(a, found)
        == "1 missing keys (b); 1 unexpected keys (x); 1 shape mismatches (w (4, 3) vs (2, 3))"
    )


# ------------------------------------------------------------------------------------------------ bundle runs
@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    from PIL import Image

    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)).save(folder / f"fundus_{i}.png")
    return folder


def _run_inference(tmp_path: Path, images: Path) -> subprocess.CompletedProcess:
    configs = f"['{RIGA}/configs/inference.json','{RIGA}/configs/cpu_small.json']"
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", configs]
    cmd += ["--input_glob", f"{images}/*.png", "--ckpt_dir", str(tmp_path / "models")]
    cmd += ["--output_dir", str(tmp_path / "out"), "--features", json.dumps(list(FEATURES))]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=dict(os.environ))


@pytest.mark.parametrize("case", ["ok", "missing", "truncated", "wrong_content", "size_mismatch"])
def test_bundle_inference_with_a_bad_checkpoint_names_it_and_writes_nothing(tmp_path, images, case):
    ckpt = tmp_path / "models" / "model.pt"
    _write_case(ckpt, case)
    proc = _run_inference(tmp_path, images)
    if case == "ok":  # the check lets a good checkpoint through
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
            f"fundus_{i}_{kind}.nii.gz" for i in range(2) for kind in ("prob", "unc")
        ] + ["inference_summary.json"]
        return
    assert proc.returncode != 0
    lines = proc.stderr.splitlines()
    pattern = re.compile(FIRST_LINE[case].format(path=re.escape(str(ckpt))))
    hits = [i for i, line in enumerate(lines) if pattern.match(line)]
    assert hits, proc.stderr[-3000:]
    assert lines[hits[0] + 1].startswith("  ")  # the second line says what to do
    assert not (tmp_path / "out").exists()  # nothing read, nothing written
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ([] if case == "missing" else ["model.pt"])


def test_bundle_evaluation_with_a_missing_fold_checkpoint_names_it(tmp_path):
    """The evaluation configs check their checkpoint too (here HECKTOR's ``model_fold%d.pt``), before any data."""
    from monai.bundle import ConfigParser

    bundle = REPO / "bundles" / "lexu_hecktor"
    parser = ConfigParser()
    parser.read_config([str(bundle / "configs" / f"{n}.json") for n in ("train", "evaluate", "cpu_small")])
    parser.update({"ckpt_dir": str(tmp_path / "models"), "fold": 2, "features": [8, 16, 32, 64]})
    loader = next(h for h in parser["validate"]["handlers"] if h["_target_"] == "CheckpointLoader")
    assert loader["load_path"].startswith("$monai_lexu.utils.check_checkpoint(")
    with pytest.raises(RuntimeError) as err:
        parser.get_parsed_content(f"validate#handlers#{parser['validate']['handlers'].index(loader)}#load_path")
    cause = err.value
    while cause.__cause__ is not None:
        cause = cause.__cause__
    assert isinstance(cause, FileNotFoundError)
    assert str(cause).splitlines()[0] == f"checkpoint not found: {tmp_path / 'models' / 'model_fold2.pt'}"
