"""Tests for monai_lexu.datasets.riga.{format,convert} (CSV reading, conversion, split, synthetic fallback)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monai_lexu.data.datalist import load_multirater_datalist, load_structures
from monai_lexu.datasets.riga.convert import _train_val_indices, convert_riga, ensure_riga_dataset
from monai_lexu.datasets.riga.format import RIGA_STRUCTURES, read_riga_csv
from monai_lexu.datasets.riga.synthetic import write_riga_like

COUNTS = {"BinRushed": 6, "MESSIDOR": 4, "Magrabia": 3}
SYNTH = {"num_per_source": COUNTS, "size": 40, "seed": 2}


@pytest.fixture(scope="module")
def raw_root(tmp_path_factory):
    return write_riga_like(tmp_path_factory.mktemp("riga") / "raw", **SYNTH)


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def test_read_riga_csv_blocks(raw_root):
    cases = read_riga_csv(raw_root / "Glaucoma_multirater_BinRushed.csv")
    assert len(cases) == 6
    image, masks = cases[0]
    assert image == "DiscCrop/BinRushed/BinRushed1/image1.tif"
    assert masks == [f"Rater{r}/BinRushed/BinRushed1/image1.tif" for r in range(1, 7)]


def test_read_riga_csv_errors_name_the_file(tmp_path, raw_root):
    lines = (raw_root / "Glaucoma_multirater_Magrabia.csv").read_text().splitlines()
    short = tmp_path / "Glaucoma_multirater_short.csv"
    short.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ValueError, match=r"Glaucoma_multirater_short\.csv.*not a multiple of 7"):
        read_riga_csv(short)
    swapped = tmp_path / "Glaucoma_multirater_swapped.csv"
    swapped.write_text("\n".join([lines[0], lines[2], lines[1], *lines[3:]]) + "\n")
    with pytest.raises(ValueError, match=r"Glaucoma_multirater_swapped\.csv: line 2 has rater '1', expected 0"):
        read_riga_csv(swapped)
    with pytest.raises(FileNotFoundError, match=r"Glaucoma_multirater_none\.csv"):
        read_riga_csv(tmp_path / "Glaucoma_multirater_none.csv")


def test_split_follows_reference_random_split():
    # the real RIGA pool: 195 BinRushed + 460 MESSIDOR -> 524 / 131 (LEXU code, seed 27)
    train, val = _train_val_indices(655, 27, 0.2)
    assert (len(train), len(val)) == (524, 131)
    expected = torch.randperm(655, generator=torch.Generator().manual_seed(27)).tolist()
    assert train + val == expected
    train, val = _train_val_indices(100, 27, 0.2)
    assert (len(train), len(val)) == (80, 20) and sorted(train + val) == list(range(100))
    with pytest.raises(ValueError, match="val_fraction"):
        _train_val_indices(10, 27, 1.0)


def test_convert_riga_datalist_split_and_files(tmp_path, raw_root):
    before = _tree_digest(raw_root)
    path = convert_riga(raw_root, tmp_path / "out", size=32)
    assert _tree_digest(raw_root) == before  # input untouched
    assert path == (tmp_path / "out" / "datalist.json").resolve()
    assert load_structures(path) == RIGA_STRUCTURES == {"disc": "nonzero", "cup": [255]}
    train = load_multirater_datalist(path, "training")
    val = load_multirater_datalist(path, "validation")
    test = load_multirater_datalist(path, "test")
    pool = [f"BinRushed_{k:03d}" for k in range(1, 7)] + [f"MESSIDOR_{k:03d}" for k in range(1, 5)]
    split = torch.randperm(10, generator=torch.Generator().manual_seed(27)).tolist()
    assert [c["id"] for c in train] == [pool[i] for i in split[:8]]
    assert [c["id"] for c in val] == [pool[i] for i in split[8:]]
    assert [c["id"] for c in test] == ["Magrabia_001", "Magrabia_002", "Magrabia_003"]
    assert test[2]["source"] == "Magrabia" and test[2]["source_image"] == "DiscCrop/Magrabia/MagrabiFemale/image1.tif"

    case = test[2]
    image = Image.open(case["image"])
    assert image.mode == "RGB" and image.size == (32, 32)
    assert len(case["raters"]) == 6
    for r, mask_path in enumerate(case["raters"], start=1):
        mask = np.asarray(Image.open(mask_path))
        original = Image.open(raw_root / f"Rater{r}/Magrabia/MagrabiFemale/image1.tif")
        np.testing.assert_array_equal(mask, np.asarray(original.resize((32, 32), Image.Resampling.NEAREST)))
        assert set(np.unique(mask)) <= {0, 150, 255} and 255 in mask and 150 in mask


def test_convert_riga_is_deterministic(tmp_path, raw_root):
    a = convert_riga(raw_root, tmp_path / "a", size=24, seed=5, val_fraction=0.3)
    b = convert_riga(raw_root, tmp_path / "b", size=24, seed=5, val_fraction=0.3)
    ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
    assert ja["training"] == jb["training"] and ja["validation"] == jb["validation"] and len(ja["validation"]) == 3
    assert _tree_digest(tmp_path / "a" / "masks") == _tree_digest(tmp_path / "b" / "masks")
    assert _tree_digest(tmp_path / "a" / "images") == _tree_digest(tmp_path / "b" / "images")


def test_convert_riga_missing_inputs_are_named(tmp_path, raw_root):
    root = tmp_path / "copy"
    write_riga_like(root, **SYNTH)
    (root / "Rater4/MESSIDOR/image2.tif").unlink()
    with pytest.raises(FileNotFoundError, match=r"Glaucoma_multirater_MESSIDOR\.csv.*MESSIDOR_002.*Rater4/MESSIDOR"):
        convert_riga(root, tmp_path / "out")
    (root / "Glaucoma_multirater_Magrabia.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"Glaucoma_multirater_Magrabia\.csv"):
        convert_riga(root, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written before the inputs were checked


def test_convert_riga_refuses_to_write_over_its_input(tmp_path):
    root = tmp_path / "r"
    write_riga_like(root / "Masks", **SYNTH)  # inputs under <out>/Masks, i.e. <out>/masks on macOS / Windows
    before = _tree_digest(root)
    with pytest.raises(ValueError, match=r"inside the output folder .*masks"):
        convert_riga(root / "Masks", root, size=16)
    assert _tree_digest(root) == before


def test_ensure_riga_dataset_generates_once_and_warns(tmp_path, caplog):
    target = tmp_path / "riga"
    with caplog.at_level(logging.WARNING, logger="monai_lexu"):
        path = ensure_riga_dataset(target, synthetic_kwargs=SYNTH, size=24)
    assert path == (target / "datalist.json").resolve()
    warnings = [r for r in caplog.records if r.name == "monai_lexu" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "SYNTHETIC" in warnings[0].getMessage() and str(target / "raw") in warnings[0].getMessage()
    assert (target / "raw" / "Glaucoma_multirater_BinRushed.csv").is_file()
    assert len(load_multirater_datalist(path, "test")) == 3
    stamp = path.stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="monai_lexu"):
        again = ensure_riga_dataset(target, synthetic_kwargs=SYNTH, size=24)
    assert Path(again).resolve() == path and path.stat().st_mtime_ns == stamp
    assert not [r for r in caplog.records if r.name == "monai_lexu"]


def test_ensure_riga_dataset_converts_real_layout_without_warning(tmp_path, caplog):
    direct = tmp_path / "direct"
    write_riga_like(direct, **SYNTH)
    nested = tmp_path / "nested"
    write_riga_like(nested / "raw", **SYNTH)
    with caplog.at_level(logging.WARNING, logger="monai_lexu"):
        p1 = ensure_riga_dataset(direct, size=16)
        p2 = ensure_riga_dataset(nested, size=16)
    assert not [r for r in caplog.records if r.name == "monai_lexu"]
    assert p1 == (direct / "datalist.json").resolve() and p2 == (nested / "datalist.json").resolve()
    assert len(load_multirater_datalist(p1, "training")) == 8
    assert len(load_multirater_datalist(p2, "validation")) == 2


def test_ensure_riga_dataset_rejects_unrelated_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(FileNotFoundError, match=r"no datalist\.json and no Glaucoma_multirater"):
        ensure_riga_dataset(tmp_path)
