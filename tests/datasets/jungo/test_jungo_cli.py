"""Tests for monai_lexu.datasets.jungo.cli (``python -m monai_lexu.datasets.jungo``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monai_lexu.data.datalist import load_multirater_datalist
from monai_lexu.datasets.jungo.cli import main

REPO = Path(__file__).resolve().parents[3]


def test_writes_the_set_and_checks_the_split(tmp_path, capsys):
    out = tmp_path / "jungo"
    assert main(["--out", str(out), "--num-samples", "5", "--size", "24", "--train-fraction", "0.6"]) == 0
    assert "5 Jungo samples" in capsys.readouterr().out
    assert len(load_multirater_datalist(out / "datalist_perturbed.json", "training")) == 3
    with pytest.raises(SystemExit, match="train-fraction"):
        main(["--out", str(out), "--train-fraction", "0"])


def test_runs_as_module():
    result = subprocess.run(
        [sys.executable, "-m", "monai_lexu.datasets.jungo", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m monai_lexu.datasets.jungo") and "--num-samples" in result.stdout
