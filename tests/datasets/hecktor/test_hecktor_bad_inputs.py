"""Bad inputs of the HECKTOR data side (issue 9): non-finite images, damaged outputs on a re-run, unwritable output
folders, the command line's one-line errors. Each test asserts the error names the case or file and that nothing is
left half-written."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_lexu.data.datalist import load_multirater_datalist
from monai_lexu.datasets.hecktor.convert import convert_hecktor
from monai_lexu.datasets.hecktor.recipe import DEFAULT_RECIPE
from monai_lexu.datasets.hecktor.transforms import hecktor_preprocessing

SHAPE = (12, 12, 12)
RECIPE = DEFAULT_RECIPE.replace(spacing=(1.0, 1.0, 1.0), box_mm=(12.0, 12.0, 12.0))


def write_case(root: Path, cid: str, ct: np.ndarray | None = None, pet: np.ndarray | None = None) -> None:
    """A 12^3, 1 mm, identity-affine case with two raters; the PET's hot top keeps the whole image in the box."""
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    ct = np.full(SHAPE, 40, np.int16) if ct is None else ct
    if pet is None:
        pet = np.ones(SHAPE, np.float32)
        pet[3:9, 3:9, 9:12] = 8.0
    nib.save(nib.Nifti1Image(ct, np.eye(4)), root / "imagesTr" / f"{cid}__CT.nii.gz")
    nib.save(nib.Nifti1Image(pet, np.eye(4)), root / "imagesTr" / f"{cid}__PT.nii.gz")
    for k, rater in enumerate(("a", "b")):
        m = np.zeros(SHAPE, np.uint8)
        m[3 + k : 7, 3:7, 3:7] = 1
        (root / "labelsTr" / rater).mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(m, np.eye(4)), root / "labelsTr" / rater / f"{cid}.nii.gz")


def good_pet() -> np.ndarray:
    pet = np.ones(SHAPE, np.float32)
    pet[3:9, 3:9, 9:12] = 8.0
    return pet


def leftovers(out: Path, cid: str) -> list[Path]:
    return [p for p in out.rglob("*") if cid in p.name or p.name.startswith(".tmp-")]


# --------------------------------------------------------------------------------------- item 1: non-finite images
@pytest.mark.parametrize(
    "modality, value",
    [("CT", np.nan), ("CT", np.inf), ("PET", np.nan), ("PET", np.inf), ("PET", -np.inf)],
)
def test_converter_refuses_non_finite_image_per_case(tmp_path, caplog, modality, value):
    root, out = tmp_path / "in", tmp_path / "out"
    write_case(root, "GOOD-1")
    write_case(root, "GOOD-2")
    if modality == "CT":
        ct = np.full(SHAPE, 40.0, np.float32)
        ct[6, 6, 6] = value
        write_case(root, "BAD", ct=ct)
    else:
        pet = good_pet()
        pet[6, 6, 6] = value
        write_case(root, "BAD", pet=pet)
    with caplog.at_level(logging.ERROR, logger="monai_lexu"):
        datalist = convert_hecktor(root, out, recipe=RECIPE, folds=2)
    assert [c["id"] for c in load_multirater_datalist(datalist)] == ["GOOD-1", "GOOD-2"]
    error = json.loads((out / "errors.json").read_text())["BAD"]
    suffix = "CT" if modality == "CT" else "PT"
    assert f"case 'BAD': the {modality} " in error and f"BAD__{suffix}.nii.gz" in error
    assert "NaN" in error and "Inf" in error and "(first at voxel (6, 6, 6))" in error
    assert "BAD" in caplog.text
    assert leftovers(out, "BAD") == []  # nothing written for that case
    assert json.loads((out / "conversion.json").read_text())["failed"] == ["BAD"]


def test_preprocessing_loader_refuses_non_finite_pet(tmp_path):
    """The loader of hecktor_preprocessing (conversion and HECKTOR inference) names the non-finite file."""
    write_case(tmp_path, "P")
    pet = good_pet()
    pet[0, 0, 0] = np.nan
    nib.save(nib.Nifti1Image(pet, np.eye(4)), tmp_path / "nan_pet.nii.gz")
    chain = hecktor_preprocessing(RECIPE)
    sample = {"id": "P", "ct": str(tmp_path / "imagesTr" / "P__CT.nii.gz"), "pet": str(tmp_path / "nan_pet.nii.gz")}
    with pytest.raises(RuntimeError) as err:  # MONAI's Compose re-raises as "applying transform ...", from our error
        chain(sample)
    cause = err.value.__cause__
    assert isinstance(cause, ValueError), err.value
    assert re.search(r"case 'P': 'pet' is not finite: .*nan_pet\.nii\.gz: .*1 NaN and 0 Inf", str(cause)), cause


# --------------------------------------------------------------------------------------------- item 5: re-runs
@pytest.fixture
def converted(tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    for cid in ("C-1", "C-2", "C-3"):
        write_case(root, cid)
    convert_hecktor(root, out, recipe=RECIPE, folds=3)
    return root, out


def _damage_zero_byte(path: Path) -> None:
    path.write_bytes(b"")


def _damage_truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "target, damage",
    [("images/C-2__PT.nii.gz", _damage_zero_byte), ("labels/b/C-2.nii.gz", _damage_truncate)],
    ids=["zero-byte-output-pet", "truncated-output-mask"],
)
@pytest.mark.parametrize("with_record", [True, False], ids=["recorded", "no-conversion-json"])
def test_rerun_validates_existing_outputs_and_redoes_invalid_ones(converted, caplog, target, damage, with_record):
    root, out = converted
    report = json.loads((out / "conversion.json").read_text())
    record = report["outputs"]["C-2"]
    assert record["shape"] == list(SHAPE) and target in record["files"]
    assert record["files"][target]["size"] == (out / target).stat().st_size > 0
    assert len(record["files"][target]["sha256"]) == 64
    good = {p: (out / p).read_bytes() for p in record["files"]}
    damage(out / target)
    if not with_record:
        (out / "conversion.json").unlink()  # e.g. a run killed before writing it: the files are read instead
    before = {p: (out / p).stat().st_mtime_ns for p in report["outputs"]["C-1"]["files"]}
    with caplog.at_level(logging.WARNING, logger="monai_lexu"):
        datalist = convert_hecktor(root, out, recipe=RECIPE, folds=3)
    assert "case 'C-2': existing output invalid" in caplog.text and target.split("/")[-1] in caplog.text
    report = json.loads((out / "conversion.json").read_text())
    assert report["redone"] == ["C-2"] and report["converted"] == ["C-2"] and report["failed"] == []
    assert report["skipped"] == ["C-1", "C-3"]
    assert {p: (out / p).read_bytes() for p in good} == good  # the same bytes as the first conversion
    assert {p: (out / p).stat().st_mtime_ns for p in before} == before  # valid cases were not rewritten
    assert [c["id"] for c in load_multirater_datalist(datalist)] == ["C-1", "C-2", "C-3"]
    assert not list(out.rglob(".tmp-*"))


def test_rerun_redoes_a_file_changed_since_recorded(converted, caplog):
    root, out = converted
    path = out / "labels" / "a" / "C-3.nii.gz"
    m = np.asarray(nib.load(path).dataobj).copy()
    m[0, 0, 0] = 2
    nib.save(nib.Nifti1Image(m, np.eye(4)), path)  # readable, right shape, but not what the conversion wrote
    with caplog.at_level(logging.WARNING, logger="monai_lexu"):
        convert_hecktor(root, out, recipe=RECIPE, folds=3)
    assert "recorded" in caplog.text and "labels/a/C-3.nii.gz" in caplog.text
    assert np.asarray(nib.load(path).dataobj)[0, 0, 0] == 0


# ------------------------------------------------------------------------------- item 9: unwritable output folder


def _out_cases(kind: str, tmp_path: Path, read_only: Path) -> Path:
    if kind == "existing read-only":
        return read_only
    if kind == "inside read-only":
        return read_only / "new"
    (tmp_path / "a_file").write_text("x")
    return tmp_path / "a_file" / "out"


@pytest.mark.parametrize("kind", ["existing read-only", "inside read-only", "below a file"])
def test_unwritable_output_folder_is_refused_before_any_work(tmp_path, read_only_dir, kind, caplog):
    root = tmp_path / "in"
    write_case(root, "C-1")
    out = _out_cases(kind, tmp_path, read_only_dir)
    with caplog.at_level(logging.INFO, logger="monai_lexu"):
        with pytest.raises(PermissionError, match=rf"output folder {out}"):
            convert_hecktor(root, out, recipe=RECIPE, folds=1)
    assert "C-1" not in caplog.text  # no case was processed
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize("kind", ["existing read-only", "below a file"])
def test_cli_unwritable_output_one_line_error(tmp_path, read_only_dir, kind, capsys):
    from monai_lexu.datasets.hecktor.cli import main

    out = _out_cases(kind, tmp_path, read_only_dir)
    code = main(["--synthetic", "2", "--root", str(tmp_path / "raw"), "--out", str(out)])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(out) in err[0], err
    assert "Traceback" not in "\n".join(err)
    assert not (tmp_path / "raw").exists()  # checked before any work: not even the synthetic set was written


def test_cli_errors_are_one_line_and_debug_shows_the_traceback(tmp_path):
    """An unexpected error (a truncated input CT read outside the per-case guard is impossible, so: a missing
    --root) is one line without --debug and a traceback with it; the exit code is non-zero either way."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    args = [
        sys.executable,
        "-m",
        "data_prep.hecktor",
        "--root",
        str(tmp_path / "missing"),
        "--out",
        str(tmp_path / "o"),
    ]
    plain = subprocess.run(args, capture_output=True, text=True, cwd=Path(__file__).parents[3], env=env)
    assert plain.returncode == 1
    lines = [line for line in plain.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and str(tmp_path / "missing") in lines[0] and "Traceback" not in plain.stderr
    debug = subprocess.run(args + ["--debug"], capture_output=True, text=True, cwd=Path(__file__).parents[3], env=env)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and str(tmp_path / "missing") in debug.stderr
    assert not (tmp_path / "o" / "datalist.json").exists()


# ------------------------------------------------------------------------------ the catalogue: converter side
def _mask_with(value: float, dtype: type) -> np.ndarray:
    m = np.zeros(SHAPE, dtype)
    m[3:7, 3:7, 3:7] = 1
    m[0, 0, 0] = value
    return m


@pytest.mark.parametrize(
    "mask, phrase",
    [
        (_mask_with(3, np.uint8), "values [3] outside {0, 1, 2}"),
        (_mask_with(0.5, np.float32), "values [0.5] outside {0, 1, 2}"),
        (_mask_with(np.nan, np.float32), "values [nan] outside {0, 1, 2}"),
    ],
    ids=["label-3", "float-0.5", "nan"],
)
def test_converter_refuses_rater_values_outside_the_mapping(tmp_path, mask, phrase):
    """The converter, like LoadRatersd, refuses a label value outside the mapping and a soft (0.5) mask."""
    root, out = tmp_path / "in", tmp_path / "out"
    write_case(root, "GOOD")
    write_case(root, "BAD")
    path = root / "labelsTr" / "b" / "BAD.nii.gz"
    nib.save(nib.Nifti1Image(mask, np.eye(4)), path)
    convert_hecktor(root, out, recipe=RECIPE, folds=1)
    error = json.loads((out / "errors.json").read_text())["BAD"]
    assert f"case 'BAD': the mask of rater 'b' ({path})" in error and phrase in error, error
    assert leftovers(out, "BAD") == []


def test_converter_mixed_dtype_raters_are_one_case(tmp_path):
    """Integer label values from any dtype: a float32 and a uint8 rater of one case convert to the same masks."""
    root, out = tmp_path / "in", tmp_path / "out"
    write_case(root, "MIX")
    path = root / "labelsTr" / "a" / "MIX.nii.gz"
    data = np.asarray(nib.load(path).dataobj)
    nib.save(nib.Nifti1Image(data.astype(np.float32), np.eye(4)), path)
    convert_hecktor(root, out, recipe=RECIPE, folds=1)
    converted = np.asarray(nib.load(out / "labels" / "a" / "MIX.nii.gz").dataobj)
    assert converted.dtype == np.uint8
    np.testing.assert_array_equal(converted, data)


def test_converter_names_a_4d_ct(tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    write_case(root, "GOOD")
    write_case(root, "FOUR")
    nib.save(nib.Nifti1Image(np.zeros((*SHAPE, 2), np.int16), np.eye(4)), root / "imagesTr" / "FOUR__CT.nii.gz")
    convert_hecktor(root, out, recipe=RECIPE, folds=1)
    error = json.loads((out / "errors.json").read_text())["FOUR"]
    assert "case 'FOUR': the CT" in error and "FOUR__CT.nii.gz must be a 3D volume, got shape (12, 12, 12, 2)" in error
    assert leftovers(out, "FOUR") == []


def test_all_zero_pet_is_valid(tmp_path):
    """An all-zero PET (a failed reconstruction looks like this, but it is finite data): converted, with the crop
    centred on the image (no head found), and it normalises to finite values."""
    root, out = tmp_path / "in", tmp_path / "out"
    write_case(root, "ZERO", pet=np.zeros(SHAPE, np.float32))
    datalist = convert_hecktor(root, out, recipe=RECIPE, folds=1)
    (case,) = load_multirater_datalist(datalist)
    pet = np.asarray(nib.load(case["image"][1]).dataobj)
    assert pet.shape == SHAPE and not pet.any()


def test_dataset_dir_with_unrelated_files_is_refused(tmp_path):
    """--dataset_dir pointing at unrelated files: refused naming the folder; nothing is written into it."""
    from monai_lexu.datasets.hecktor.convert import ensure_hecktor_dataset

    junk = tmp_path / "junk"
    (junk / "raw").mkdir(parents=True)
    (junk / "report.pdf").write_bytes(b"%PDF")
    (junk / "raw" / "scan.nii.gz").write_bytes(b"x")
    before = sorted(str(p.relative_to(junk)) for p in junk.rglob("*"))
    with pytest.raises(FileNotFoundError, match=rf"{junk}: no datalist\.json and no imagesTr/<Case>__CT\.nii\.gz"):
        ensure_hecktor_dataset(junk)
    assert sorted(str(p.relative_to(junk)) for p in junk.rglob("*")) == before
