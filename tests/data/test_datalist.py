"""Tests for monai_lexu.data.datalist."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from monai_lexu.data.datalist import load_multirater_datalist, load_structures, write_multirater_datalist

STRUCTURES = {"disc": "nonzero", "cup": [255]}


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def _case(root: Path, cid: str, num_raters: int = 2, fold: int | None = None, modalities: int = 1) -> dict:
    images = [_touch(root / "images" / f"{cid}_m{m}.png") for m in range(modalities)]
    case = {
        "id": cid,
        "image": str(images[0]) if modalities == 1 else [str(p) for p in images],
        "raters": [str(_touch(root / "masks" / f"{cid}_r{r}.png")) for r in range(num_raters)],
    }
    if fold is not None:
        case["fold"] = fold
    return case


def _write_raw(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_round_trip_relative_storage_and_absolute_load(tmp_path):
    root = tmp_path / "ds"
    train = [_case(root, "a", 3, fold=0), _case(root, "b", 1, fold=1)]
    test = [_case(root, "c", 2, modalities=2) | {"source": "Magrabia"}]
    path = write_multirater_datalist(
        root / "datalist.json", {"training": train, "test": test}, STRUCTURES, name="toy", description="d", size=64
    )
    raw = json.loads(path.read_text())
    assert raw["name"] == "toy" and raw["description"] == "d" and raw["size"] == 64
    assert raw["structures"] == {"disc": "nonzero", "cup": [255]}
    assert raw["training"][0]["image"] == "images/a_m0.png"
    assert raw["training"][0]["raters"] == ["masks/a_r0.png", "masks/a_r1.png", "masks/a_r2.png"]
    assert raw["test"][0]["image"] == ["images/c_m0.png", "images/c_m1.png"]

    loaded = load_multirater_datalist(path, "training")
    assert [c["id"] for c in loaded] == ["a", "b"]
    assert loaded[0]["image"] == str((root / "images" / "a_m0.png").resolve())
    assert loaded[0]["raters"] == [str((root / "masks" / f"a_r{r}.png").resolve()) for r in range(3)]
    assert len(loaded[1]["raters"]) == 1 and loaded[1]["fold"] == 1
    loaded_test = load_multirater_datalist(path, "test")
    assert loaded_test[0]["image"] == [str((root / "images" / f"c_m{m}.png").resolve()) for m in range(2)]
    assert loaded_test[0]["source"] == "Magrabia"


def test_moved_directory_still_loads_and_base_dir_override(tmp_path):
    root = tmp_path / "ds"
    path = write_multirater_datalist(root / "datalist.json", {"training": [_case(root, "a")]}, STRUCTURES)
    moved = tmp_path / "moved"
    shutil.move(str(root), str(moved))
    loaded = load_multirater_datalist(moved / "datalist.json")
    assert loaded[0]["image"] == str((moved / "images" / "a_m0.png").resolve())
    # the JSON alone elsewhere, files resolved against base_dir
    lone = tmp_path / "lone.json"
    shutil.copy(moved / "datalist.json", lone)
    with pytest.raises(FileNotFoundError):
        load_multirater_datalist(lone)
    via_base = load_multirater_datalist(lone, base_dir=moved)
    assert via_base[0]["raters"][1] == str((moved / "masks" / "a_r1.png").resolve())
    assert path.name == "datalist.json"


def test_relative_input_paths_are_kept_relative_to_the_json_dir(tmp_path):
    _touch(tmp_path / "img.png")
    _touch(tmp_path / "m.png")
    case = {"id": "x", "image": "img.png", "raters": ["m.png"], "ground_truth": "m.png"}
    path = write_multirater_datalist(tmp_path / "dl.json", {"test": [case]}, {"object": "nonzero"})
    assert json.loads(path.read_text())["test"][0] == case
    loaded = load_multirater_datalist(path, "test")[0]
    assert loaded["ground_truth"] == str((tmp_path / "m.png").resolve())


def test_folds_select_cases(tmp_path):
    root = tmp_path
    cases = [_case(root, f"c{i}", fold=i % 3) for i in range(6)]
    path = write_multirater_datalist(root / "dl.json", {"training": cases}, STRUCTURES)
    assert [c["id"] for c in load_multirater_datalist(path, folds=1)] == ["c1", "c4"]
    assert [c["id"] for c in load_multirater_datalist(path, folds=[0, 2])] == ["c0", "c2", "c3", "c5"]
    assert load_multirater_datalist(path, folds=[]) == []


def test_folds_on_a_case_without_fold_names_the_case(tmp_path):
    path = write_multirater_datalist(tmp_path / "dl.json", {"training": [_case(tmp_path, "nofold")]}, STRUCTURES)
    with pytest.raises(ValueError, match=r"dl\.json.*'nofold'.*fold"):
        load_multirater_datalist(path, folds=0)


def test_load_structures_keeps_order(tmp_path):
    path = write_multirater_datalist(tmp_path / "dl.json", {}, {"GTVp": [1], "GTVn": [2], "any": "nonzero"})
    assert list(load_structures(path).items()) == [("GTVp", [1]), ("GTVn", [2]), ("any", "nonzero")]


def test_zero_raters_rejected_at_write_and_at_load(tmp_path):
    bad = {"id": "empty", "image": str(_touch(tmp_path / "i.png")), "raters": []}
    with pytest.raises(ValueError, match=r"dl\.json.*'empty'.*zero raters"):
        write_multirater_datalist(tmp_path / "dl.json", {"training": [bad]}, STRUCTURES)
    path = _write_raw(tmp_path / "raw.json", {"structures": STRUCTURES, "training": [bad]})
    with pytest.raises(ValueError, match=r"raw\.json.*'empty'.*zero raters"):
        load_multirater_datalist(path)


@pytest.mark.parametrize("missing", ["id", "image", "raters"])
def test_missing_key_names_file_case_and_key(tmp_path, missing):
    case = {"id": "c7", "image": str(_touch(tmp_path / "i.png")), "raters": [str(_touch(tmp_path / "m.png"))]}
    del case[missing]
    path = _write_raw(tmp_path / "raw.json", {"structures": STRUCTURES, "validation": [case]})
    with pytest.raises(ValueError, match=rf"raw\.json.*'validation'.*{missing!r}") as err:
        load_multirater_datalist(path, "validation")
    if missing != "id":
        assert "'c7'" in str(err.value)


def test_missing_image_and_rater_files_name_the_file_and_case(tmp_path):
    case = _case(tmp_path, "gone", 2)
    path = write_multirater_datalist(tmp_path / "dl.json", {"training": [case]}, STRUCTURES)
    Path(case["raters"][1]).unlink()
    with pytest.raises(FileNotFoundError, match=r"dl\.json.*rater 2.*'gone'.*gone_r1\.png"):
        load_multirater_datalist(path)
    Path(case["image"]).unlink()
    with pytest.raises(FileNotFoundError, match=r"dl\.json.*image.*'gone'.*gone_m0\.png"):
        load_multirater_datalist(path)


def test_unknown_section_missing_file_and_bad_json(tmp_path):
    path = write_multirater_datalist(tmp_path / "dl.json", {"training": [_case(tmp_path, "a")]}, STRUCTURES)
    with pytest.raises(ValueError, match=r"dl\.json.*'testing'.*\['training'\]"):
        load_multirater_datalist(path, "testing")
    with pytest.raises(FileNotFoundError, match=r"nothere\.json"):
        load_multirater_datalist(tmp_path / "nothere.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"broken\.json.*not valid JSON"):
        load_structures(tmp_path / "broken.json")


def test_invalid_structures_duplicate_ids_and_bad_fold(tmp_path):
    case = _case(tmp_path, "a")
    with pytest.raises(ValueError, match=r"structure 'cup'.*non-integer"):
        write_multirater_datalist(tmp_path / "dl.json", {}, {"cup": [2.5]})
    with pytest.raises(ValueError, match=r"'structures' must be a non-empty mapping"):
        write_multirater_datalist(tmp_path / "dl.json", {}, {})
    with pytest.raises(ValueError, match=r"structure 'disc'.*'nonzero'"):
        write_multirater_datalist(tmp_path / "dl.json", {}, {"disc": "all"})
    with pytest.raises(ValueError, match=r"'a' appears twice"):
        write_multirater_datalist(tmp_path / "dl.json", {"training": [case], "test": [case]}, STRUCTURES)
    with pytest.raises(ValueError, match=r"'fold' must be an int"):
        write_multirater_datalist(tmp_path / "dl.json", {"training": [case | {"fold": "0"}]}, STRUCTURES)
    with pytest.raises(ValueError, match=r"reserved"):
        write_multirater_datalist(tmp_path / "dl.json", {"structures": [case]}, STRUCTURES)
    path = _write_raw(tmp_path / "nostruct.json", {"training": []})
    with pytest.raises(ValueError, match=r"nostruct\.json.*'structures'"):
        load_structures(path)


# ----------------------------------------------------------------------------------- issue 9: bad datalists (item 7)
@pytest.mark.parametrize(
    "sections, first, second",
    [
        ({"training": ["a", "b", "a"]}, "section 'training' index 0", "section 'training' index 2"),
        (
            {"training": ["a", "b"], "validation": ["c", "b"]},
            "section 'training' index 1",
            "section 'validation' index 1",
        ),
        (
            {"training": ["a"], "validation": ["b"], "test": ["a"]},
            "section 'training' index 0",
            "section 'test' index 0",
        ),
    ],
)
def test_duplicate_ids_across_sections_name_both_entries(tmp_path, sections, first, second):
    raw = {"structures": STRUCTURES}
    for section, ids in sections.items():
        raw[section] = [{"id": cid, "image": f"images/{cid}_m0.png", "raters": [f"masks/{cid}_r0.png"]} for cid in ids]
        for cid in ids:
            _case(tmp_path, cid, num_raters=1)
    path = _write_raw(tmp_path / "dup.json", raw)
    for section in sections:
        with pytest.raises(ValueError, match=rf"dup\.json: case id '\w' appears twice: {first} and {second}"):
            load_multirater_datalist(path, section)
    cases = {s: [_case(tmp_path, cid, num_raters=1) for cid in ids] for s, ids in sections.items()}
    out = tmp_path / "written.json"
    with pytest.raises(ValueError, match=rf"appears twice: {first} and {second}"):
        write_multirater_datalist(out, cases, STRUCTURES)
    assert not out.exists() and not list(tmp_path.glob(".tmp-*"))  # nothing half-written


@pytest.mark.parametrize("bad", ["../outside.png", "images/../../outside.png", "./a/../../outside.png"])
@pytest.mark.parametrize("key", ["image", "raters", "ground_truth"])
def test_relative_paths_leaving_the_folder_are_refused(tmp_path, bad, key):
    root = tmp_path / "ds"
    _touch(tmp_path / "outside.png")
    case = {"id": "esc", "image": "img.png", "raters": ["m.png"], "ground_truth": "m.png"}
    _touch(root / "img.png"), _touch(root / "m.png")
    case[key] = [bad] if key == "raters" else bad
    path = _write_raw(root / "dl.json", {"structures": STRUCTURES, "training": [case]})
    with pytest.raises(
        ValueError, match=rf"dl\.json: section 'training', case 'esc': the .* path '{re.escape(bad)}' leaves"
    ):
        load_multirater_datalist(path)
    out = root / "new.json"
    with pytest.raises(
        ValueError, match=r"new\.json: section 'training', case 'esc': the .* leaves the datalist's folder"
    ):
        write_multirater_datalist(out, {"training": [case]}, STRUCTURES)
    assert not out.exists()


def test_inside_relative_and_absolute_paths_stay_allowed(tmp_path):
    root = tmp_path / "ds"
    outside = _touch(tmp_path / "elsewhere" / "img.png")
    _touch(root / "m.png"), _touch(root / "sub" / "other.png")
    case = {"id": "ok", "image": str(outside), "raters": ["sub/../m.png"]}
    path = write_multirater_datalist(root / "dl.json", {"training": [case]}, STRUCTURES)
    raw = json.loads(path.read_text())["training"][0]
    assert raw["image"] == outside.as_posix()  # outside the folder: kept absolute, not "../elsewhere/img.png"
    loaded = load_multirater_datalist(path)[0]
    assert loaded["image"] == str(outside) and loaded["raters"] == [str(root.resolve() / "sub/../m.png")]
