"""The one-page report: every table present, every figure embedded as a PNG, parsed from the written HTML."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from monai_lexu.report.__main__ import main
from monai_lexu.report.analyses import level_name
from monai_lexu.report.html import HECKTOR_BUNDLES, build_report, ordering_table

REPO = Path(__file__).resolve().parents[2]

STRUCTURES = ("disc", "cup")


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[str] = []
        self.images: list[str] = []
        self.figures: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.tables.append(a.get("id", ""))
        if tag == "figure":
            self.figures.append(a.get("id", ""))
        if tag == "img":
            self.images.append(a.get("src", ""))
        for key in ("src", "href"):
            if a.get(key) and not (a[key].startswith("data:") or a[key].startswith("#")):
                self.external.append(a[key])


def _evaluation(rng: np.random.Generator) -> dict:
    mean = {s: {m: float(rng.uniform(0.1, 0.9)) for m in ("SR", "DC", "NCC", "soft_dice", "NLL")} for s in STRUCTURES}
    return {"num_images": 6, "mean": mean, "std": mean, "per_image": {}}


def _maps(folder: Path, rng: np.random.Generator, level: float, heads_noise: float) -> None:
    maps = folder / "metrics_test_maps"
    maps.mkdir(parents=True)
    for i in range(6):
        raters = np.zeros((3, 2, 16, 16), np.float32)
        for r in range(3):
            raters[r, 0, 3 : 12 + r, 3:12] = 1
            raters[r, 1, 5 : 8 + r + i % 3, 5:9] = 1
        soft = raters.mean(0)
        heads = np.clip(soft[None] + heads_noise * (1 + level) * rng.normal(size=(4, 2, 16, 16)), 0, 1)
        prob = heads.mean(0)
        np.savez_compressed(
            maps / f"case{i}.npz", prob=prob, unc=heads.var(0, ddof=1), soft_label=soft, rater_var=raters.var(0),
            raters=raters, heads=heads, image=np.zeros((3, 16, 16), np.float32), id=f"case{i}", slice=-1,
        )  # fmt: skip
    (folder / "metrics_test.json").write_text("{}")
    if level > 0:
        ids = [f"case{i}" for i in range(6)][: int(round(6 * level))]
        (folder / "distortion.json").write_text(json.dumps({"fraction": level, "distorted": ids}))


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("work")
    rng = np.random.default_rng(0)
    for name, noise in (("lexu_riga_seed1", 0.1), ("lexu_riga_seed2", 0.1), ("layer_ensemble_riga_seed1", 0.2),
                        ("deep_ensemble_riga_seed1", 0.05), ("lexu_riga_beta0_seed1", 0.1),
                        ("calibrated_ensemble_riga_dropout_seed1", 0.15)):  # fmt: skip
        ev = root / "runs" / name / "eval"
        ev.mkdir(parents=True)
        (ev / "metrics_test.json").write_text(json.dumps(_evaluation(rng)))
        (root / "runs" / name / "train.log").write_text(
            "2026-11-30 10:00:00,000 - start\n2026-11-30 10:05:30,000 - done --seed 1\n"
        )
        if "beta" not in name:
            for level in (0.0, 0.5, 1.0):
                _maps(root / "analyses" / name / level_name(level), rng, level, noise)
    _maps(root / "analyses_diag" / "lexu_riga_seed1" / "only_noise", rng, 1.0, 0.1)
    return root


def test_html_report_has_every_table_and_embedded_figure(work: Path, tmp_path: Path) -> None:
    result = build_report(work, tmp_path / "out")
    page = _Collect()
    page.feed(result["html"].read_text())
    expected_tables = {"table2-riga", "table3-ours", "table3-order", "qc-dauc", "agreement-levels", "ood-auroc", "ged",
                       "table2-hecktor-paper", "machine", "runs", "configs", "diag-corruptions"}  # fmt: skip
    assert expected_tables <= set(page.tables), set(page.tables)
    assert set(result["tables"]) == set(page.tables)
    assert page.figures == result["figures"] == ["fig2a-qc", "fig2c-agreement", "fig2c-variance"]
    assert len(page.images) == 3 and not page.external
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    md = result["markdown"].read_text()
    assert "| SR cup |" in md and "figures/fig2a-qc.png" in md
    assert (tmp_path / "out" / "figures" / "fig2a-qc.png").is_file()
    # the analyses behind the tables: 3 methods, the LEXU row over its 2 seeds, agreement falls with the noise
    summary = result["summary"]
    assert set(summary) == {"LEXU", "LE", "DE", "MC dropout"} and set(summary["LEXU"]) == {"1", "2"}
    agree = summary["LE"]["1"]["cup"]["agreement"]
    assert agree["0.0"]["agree_mean"]["mean"] > agree["1.0"]["agree_mean"]["mean"]
    assert summary["LE"]["1"]["cup"]["auroc"]["1 - agreement"] > 0.5


def test_report_holds_the_calibrated_bundles_methods(work: Path, tmp_path: Path) -> None:
    """The MC-dropout baseline of calibrated_ensemble_riga: a Table-2 column (not ordered), analyses, provenance."""
    result = build_report(work, tmp_path / "out")
    tables = json.loads((tmp_path / "out" / "report.json").read_text())["tables"]
    sr_cup = next(r for r in tables["table2-riga"] if r["column"] == "SR cup")
    assert "ours MC dropout" in sr_cup and "MC dropout" not in sr_cup["paper order (best first)"]
    agree = [r for r in tables["agreement-levels"] if r["method"] == "MC dropout"]
    assert {r["structure"] for r in agree} == set(STRUCTURES) and all(np.isfinite(r["0 %"]) for r in agree)
    assert [r["heads"] for r in tables["ged"] if r["method"] == "MC dropout"] == [4]
    run = next(r for r in tables["runs"] if r["run"] == "calibrated_ensemble_riga_dropout_seed1")
    assert run["configs"].startswith("bundles/calibrated_ensemble_riga/configs/train.json + dropout.json")
    assert "MC dropout: its 7 dropout samples" in result["markdown"].read_text()


def test_ordering_table_says_whether_the_paper_order_holds() -> None:
    paper = {"A": {"x": 0.9, "nll": 0.1}, "B": {"x": 0.5, "nll": 0.2}}
    ours = {"A": {"x": 0.4, "nll": 0.1}, "B": {"x": 0.6, "nll": 0.3}}
    rows = ordering_table(ours, paper, ["x", "nll"], lambda c: c != "nll")
    assert rows[0]["paper order (best first)"] == "A > B" and rows[0]["paper order holds"] == "no (ours: B > A)"
    assert rows[1]["paper order holds"] == "yes"


def test_cli_exit_codes(work: Path, tmp_path: Path, capsys) -> None:
    assert main(["--work", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 1
    assert main(["--work", str(work), "--out", str(tmp_path / "o")]) == 0
    extra = str(work / "runs" / "lexu_riga_seed2" / "eval" / "metrics_test.json")
    assert main(["--work", str(work), "--out", str(tmp_path / "o"), "--method", "CE=" + extra]) == 0
    assert "ours CE" in (tmp_path / "o" / "report.md").read_text()
    assert main(["--work", str(work), "--out", str(tmp_path / "o"), "--method", "CE"]) == 1
    assert "tables, 3 figures" in capsys.readouterr().out and (tmp_path / "o" / "report.html").is_file()
    with pytest.raises(SystemExit) as e:
        main(["--bogus"])
    assert e.value.code == 2


def test_hecktor_slice_protocol_has_its_own_table(work: Path, tmp_path: Path) -> None:
    """``hecktor_table2/slices/<METHOD>/eval/metrics_slices_fold<k>_per_image.csv`` (``hecktor_table2.py --protocol
    slices``) gives the 2D-slice table beside the 3D one; without it the section says it was not run."""
    import csv
    import shutil

    result = build_report(work, tmp_path / "none")
    assert "table2-hecktor-slices" not in result["tables"]
    assert "hecktor_table2.py --protocol slices" in result["markdown"].read_text()
    copy = tmp_path / "work"
    shutil.copytree(work, copy)
    rng = np.random.default_rng(2)
    cols = [f"{k}_{s}" for k in ("unc_sum", "var_sum", "NCC", "soft_dice", "NLL") for s in ("GTVp", "GTVn")]
    for method in ("LEXU", "LE", "DE"):
        ev = copy / "hecktor_table2" / "slices" / method / "eval"
        ev.mkdir(parents=True)
        with open(ev / "metrics_slices_fold0_per_image.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, ["id", *cols])
            w.writeheader()
            for i in range(6):
                w.writerow({"id": f"{method}_slice{i}", **{c: float(rng.uniform(0.01, 1)) for c in cols}})
        cfg = REPO / "bundles" / HECKTOR_BUNDLES[method] / "configs"
        train, evaluate = [str(cfg / "train_slices.json")], [str(cfg / "train_slices.json"), "/elsewhere/x.json"]
        (ev.parent / "fold0.log").write_text(
            f"parsing config_file {train}: any ...\n2026-12-01 00:29:32,667 - INFO - start\n"
            f"parsing config_file {evaluate}: any ...\n2026-12-01 00:36:02,100 - INFO - done\n"
        )
    result = build_report(copy, tmp_path / "out")
    assert "table2-hecktor-slices" in result["tables"] and "hecktor-runs" in result["tables"]
    tables = json.loads((tmp_path / "out" / "report.json").read_text())["tables"]
    runs = {r["method"]: r for r in tables["hecktor-runs"]}
    assert set(runs) == {"LEXU", "LE", "DE"} and runs["DE"]["held-out images"] == 6 and runs["DE"]["fold"] == 0
    assert runs["DE"]["train + evaluate (min)"] == "6.5"  # 00:29:32 -> 00:36:02
    assert runs["DE"]["configs"] == "bundles/deep_ensemble_hecktor/configs/train_slices.json + /elsewhere/x.json"
    hashed = {r["config file"] for r in tables["configs"]}
    assert "bundles/deep_ensemble_hecktor/configs/train_slices.json" in hashed and "/elsewhere/x.json" not in hashed
    md = result["markdown"].read_text()
    assert "2D axial-slice protocol" in md and "the folds every method finished: 0" in md and "6 cases" in md
    rows = json.loads((tmp_path / "out" / "report.json").read_text())["tables"]["table2-hecktor-slices"]
    assert [r["column"] for r in rows][:2] == ["SR GTVp", "SR GTVn"]
    assert all(r["paper order holds"] != "n/a" for r in rows)


def test_hecktor_half_read_from_the_table2_benchmark(work: Path, tmp_path: Path) -> None:
    """``hecktor_table2/<METHOD>/eval`` (benchmarks/hecktor_table2.py) fills Table 2's HECKTOR half, on the folds every
    method finished (DE lacks fold 1 here, so fold 1 is left out for all three)."""
    import csv
    import shutil

    copy = tmp_path / "work"
    shutil.copytree(work, copy)
    rng = np.random.default_rng(1)
    cols = [f"{k}_{s}" for k in ("unc_sum", "var_sum", "NCC", "soft_dice", "NLL") for s in ("GTVp", "GTVn")]
    for method, folds in (("LEXU", (0, 1, 2)), ("LE", (0, 1, 2)), ("DE", (0, 2))):
        ev = copy / "hecktor_table2" / method / "eval"
        ev.mkdir(parents=True)
        for k in folds:
            with open(ev / f"metrics_fold{k}_per_image.csv", "w", newline="") as fh:
                w = csv.DictWriter(fh, ["id", *cols])
                w.writeheader()
                for i in range(3):
                    w.writerow({"id": f"{method}{k}{i}", **{c: float(rng.uniform(0.01, 1)) for c in cols}})
    result = build_report(copy, tmp_path / "out")
    assert "table2-hecktor" in result["tables"] and "table2-hecktor-paper" not in result["tables"]
    md = result["markdown"].read_text()
    assert "the folds every method finished: 0, 2" in md and "DE [0, 2]" in md
    rows = json.loads((tmp_path / "out" / "report.json").read_text())["tables"]["table2-hecktor"]
    assert [r["column"] for r in rows][:2] == ["SR GTVp", "SR GTVn"]
    assert all(r["paper order holds"] != "n/a" for r in rows)  # every column has a value for all three
