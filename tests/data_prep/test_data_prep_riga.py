"""Tests for the data_prep.riga command line (a thin entry point over monai_lexu.datasets.riga.cli)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from data_prep.riga import main
from monai_lexu.data.datalist import load_multirater_datalist
from monai_lexu.datasets.riga.synthetic import write_riga_like

REPO = Path(__file__).resolve().parents[2]


def test_riga_cli_converts(tmp_path, capsys):
    root = write_riga_like(tmp_path / "raw", {"BinRushed": 3, "MESSIDOR": 2, "Magrabia": 2}, size=32, seed=0)
    out = tmp_path / "out"
    assert main(["--root", str(root), "--out", str(out), "--size", "16", "--seed", "1", "--val-fraction", "0.4"]) == 0
    assert "datalist.json" in capsys.readouterr().out
    assert len(load_multirater_datalist(out / "datalist.json", "training")) == 3
    assert len(load_multirater_datalist(out / "datalist.json", "validation")) == 2
    assert len(load_multirater_datalist(out / "datalist.json", "test")) == 2


def test_riga_cli_runs_as_a_script_and_reports_missing_csv(tmp_path):
    result = subprocess.run(
        [sys.executable, "data_prep/riga.py", "--root", str(tmp_path), "--out", str(tmp_path / "o")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Glaucoma_multirater_BinRushed.csv" in result.stderr
