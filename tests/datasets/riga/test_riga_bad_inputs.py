"""Bad inputs of the RIGA converter and command line (issue 9, item 9).

Choice tested here: an unreadable image or mask fails ITS case only (like the HECKTOR converter): the other images
are converted, the failures are named in errors.json and on stderr, the exit code is 1; the failed case leaves no
PNG, the split of the other cases does not move, and the datalist (written last, atomically) leaves it out."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from data_prep.riga import main
from monai_lexu.data.datalist import load_multirater_datalist
from monai_lexu.datasets.riga.convert import convert_riga, ensure_riga_dataset
from monai_lexu.datasets.riga.format import read_riga_csv, riga_csv_path
from monai_lexu.datasets.riga.synthetic import write_riga_like

COUNTS = {"BinRushed": 4, "MESSIDOR": 3, "Magrabia": 2}


@pytest.fixture
def raw(tmp_path):
    return write_riga_like(tmp_path / "raw", COUNTS, size=32, seed=0)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _sections(datalist: Path) -> dict[str, list[str]]:
    return {s: [c["id"] for c in load_multirater_datalist(datalist, s)] for s in ("training", "validation", "test")}


def _input(raw: Path, case: str, rater: int = 0) -> Path:
    """The input file of a case (rater 0: the image), as listed by the source's CSV."""
    source, k = case.rsplit("_", 1)
    image, masks = read_riga_csv(riga_csv_path(raw, source))[int(k) - 1]
    return raw / (image if rater == 0 else masks[rater - 1])


@pytest.mark.parametrize(
    "case, rater, what",
    [("BinRushed_002", 0, "image"), ("MESSIDOR_001", 3, "mask of rater 3"), ("Magrabia_001", 0, "image")],
)
def test_corrupt_input_fails_its_case_only(raw, tmp_path, caplog, case, rater, what):
    clean = _sections(convert_riga(raw, tmp_path / "clean", size=16))
    victim = _input(raw, case, rater)
    assert victim.is_file()
    _truncate(victim)
    out = tmp_path / "out"
    with caplog.at_level(logging.ERROR, logger="monai_lexu"):
        datalist = convert_riga(raw, out, size=16)
    errors = json.loads((out / "errors.json").read_text())
    assert list(errors) == [case]
    assert errors[case].startswith(f"case {case!r}: cannot read the {what} {victim}")
    assert case in caplog.text
    assert not [p for p in out.rglob("*") if case in p.name or p.name.startswith(".tmp-")]  # no partial PNG set
    expected = {s: [cid for cid in ids if cid != case] for s, ids in clean.items()}
    assert _sections(datalist) == expected  # the other cases keep their sections
    assert len(list((out / "masks").glob("*.png"))) == 6 * (sum(COUNTS.values()) - 1)


def test_a_case_that_breaks_on_a_rerun_leaves_no_stale_pngs(raw, tmp_path):
    out = tmp_path / "out"
    convert_riga(raw, out, size=16)
    assert (out / "images" / "BinRushed_001.png").is_file()
    _truncate(_input(raw, "BinRushed_001", 6))
    datalist = convert_riga(raw, out, size=16)
    assert not list(out.rglob("BinRushed_001*"))
    assert "BinRushed_001" not in sum(_sections(datalist).values(), [])


def test_every_case_broken_writes_no_datalist(tmp_path):
    raw = write_riga_like(tmp_path / "raw", {"BinRushed": 1, "MESSIDOR": 1, "Magrabia": 1}, size=32, seed=0)
    for tif in (raw / "DiscCrop").rglob("*.tif"):
        tif.write_bytes(b"not an image")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"no case of .* could be converted.*BinRushed_001.*cannot read the image"):
        convert_riga(raw, out, size=16)
    assert not (out / "datalist.json").exists() and not list(out.rglob("*.png"))
    assert len(json.loads((out / "errors.json").read_text())) == 3


def test_cli_reports_failed_images_with_exit_1(raw, tmp_path, capsys):
    _truncate(_input(raw, "MESSIDOR_002"))
    out = tmp_path / "out"
    assert main(["--root", str(raw), "--out", str(out), "--size", "16"]) == 1
    err = capsys.readouterr().err
    assert "1 image(s) failed" in err and "MESSIDOR_002: case 'MESSIDOR_002': cannot read the image" in err
    assert str(_input(raw, "MESSIDOR_002")) in err and "Traceback" not in err
    assert (out / "datalist.json").is_file()


@pytest.mark.parametrize("where", ["read-only", "inside read-only", "below a file"])
def test_cli_unwritable_output_is_one_line_before_any_work(raw, tmp_path, read_only_dir, capsys, where):
    (tmp_path / "a_file").write_text("x")
    out = {
        "read-only": read_only_dir,
        "inside read-only": read_only_dir / "o",
        "below a file": tmp_path / "a_file" / "o",
    }
    out = out[where]
    assert main(["--root", str(raw), "--out", str(out), "--size", "16"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: convert_riga: output folder") and str(out) in err[0]
    assert not out.exists() or list(out.iterdir()) == []


def test_cli_debug_prints_the_traceback(tmp_path, capsys):
    assert main(["--root", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Glaucoma_multirater_BinRushed.csv" in err and "Traceback" not in err
    assert main(["--root", str(tmp_path / "nothing"), "--out", str(tmp_path / "o"), "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "Glaucoma_multirater_BinRushed.csv" in err


def test_dataset_dir_with_unrelated_files_is_refused(tmp_path):
    """--dataset_dir pointing at unrelated files: refused naming the folder, nothing written into it."""
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "holiday.jpg").write_bytes(b"\xff\xd8")
    (junk / "notes.txt").write_text("x")
    before = sorted(p.name for p in junk.iterdir())
    with pytest.raises(FileNotFoundError, match=rf"{junk}: no datalist\.json and no Glaucoma_multirater_\*\.csv"):
        ensure_riga_dataset(junk)
    assert sorted(p.name for p in junk.iterdir()) == before
