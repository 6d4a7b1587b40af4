"""Tests for monai_lexu.datasets.riga.cli (``python -m monai_lexu.datasets.riga {convert,synthetic}``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monai_lexu.data.datalist import load_multirater_datalist
from monai_lexu.datasets.riga.cli import main

REPO = Path(__file__).resolve().parents[3]


def test_synthetic_then_convert(tmp_path, capsys):
    raw, out = tmp_path / "raw", tmp_path / "out"
    counts = ["BinRushed=2", "MESSIDOR=3", "Magrabia=1"]
    assert main(["synthetic", "--root", str(raw), "--size", "32", "--num-per-source", *counts]) == 0
    assert main(["convert", "--root", str(raw), "--out", str(out), "--size", "16", "--val-fraction", "0.4"]) == 0
    assert "RIGA-like" in capsys.readouterr().out
    assert len(load_multirater_datalist(out / "datalist.json", "training")) == 3
    assert len(load_multirater_datalist(out / "datalist.json", "test")) == 1
    with pytest.raises(SystemExit) as err:
        main(["synthetic", "--root", str(raw), "--num-per-source", "BinRushed:2"])
    assert err.value.code == 2


def test_runs_as_module():
    result = subprocess.run(
        [sys.executable, "-m", "monai_lexu.datasets.riga", "convert", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.startswith("usage: python -m monai_lexu.datasets.riga convert")
        and "--val-fraction" in result.stdout
    )
