"""Tests for the data_prep.synthetic command line (thin over monai_lexu.datasets.{jungo,riga}.cli)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_prep.synthetic import build_parser, main
from monai_lexu.data.datalist import load_multirater_datalist
from monai_lexu.datasets.jungo.synthetic import make_jungo_sample
from monai_lexu.datasets.riga.format import read_riga_csv

REPO = Path(__file__).resolve().parents[2]


def test_jungo_subcommand_writes_the_dataset(tmp_path, capsys):
    out = tmp_path / "jungo"
    assert main(["jungo", "--out", str(out), "--num-samples", "4", "--size", "24", "--seed", "3"]) == 0
    assert "4 Jungo samples" in capsys.readouterr().out
    train = load_multirater_datalist(out / "datalist_unperturbed.json", "training")
    assert len(train) == 3 and len(load_multirater_datalist(out / "datalist_unperturbed.json", "test")) == 1
    first = make_jungo_sample(np.random.default_rng(3), size=24)
    np.testing.assert_array_equal(np.asarray(Image.open(train[0]["raters"][0])), first["observers"][0] * 255)


def test_riga_like_subcommand_counts(tmp_path):
    root = tmp_path / "raw"
    counts = ["BinRushed=2", "MESSIDOR=1", "Magrabia=1"]
    args = ["riga-like", "--root", str(root), "--size", "32", "--num-per-source", *counts]
    assert main(args) == 0
    assert len(read_riga_csv(root / "Glaucoma_multirater_BinRushed.csv")) == 2
    assert len(read_riga_csv(root / "Glaucoma_multirater_Magrabia.csv")) == 1


def test_bad_arguments_exit_with_usage_error():
    with pytest.raises(SystemExit) as err:
        build_parser().parse_args(["riga-like", "--root", "x", "--num-per-source", "BinRushed:2"])
    assert err.value.code == 2
    with pytest.raises(SystemExit):
        main(["jungo", "--out", "x", "--train-fraction", "1.5"])


@pytest.mark.parametrize("command", [["-m", "data_prep.synthetic"], ["data_prep/synthetic.py"]])
def test_runnable_as_module_and_as_script(command):
    result = subprocess.run(
        [sys.executable, *command, "jungo", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "--num-samples" in result.stdout
