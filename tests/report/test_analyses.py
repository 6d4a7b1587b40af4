"""Distorted copies of a data set and the per-run analysis records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from monai_lexu.report.analyses import level_name, write_distorted_dataset


def _dataset(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    cases = []
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / "images" / f"c{i}.png")
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(root / "masks" / f"c{i}_r1.png")
        cases.append({"id": f"c{i}", "image": f"images/c{i}.png", "raters": [f"masks/c{i}_r1.png"]})
    (root / "datalist.json").write_text(json.dumps({"training": [], "test": cases}))
    return root


def test_write_distorted_dataset_is_deterministic_and_links_the_rest(tmp_path: Path) -> None:
    src = _dataset(tmp_path / "data")
    a = write_distorted_dataset(src, tmp_path / "a", 0.5, seed=3)
    b = write_distorted_dataset(src, tmp_path / "b", 0.5, seed=3)
    assert a == b and len(a["distorted"]) == 2
    for case in ("c0", "c1", "c2", "c3"):
        pa, pb = tmp_path / "a" / "images" / f"{case}.png", tmp_path / "b" / "images" / f"{case}.png"
        if case in a["distorted"]:
            assert not pa.is_symlink() and pa.read_bytes() == pb.read_bytes()
            assert not np.array_equal(
                np.asarray(Image.open(pa)), np.asarray(Image.open(src / "images" / f"{case}.png"))
            )
        else:
            assert pa.is_symlink() and pa.resolve() == (src / "images" / f"{case}.png").resolve()
    assert (tmp_path / "a" / "masks" / "c0_r1.png").is_symlink()
    assert json.loads((tmp_path / "a" / "distortion.json").read_text())["seed"] == 3
    assert write_distorted_dataset(src, tmp_path / "a", 0.5, seed=3) == a  # kept as it is
    assert level_name(0.5) == "level050" and level_name(1.0) == "level100"
