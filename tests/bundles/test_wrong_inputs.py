"""Wrong input is refused, with a message naming it, before anything is created or overwritten (issue 10, item 2).

Real bundle runs (``python -m monai.bundle run`` in a subprocess for the exit code, ``monai.bundle.run`` in process for
the two short trainings) of lexu_hecktor / lexu_riga / mcdropout_fusion_synthetic with their CPU configs:

* a mistyped ``--dataset_dir`` (not the bundle's default folder, no ``--make_synthetic true``) is an error naming it;
  the folder is not created, no checkpoint and no metrics file is written or overwritten;
* a nonexistent inference ``--input_dir`` and a folder without a matching file are errors naming the folder / pattern;
* ``--fold k`` outside ``[0, num_folds)`` is an error naming the fold and the number of folds;
* a training of fold 1 leaves ``models/model.pt`` (the weights inference loads) as it is, unless ``--export_model
  true``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
HECKTOR = REPO / "bundles" / "lexu_hecktor" / "configs"
RIGA = REPO / "bundles" / "lexu_riga" / "configs"
JUNGO = REPO / "bundles" / "mcdropout_fusion_synthetic" / "configs"


def _run(configs: list[Path], **overrides) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", json.dumps([str(c) for c in configs])]
    for key, value in overrides.items():
        cmd += [f"--{key}", str(value)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _trained_models(tmp_path: Path) -> Path:
    """A models folder as training leaves it for inference (its preprocessing recipe; the weights load after the
    inputs are found, so none are needed to reach the input check)."""
    from monai_lexu.datasets.hecktor import write_recipe
    from monai_lexu.datasets.hecktor.recipe import SYNTHETIC_RECIPE

    models = tmp_path / "models"
    write_recipe(models, SYNTHETIC_RECIPE)
    return models


@pytest.mark.parametrize(
    "configs",
    [
        [HECKTOR / "train.json", HECKTOR / "cpu_small.json"],
        [HECKTOR / "train_slices.json"],
        [RIGA / "train.json", RIGA / "cpu_small.json"],
        [JUNGO / "train.json"],
    ],
    ids=["hecktor", "hecktor_slices", "riga", "jungo"],
)
def test_mistyped_dataset_dir_is_an_error_and_nothing_is_created(tmp_path, configs):
    typo = tmp_path / "hecktr"
    result = _run(configs, dataset_dir=typo, ckpt_dir=tmp_path / "models", output_dir=tmp_path / "eval")
    assert result.returncode != 0
    assert f"dataset_dir {typo} does not exist" in result.stderr and "--make_synthetic true" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no data, no models, no eval folder


def test_evaluate_on_a_mistyped_dataset_dir_keeps_the_metrics(tmp_path):
    """The issue's case: evaluation on a mistyped path generated data there and overwrote eval/metrics_fold0*."""
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    (eval_dir / "metrics_fold0.md").write_text("the fold-0 table of the real data\n")
    before = _snapshot(tmp_path)
    typo = tmp_path / "data_typo"
    configs = [HECKTOR / "train.json", HECKTOR / "evaluate.json", HECKTOR / "cpu_small.json"]
    result = _run(configs, dataset_dir=typo, ckpt_dir=tmp_path / "models", output_dir=eval_dir)
    assert result.returncode != 0 and str(typo) in result.stderr
    assert _snapshot(tmp_path) == before and not typo.exists()


def test_empty_dataset_dir_is_refused_unless_make_synthetic(tmp_path):
    from monai_lexu.datasets.hecktor import ensure_hecktor_dataset
    from monai_lexu.datasets.jungo.synthetic import ensure_jungo_dataset
    from monai_lexu.datasets.riga import ensure_riga_dataset

    empty = tmp_path / "empty"
    empty.mkdir()
    for ensure in (ensure_hecktor_dataset, ensure_riga_dataset, ensure_jungo_dataset):
        with pytest.raises(FileNotFoundError, match=f"dataset_dir {empty} is empty"):
            ensure(empty, make_synthetic=False)
    assert list(empty.iterdir()) == []


def test_synthetic_wanted_auto_means_the_default_folder_only(tmp_path):
    from monai_lexu.data import as_flag, synthetic_wanted

    default = tmp_path / "bundle" / "data" / "hecktor"
    assert synthetic_wanted("auto", default, default)
    assert synthetic_wanted("auto", str(tmp_path / "bundle" / "data" / ".." / "data" / "hecktor"), default)
    assert not synthetic_wanted("auto", tmp_path / "hecktr", default)
    assert synthetic_wanted("true", tmp_path / "hecktr", default) and synthetic_wanted(True, tmp_path, default)
    assert not synthetic_wanted("False", default, default)
    with pytest.raises(ValueError, match="make_synthetic must be true, false or 'auto', got 'maybe'"):
        synthetic_wanted("maybe", default, default)
    with pytest.raises(ValueError, match="export_model must be true or false, got 2"):
        as_flag(2, "export_model")


def test_missing_inference_input_dir_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "imagesTs"
    out = tmp_path / "out"
    configs = [HECKTOR / "inference.json", HECKTOR / "cpu_small.json"]
    result = _run(configs, input_dir=missing, output_dir=out, ckpt_dir=_trained_models(tmp_path))
    assert result.returncode != 0
    assert f"input folder {missing} does not exist" in result.stderr
    assert not out.exists() and not missing.exists()


def test_inference_input_dir_without_matching_files_names_the_pattern(tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "case_ct.nii.gz").write_bytes(b"")
    out = tmp_path / "out"
    configs = [HECKTOR / "inference.json", HECKTOR / "cpu_small.json"]
    result = _run(configs, input_dir=inputs, output_dir=out, ckpt_dir=_trained_models(tmp_path))
    assert result.returncode != 0
    assert f"no input file matches {inputs}/*__CT.nii.gz" in result.stderr
    assert "case_ct.nii.gz" in result.stderr and "'*__CT.nii.gz'" in result.stderr
    assert not out.exists()


def test_riga_inference_glob_without_matching_files_is_an_error(tmp_path):
    out = tmp_path / "out"
    configs = [RIGA / "inference.json", RIGA / "cpu_small.json"]
    result = _run(configs, input_glob=f"{tmp_path}/*.png", output_dir=out, ckpt_dir=tmp_path / "models")
    assert result.returncode != 0 and f"no input file matches {tmp_path}/*.png" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("fold", [3, -1])
@pytest.mark.parametrize("evaluate", [False, True], ids=["train", "evaluate"])
def test_fold_out_of_range_is_an_error_naming_the_number_of_folds(tmp_path, fold, evaluate):
    models, eval_dir = tmp_path / "models", tmp_path / "eval"
    models.mkdir()
    (models / "model.pt").write_bytes(b"the weights inference loads")
    eval_dir.mkdir()
    (eval_dir / "metrics_fold0.md").write_text("fold 0\n")
    before = _snapshot(tmp_path)
    configs = (
        [HECKTOR / "train.json"] + ([HECKTOR / "evaluate.json"] if evaluate else []) + [HECKTOR / "cpu_small.json"]
    )
    result = _run(configs, fold=fold, dataset_dir=tmp_path / "data", ckpt_dir=models, output_dir=eval_dir)
    assert result.returncode != 0
    assert f"--fold {fold} is out of range: the data set has 3 folds, so fold must be one of 0..2" in result.stderr
    assert _snapshot(tmp_path) == before


def test_check_fold_values():
    from monai_lexu.data import check_fold

    assert check_fold(2, 3) == 2
    for bad in (3, -1, True, "1", 1.0):
        with pytest.raises(ValueError, match="out of range: the data set has 3 folds"):
            check_fold(bad, 3)


def test_training_another_fold_keeps_model_pt_unless_export_model(tmp_path):
    from monai.bundle import run

    models = tmp_path / "models"
    models.mkdir()
    (models / "model.pt").write_bytes(b"fold-0 weights of another recipe")
    overrides = {
        "bundle_root": str(REPO / "bundles" / "lexu_hecktor"),
        "dataset_dir": str(tmp_path / "data"),
        "make_synthetic": True,
        "ckpt_dir": str(models),
        "output_dir": str(tmp_path / "eval"),
        "synthetic_data": {"num_cases": 4, "seed": 1},
        "num_folds": 2,
        "fold": 1,
        "features": [8, 16, 32, 64],
        "patch_size": [32, 32, 32],
        "num_samples": 2,
        "epochs": 1,
        "val_interval": 1,
    }
    configs = [str(HECKTOR / n) for n in ("train.json", "cpu_small.json")]
    run(config_file=configs, **overrides)
    assert (models / "model.pt").read_bytes() == b"fold-0 weights of another recipe"
    fold1 = torch.load(models / "model_fold1.pt", map_location="cpu", weights_only=True)

    run(config_file=configs, **overrides, export_model="true")  # as `--export_model true` arrives from the CLI
    exported = torch.load(models / "model.pt", map_location="cpu", weights_only=True)
    assert exported.keys() == fold1.keys()
