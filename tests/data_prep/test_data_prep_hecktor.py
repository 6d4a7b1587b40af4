"""Tests for the data_prep.hecktor command line (a thin entry point over monai_lexu.datasets.hecktor.cli)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from data_prep.hecktor import main
from monai_lexu.data.datalist import load_multirater_datalist
from monai_lexu.datasets.hecktor.recipe import SYNTHETIC_RECIPE, load_recipe

REPO = Path(__file__).resolve().parents[2]


def test_cli_synthetic_then_convert(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--synthetic", "3", "--out", str(out), "--folds", "3", "--seed", "4"]) == 0
    printed = capsys.readouterr().out
    assert "Wrote 3 synthetic PET/CT cases" in printed and "| all | 3 |" in printed and "datalist.json" in printed
    assert (out / "raw" / "imagesTr" / "SYN-001__PT.nii.gz").is_file()
    cases = load_multirater_datalist(out / "datalist.json")
    assert len(cases) == 3 and sorted(c["fold"] for c in cases) == [0, 1, 2]
    assert load_recipe(out) == SYNTHETIC_RECIPE  # --synthetic defaults to the synthetic recipe, recorded with the data

    # a broken case: exit code 1, the other cases are still converted
    raw = tmp_path / "raw2"
    shutil.copytree(out / "raw", raw)
    (raw / "imagesTr" / "SYN-002__PT.nii.gz").unlink()
    out2 = tmp_path / "out2"
    box = [f"{v:g}" for v in SYNTHETIC_RECIPE.box_mm]
    code = main(["--root", str(raw), "--out", str(out2), "--spacing", "2", "2", "2", "--box-mm", *box])
    assert code == 1
    assert "SYN-002" in capsys.readouterr().err
    assert [c["id"] for c in load_multirater_datalist(out2 / "datalist.json")] == ["SYN-001", "SYN-003"]
    assert load_recipe(out2) == SYNTHETIC_RECIPE  # --spacing / --box-mm over the real-data default

    # the same folder with another spacing: exit code 1, the error names the recorded recipe file
    assert main(["--root", str(raw), "--out", str(out2), "--spacing", "3", "3", "3"]) == 1
    assert str(out2 / "preprocessing.json") in capsys.readouterr().err


def test_cli_usage_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--out", str(tmp_path)])
    assert exc.value.code == 2 and "--root is required" in capsys.readouterr().err
    assert main(["--root", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 1
    assert "imagesTr" in capsys.readouterr().err


def test_cli_help_runs_as_module():
    result = subprocess.run(
        [sys.executable, "-m", "data_prep.hecktor", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m data_prep.hecktor")
    assert "labelsTr/<rater>/<Case>.nii.gz" in result.stdout and "--synthetic" in result.stdout
