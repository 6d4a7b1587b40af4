"""One report of every method: the reproduced tables beside the papers' numbers, the analyses' figures, provenance.

:func:`build_report` reads a reproduction work folder (``benchmarks/reproduce_tables.py``'s ``--work``):

- ``runs/<bundle>_seed<s>/eval/metrics_test.json`` (and ``runs/lexu_riga_beta<b>_seed<s>/...``): LEXU Table 2 on
  the RIGA-like set (LEXU, LE, DE; mean ± std over seeds) and Table 3 (the beta sweep);
- ``runs/mcdropout_<fusion>_<variant>/eval/metrics_test.json``: Jungo et al. Table 1;
- ``hecktor_table2/<METHOD>/eval/metrics_fold<k>_per_image.csv`` (``benchmarks/hecktor_table2.py``) or
  ``runs/<bundle>_hecktor*/eval/...``: Table 2's HECKTOR half (3-fold cross-validation, the folds every method has);
- ``analyses/<run>/level<NNN>/``: the per-head-map evaluations (:mod:`monai_lexu.report.analyses`): quality
  control (Fig. 2a), agreement under distortion (Fig. 2c), AUROC distorted vs clean, GED;

and writes ``report.html`` (self-contained: every figure is a base64 PNG inside the page) and ``report.md`` (the
same tables; figures as PNG files next to it). Every table reproduced from a paper stands beside the paper's
numbers with a column saying whether the paper's ordering of the methods holds.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from monai_lexu.report.tables import finite_mean_std, markdown_table, mean_std

__all__ = [
    "PAPER_TABLE2",
    "PAPER_TABLE3",
    "Figure",
    "Section",
    "Table",
    "build_report",
    "ordering_table",
    "render_html",
    "render_markdown",
]

_T2_METRICS = ("SR", "DC", "NCC", "soft_dice", "NLL")
_HIGHER_IS_BETTER = {"SR": True, "DC": True, "NCC": True, "soft_dice": True, "NLL": False, "d-AUC": False}

PAPER_TABLE2: dict[str, dict[str, dict[str, float]]] = {
    "RIGA": {
        "DE": {"SR disc": 0.472, "SR cup": 0.349, "DC disc": 0.444, "DC cup": 0.399, "NCC disc": 0.644,
               "NCC cup": 0.607, "soft_dice disc": 0.977, "soft_dice cup": 0.874, "NLL": 0.219},
        "LE": {"SR disc": -0.630, "SR cup": -0.517, "DC disc": 0.601, "DC cup": 0.516, "NCC disc": 0.470,
               "NCC cup": 0.473, "soft_dice disc": 0.974, "soft_dice cup": 0.869, "NLL": 0.174},
        "LEXU": {"SR disc": 0.703, "SR cup": 0.689, "DC disc": 0.685, "DC cup": 0.651, "NCC disc": 0.766,
                 "NCC cup": 0.735, "soft_dice disc": 0.970, "soft_dice cup": 0.856, "NLL": 0.163},
    },
    "HECKTOR": {
        "DE": {"SR GTVp": 0.184, "SR GTVn": 0.158, "DC GTVp": 0.349, "DC GTVn": 0.245, "NCC GTVp": 0.314,
               "NCC GTVn": 0.348, "soft_dice GTVp": 0.829, "soft_dice GTVn": 0.784, "NLL": 0.512},
        "LE": {"SR GTVp": 0.810, "SR GTVn": 0.620, "DC GTVp": 0.766, "DC GTVn": 0.575, "NCC GTVp": 0.242,
               "NCC GTVn": 0.245, "soft_dice GTVp": 0.766, "soft_dice GTVn": 0.691, "NLL": 0.197},
        "LEXU": {"SR GTVp": 0.904, "SR GTVn": 0.816, "DC GTVp": 0.862, "DC GTVn": 0.799, "NCC GTVp": 0.456,
                 "NCC GTVn": 0.492, "soft_dice GTVp": 0.788, "soft_dice GTVn": 0.726, "NLL": 0.131},
    },
}  # fmt: skip
"""LEXU Table 2 as printed (soft Dice is the paper's "Dice"; its NLL is one number over both structures)."""

PAPER_TABLE3: dict[float, dict[str, float]] = {
    0.0: {"SR disc": -0.594, "SR cup": -0.524, "DC disc": 0.572, "DC cup": 0.526, "soft_dice disc": 0.974,
          "soft_dice cup": 0.874, "NLL": 0.173},
    3.0: {"SR disc": 0.690, "SR cup": 0.707, "DC disc": 0.665, "DC cup": 0.657, "soft_dice disc": 0.973,
          "soft_dice cup": 0.854, "NLL": 0.166},
    5.0: {"SR disc": 0.712, "SR cup": 0.673, "DC disc": 0.680, "DC cup": 0.643, "soft_dice disc": 0.971,
          "soft_dice cup": 0.855, "NLL": 0.163},
    10.0: {"SR disc": 0.661, "SR cup": 0.606, "DC disc": 0.680, "DC cup": 0.634, "soft_dice disc": 0.965,
           "soft_dice cup": 0.818, "NLL": 0.161},
}  # fmt: skip
"""LEXU Table 3 (the DGM weight beta on RIGA) as printed."""

RIGA_BUNDLES = {"LEXU": "lexu_riga", "LE": "layer_ensemble_riga", "DE": "deep_ensemble_riga"}
RIGA_EXTRA_RUNS = {"MC dropout": "calibrated_ensemble_riga_dropout", "CE": "calibrated_ensemble_riga"}
"""Methods without a paper row in Table 2, by run-folder stem (``benchmarks/reproduce_tables.py --extra MCD CE``): the
calibrated-ensemble bundle's MC-dropout baseline (T = 7 samples, p = 0.1) and the calibrated ensemble (7 members)."""
RIGA_METHOD_RUNS = {**RIGA_BUNDLES, **RIGA_EXTRA_RUNS}
_RUN_CONFIGS = {
    "calibrated_ensemble_riga_dropout": ("calibrated_ensemble_riga", ("train.json", "dropout.json", "evaluate.json",
                                                                      "cpu_small.json")),
    "calibrated_ensemble_riga": ("calibrated_ensemble_riga", ("train.json", "fit_calibration.json", "evaluate.json",
                                                              "cpu_small.json")),
}  # fmt: skip
"""Run stems whose bundle folder or config list differ from ``bundles/<stem>/configs/{train,evaluate,cpu_small}``."""
HECKTOR_BUNDLES = {"LEXU": "lexu_hecktor", "LE": "layer_ensemble_hecktor", "DE": "deep_ensemble_hecktor"}
_RUN_NAME = re.compile(r"^(?P<bundle>[a-z_]+?)(?:_beta(?P<beta>[0-9.]+))?_seed(?P<seed>\d+)$")


@dataclass
class Table:
    """A table of the report: ``rows`` (dicts, one per row; keys = columns in order) with an id and a caption."""

    id: str
    caption: str
    rows: list[dict[str, Any]]


@dataclass
class Figure:
    """A PNG figure of the report."""

    id: str
    caption: str
    png: bytes


@dataclass
class Section:
    """A titled part of the report: paragraphs, tables and figures, in that order."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------------- rendering


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if not np.isfinite(value):
            return "n/a"
        return f"{value:.2e}" if 0 < abs(value) < 0.01 else f"{value:.3f}"
    return str(value)


def render_html(title: str, sections: Sequence[Section]) -> str:
    """A self-contained HTML page: tables as ``<table id=...>``, figures as base64 ``<img src="data:image/png...">``."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.85em}"
        "td,th{border:1px solid #bbb;padding:3px 7px;text-align:right}th{background:#eee}"
        "td:first-child,th:first-child{text-align:left}caption{caption-side:top;text-align:left;font-weight:bold;"
        "padding:4px 0}img{max-width:100%;border:1px solid #ddd}figcaption{font-size:0.85em;color:#444}"
        ".no{color:#b00;font-weight:bold}.yes{color:#070;font-weight:bold}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    toc = "".join(f'<li><a href="#sec{i}">{html.escape(s.title)}</a></li>' for i, s in enumerate(sections))
    out.append(f"<ol>{toc}</ol>")
    for i, s in enumerate(sections):
        out.append(f'<h2 id="sec{i}">{html.escape(s.title)}</h2>')
        out += [f"<p>{html.escape(p)}</p>" for p in s.paragraphs]
        for t in s.tables:
            cols = list(dict.fromkeys(k for r in t.rows for k in r))
            head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
            body = []
            for r in t.rows:
                cells = []
                for c in cols:
                    text = _cell(r.get(c, ""))
                    cls = ' class="yes"' if text == "yes" else ' class="no"' if text.startswith("no") else ""
                    cells.append(f"<td{cls}>{html.escape(text)}</td>")
                body.append("<tr>" + "".join(cells) + "</tr>")
            out.append(
                f'<table id="{html.escape(t.id)}"><caption>{html.escape(t.caption)}</caption>'
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            )
        for f in s.figures:
            data = base64.b64encode(f.png).decode("ascii")
            out.append(
                f'<figure id="{html.escape(f.id)}"><img alt="{html.escape(f.caption)}" '
                f'src="data:image/png;base64,{data}"><figcaption>{html.escape(f.caption)}</figcaption></figure>'
            )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def render_markdown(title: str, sections: Sequence[Section], figure_dir: str = "figures") -> str:
    """The same report in Markdown; figure ``f`` is referenced as ``<figure_dir>/<f.id>.png``."""
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        for p in s.paragraphs:
            out += [p, ""]
        for t in s.tables:
            cols = list(dict.fromkeys(k for r in t.rows for k in r))
            rows = [{c: _cell(r.get(c, "")) for c in cols} for r in t.rows]
            out += [f"**{t.caption}**", "", markdown_table(rows, cols) if rows else "(no rows)", ""]
        for f in s.figures:
            out += [f"![{f.caption}]({figure_dir}/{f.id}.png)", "", f"*{f.caption}*", ""]
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------ reading the runs


def _runs(work: Path) -> list[dict[str, Any]]:
    """Every ``runs/<bundle>[_beta<b>]_seed<s>`` with its evaluation JSON: bundle, beta, seed, path."""
    found = []
    for d in sorted((work / "runs").glob("*_seed*")):
        m = _RUN_NAME.match(d.name)
        ev = d / "eval" / "metrics_test.json"
        if m and ev.is_file():
            beta = m.group("beta")
            found.append(
                {
                    "name": d.name,
                    "bundle": m.group("bundle"),
                    "beta": None if beta is None else float(beta),
                    "seed": int(m.group("seed")),
                    "eval": json.loads(ev.read_text()),
                    "dir": d,
                }
            )
    return found


def _value(run: Mapping[str, Any], metric: str, structure: str | None) -> float:
    mean = run["eval"]["mean"]
    if structure is None:  # the paper's one NLL: the mean over structures
        vals = [mean[s].get(metric) for s in mean]
        return float(np.mean([np.nan if v is None else v for v in vals]))
    v = mean.get(structure, {}).get(metric)
    return float("nan") if v is None else float(v)


def _order(values: Mapping[str, float], higher_is_better: bool) -> list[str]:
    finite = {k: v for k, v in values.items() if np.isfinite(v)}
    return sorted(finite, key=lambda k: -finite[k] if higher_is_better else finite[k])


def ordering_table(
    ours: Mapping[str, Mapping[str, float]],
    paper: Mapping[str, Mapping[str, float]],
    columns: Sequence[str],
    higher_is_better: Callable[[str], bool],
    ours_text: Mapping[str, Mapping[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """Rows ``(column; paper value per method; ours per method; paper's order; ours holds it?)``.

    The paper's ordering of a column is the order of its methods by value (best first); it holds when our values
    of the same methods (those with a finite value in both) come in the same order.

    Args:
        ours: method -> column -> our value (mean over runs).
        paper: method -> column -> the paper's value.
        columns: the table's columns (e.g. ``"SR cup"``).
        higher_is_better: column -> whether larger is better.
        ours_text: method -> column -> the cell text for ours (e.g. ``"0.71 ± 0.02"``); default the value.
    """
    rows = []
    methods = [m for m in paper if m in ours]
    for col in columns:
        hib = higher_is_better(col)
        row: dict[str, Any] = {"column": col}
        for m in paper:
            row[f"paper {m}"] = paper[m].get(col, float("nan"))
        for m in [*methods, *(m for m in ours if m not in paper)]:  # methods the paper lacks: shown, not ordered
            row[f"ours {m}"] = (ours_text or {}).get(m, {}).get(col) or ours[m].get(col, float("nan"))
        common = [
            m for m in methods if np.isfinite(paper[m].get(col, np.nan)) and np.isfinite(ours[m].get(col, np.nan))
        ]
        p_order = _order({m: paper[m][col] for m in common}, hib)
        o_order = _order({m: ours[m][col] for m in common}, hib)
        row["paper order (best first)"] = " > ".join(p_order) if p_order else "n/a"
        if len(common) < 2:
            row["paper order holds"] = "n/a"
        else:
            row["paper order holds"] = "yes" if p_order == o_order else "no (ours: " + " > ".join(o_order) + ")"
        rows.append(row)
    return rows


def _t2_columns(structures: Sequence[str]) -> list[str]:
    return [f"{m} {s}" for m in _T2_METRICS if m != "NLL" for s in structures] + ["NLL"]


def _method_values(runs: Sequence[Mapping[str, Any]], structures: Sequence[str]) -> tuple[dict, dict]:
    values, text = {}, {}
    for col in _t2_columns(structures):
        metric, _, s = col.partition(" ")
        per_run = [_value(r, metric, s or None) for r in runs]
        values[col] = finite_mean_std(per_run)[0]
        text[col] = mean_std(per_run)
    return values, text


def _hib(col: str) -> bool:
    return _HIGHER_IS_BETTER.get(col.split(" ")[0], True)


def _table2_section(
    work: Path, runs: Sequence[Mapping[str, Any]], extra: Mapping[str, Sequence[Path]] | None = None
) -> Section:
    sec = Section("LEXU Table 2 on the RIGA-like set (LEXU, LE, DE)")
    structures = ["disc", "cup"]
    ours, text, seeds = {}, {}, {}
    for method, bundle in RIGA_METHOD_RUNS.items():  # the extra methods are shown, not ordered (no paper row)
        rr = [r for r in runs if r["bundle"] == bundle and r["beta"] is None]
        if rr:
            ours[method], text[method] = _method_values(rr, structures)
            seeds[method] = [r["seed"] for r in rr]
    for method, paths in (extra or {}).items():  # other methods' evaluations (e.g. calibrated ensembles)
        rr = [{"eval": json.loads(Path(p).read_text())} for p in paths]
        if rr:
            ours[method], text[method] = _method_values(rr, structures)
            sec.paragraphs.append(f"{method}: {len(rr)} evaluation(s): " + ", ".join(str(p) for p in paths) + ".")
    if not ours:
        sec.paragraphs.append(f"No RIGA run found under {work / 'runs'}: not run.")
        return sec
    sec.paragraphs.append(
        "Ours: mean ± std (ddof 0) over seeds of each run's test-set value, CPU recipe (cpu_small.json) on the "
        "synthetic RIGA-like set; seeds " + ", ".join(f"{m} {s}" for m, s in seeds.items()) + ". The paper: RIGA, "
        "ResNet50 U-Net, three runs for LEXU and LE, one for DE. NLL is the mean over disc and cup of the binary "
        "NLL (the paper's single NLL comes from a softmax over the two channels). 'paper order holds' compares the "
        "order of the methods, best first."
    )
    sec.tables.append(
        Table(
            "table2-riga",
            "LEXU Table 2 (RIGA): the paper's numbers beside ours",
            ordering_table(ours, PAPER_TABLE2["RIGA"], _t2_columns(structures), _hib, text),
        )
    )
    return sec


def _table3_section(runs: Sequence[Mapping[str, Any]]) -> Section:
    sec = Section("LEXU Table 3: the DGM weight beta (RIGA-like set)")
    structures = ["disc", "cup"]
    by_beta: dict[float, list] = {}
    for r in runs:
        if r["bundle"] == "lexu_riga":
            by_beta.setdefault(5.0 if r["beta"] is None else r["beta"], []).append(r)
    if len(by_beta) < 2:
        sec.paragraphs.append("Fewer than two beta values were run: Table 3 not reproduced.")
        return sec
    cols = [c for c in _t2_columns(structures) if not c.startswith("NCC")]
    rows = []
    ours = {}
    for beta in sorted(by_beta):
        vals, text = _method_values(by_beta[beta], structures)
        ours[f"beta {beta:g}"] = vals
        rows.append(
            {
                "beta": f"{beta:g}",
                "runs (seeds)": f"{len(by_beta[beta])} ({', '.join(str(r['seed']) for r in by_beta[beta])})",
                **text,
            }
        )
    paper = {f"beta {b:g}": v for b, v in PAPER_TABLE3.items()}
    sec.paragraphs.append(
        "Ours: mean ± std over seeds per beta (beta 5 is the LEXU run of Table 2). The ordering table compares the "
        "order of the beta values per column with the paper's (only the betas run here)."
    )
    sec.tables.append(Table("table3-ours", "Table 3, ours (mean ± std over seeds)", rows))
    sec.tables.append(
        Table(
            "table3-order",
            "Table 3: the paper's numbers and order of beta beside ours",
            ordering_table(ours, paper, cols, _hib),
        )
    )
    return sec


def _fig_png(plot: Callable[[Path], Any]) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fig.png"
        plot(path)
        return path.read_bytes()


def _analyses_sections(work: Path, runs: Sequence[Mapping[str, Any]]) -> tuple[list[Section], dict[str, Any]]:
    from monai_lexu.report.analyses import (
        DISTORTION_LEVELS,
        OOD_SCORES,
        analyse_run,
        level_name,
        plot_agreement_by_level,
        plot_qc_curves,
        summarize_run,
    )

    structures = ["disc", "cup"]
    root = work / "analyses"
    results: dict[str, dict[str, Any]] = {}  # method -> seed -> {"records", "summary"}
    for method, bundle in RIGA_METHOD_RUNS.items():
        for r in runs:
            if r["bundle"] != bundle or r["beta"] is not None:
                continue
            levels = {f: root / r["name"] / level_name(f) for f in DISTORTION_LEVELS}
            levels = {f: d for f, d in levels.items() if (d / "metrics_test.json").is_file()}
            if 0.0 not in levels:
                continue
            records = analyse_run(levels, structures)
            results.setdefault(method, {})[r["seed"]] = {
                "records": records,
                "summary": summarize_run(records, structures),
            }
    qc = Section("Segmentation quality control (LEXU Fig. 2a; RIGA-like set)")
    ood = Section("Example difficulty under distortion (LEXU Fig. 2c, EDUE's OOD figure)")
    ged = Section("Generalised energy distance between each method's heads and the raters")
    if not results:
        for s in (qc, ood, ged):
            s.paragraphs.append(f"No per-head-map evaluation under {root}: not run (reproduce_tables.py --analyses).")
        return [qc, ood, ged], {}
    # QC table: d-AUC mean ± std over seeds, per method, structure and score
    rows = []
    for s in structures:
        for score in ("uncertainty sum", "estimated Dice"):
            row: dict[str, Any] = {"structure": s, "score": score}
            for method, by_seed in results.items():
                vals = [v["summary"][s]["d_auc"][score] for v in by_seed.values() if s in v["summary"]]
                row[f"{method} d-AUC"] = mean_std(vals)
                row[f"{method} seeds"] = len(vals)
            means = {
                m: finite_mean_std([v["summary"][s]["d_auc"][score] for v in bs.values()])[0]
                for m, bs in results.items()
            }
            if "LEXU" in means and "LE" in means and np.isfinite(means["LEXU"]) and np.isfinite(means["LE"]):
                row["LEXU <= LE (paper: LE worst)"] = "yes" if means["LEXU"] <= means["LE"] else "no"
            rows.append(row)
    first = {m: bs[min(bs)] for m, bs in results.items()}
    n_poor = {s: {m: v["summary"][s]["n_poor"] for m, v in first.items()} for s in structures}
    qc.paragraphs.append(
        "Per image, Dice of prob >= 0.5 against the soft-majority label (>= 0.5); poor below 0.97 (disc) / 0.85 "
        "(cup). Images are referred for review by decreasing sum of the uncertainty map (or increasing Dice estimated "
        "from the probability map); y = fraction of the poor images not yet referred; d-AUC = area under the curve "
        "minus area under the ideal curve (dashed), 0 perfect, lower better. Clean test set. Poor images in the "
        f"first seed: {n_poor}. Mean ± std over seeds."
    )
    qc.tables.append(Table("qc-dauc", "d-AUC of segmentation quality control (lower is better)", rows))
    qc.figures.append(
        Figure(
            "fig2a-qc",
            "Fig. 2a analogue: remaining poor fraction vs referred fraction (first seed of each method); dashed: ideal",
            _fig_png(lambda p: plot_qc_curves({m: v["summary"] for m, v in first.items()}, structures, p)),
        )
    )
    # agreement by distortion level
    rows, auroc_rows = [], []
    for method, by_seed in results.items():
        for s in structures:
            for fld, label in (
                ("agree_mean", "mean pairwise soft Dice"),
                ("agree_var", "variance of pairwise soft Dice"),
                ("aula", "AULA (consecutive heads, > 0.5)"),
                ("unc_sum", "uncertainty sum"),
                ("pred_frac", "predicted area (fraction of the image)"),
                ("dice", "Dice vs soft-majority label"),
            ):
                row = {"method": method, "structure": s, "score": label}
                means = []
                for f in DISTORTION_LEVELS:
                    vals = [
                        v["summary"][s]["agreement"].get(str(f), {}).get(fld, {}).get("mean", np.nan)
                        for v in by_seed.values()
                    ]
                    m = finite_mean_std(vals)[0]
                    means.append(m)
                    row[f"{round(100 * f)} %"] = m
                if fld in ("unc_sum", "pred_frac", "dice"):
                    pass
                elif fld != "agree_var" and all(np.isfinite(means)):
                    row["decreases with distortion"] = "yes" if means[0] > means[1] > means[2] else "no"
                    per_seed = []
                    for seed, v in sorted(by_seed.items()):
                        lv = [v["summary"][s]["agreement"].get(str(f), {}).get(fld, {}).get("mean", np.nan)
                              for f in DISTORTION_LEVELS]  # fmt: skip
                        per_seed.append(f"{seed}: {'yes' if lv[0] > lv[1] > lv[2] else 'no'}")
                    row["per seed"] = ", ".join(per_seed)
                elif fld == "agree_var" and all(np.isfinite(means)):
                    row["decreases with distortion"] = (
                        "(variance: " + ("grows" if means[0] < means[2] else "shrinks") + ")"
                    )
                rows.append(row)
            for name in OOD_SCORES:
                vals = [v["summary"][s]["auroc"].get(name, np.nan) for v in by_seed.values()]
                vals50 = [v["summary"][s]["auroc_50"].get(name, np.nan) for v in by_seed.values()]
                auroc_rows.append(
                    {
                        "method": method,
                        "structure": s,
                        "score": name,
                        "AUROC 0 % vs 100 %": mean_std(vals),
                        "AUROC within the 50 % set": mean_std(vals50),
                    }
                )
    ood.paragraphs.append(
        "Each test image is evaluated clean and with 0 %, 50 % and 100 % of the test images distorted (seeded: "
        "Gaussian noise of variance 50-60 on 0-255, box blur 21, hue +20..30 OpenCV units with saturation/value "
        "shifts; the reference notebook's strengths). Agreement between the heads (LEXU: decoder heads; LE: the kept "
        "heads; DE: the members; MC dropout: its 7 dropout samples; CE: the calibrated ensemble's 7 members): "
        "per image, the soft Dice of every pair of heads, its mean (agreement; 1 = full "
        "agreement) and variance, and the area under the consecutive-head agreement curve on maps thresholded at "
        "0.5. Table: the mean over images at each level, mean over seeds ('per seed': whether it decreases in each "
        "seed). AUROC (beyond the papers): telling the "
        "distorted from the clean images by each score (0.5 = chance)."
    )
    ood.tables.append(Table("agreement-levels", "Agreement by distortion level (mean over images and seeds)", rows))
    ood.tables.append(
        Table("ood-auroc", "AUROC of distorted vs clean images per score (mean ± std over seeds)", auroc_rows)
    )
    ood.figures.append(
        Figure(
            "fig2c-agreement",
            "Fig. 2c analogue: mean pairwise soft Dice between heads at 0/50/100 % distorted images (first seed)",
            _fig_png(lambda p: plot_agreement_by_level({m: v["records"] for m, v in first.items()}, structures, p)),
        )
    )
    ood.figures.append(
        Figure(
            "fig2c-variance",
            "Variance of the pairwise soft Dice between heads (the reference notebook's score), first seed",
            _fig_png(
                lambda p: plot_agreement_by_level(
                    {m: v["records"] for m, v in first.items()}, structures, p, field="agree_var"
                )
            ),
        )
    )
    ged_rows = []
    for method, by_seed in results.items():
        row = {"method": method, "heads": first[method]["records"][0]["heads"]}
        for s in structures:
            row[f"GED {s}"] = mean_std([v["summary"][s]["ged"] for v in by_seed.values()])
        ged_rows.append(row)
    ged.paragraphs.append(
        "D^2_GED = 2 E d(S, Y) - E d(S, S') - E d(Y, Y'), d = 1 - IoU, S the method's heads (members) thresholded "
        "at 0.5, Y the six raters; every ordered pair including i = j, pairs of two empty masks left out (Kohl et "
        "al.'s evaluation). Mean over the clean test images, mean ± std over seeds; lower is better."
    )
    ged.tables.append(Table("ged", "GED per method and structure (clean test set)", ged_rows))
    return [qc, ood, ged], results


def _diagnostic_section(work: Path) -> Section | None:
    """Each corruption alone at 100 % (``analyses_diag/<run>/only_<kind>``), beside the clean and full levels."""
    from monai_lexu.report.analyses import analyse_run, level_name

    root = work / "analyses_diag"
    folders = sorted(root.glob("*/only_*/metrics_test.json")) if root.is_dir() else []
    if not folders:
        return None
    sec = Section("Why agreement can rise with distortion: each corruption alone (100 % of the test images)")
    rows = []
    names = {stem: method for method, stem in RIGA_METHOD_RUNS.items()}
    for run in sorted({f.parent.parent.name for f in folders}):
        sets = {"clean": work / "analyses" / run / level_name(0.0)}
        sets.update({f.parent.name.replace("only_", "only "): f.parent for f in folders if f.parent.parent.name == run})
        sets["all three"] = work / "analyses" / run / level_name(1.0)
        for label, folder in sets.items():
            if not (folder / "metrics_test.json").is_file():
                continue
            recs = analyse_run({0.0: folder}, ["disc", "cup"])
            for st in ("disc", "cup"):
                rs = [r for r in recs if r["structure"] == st]
                rows.append(
                    {
                        "method": names.get(run.split("_seed")[0], run),
                        "run": run,
                        "images": label,
                        "structure": st,
                        "mean pairwise soft Dice": float(np.mean([r["agree_mean"] for r in rs])),
                        "uncertainty sum": float(np.mean([r["unc_sum"] for r in rs])),
                        "predicted area": float(np.mean([r["pred_frac"] for r in rs])),
                        "Dice": float(np.mean([r["dice"] for r in rs])),
                    }
                )
    sec.paragraphs.append(
        "The same trained runs evaluated with one corruption at a time applied to every test image (noise: variance "
        "50-60; blur: box 21; hsv: hue +20..30 OpenCV units, saturation -30..30, value -20..20), beside the clean "
        "set and all three together. 'predicted area' is the fraction of the image with prob >= 0.5: when it goes "
        "to 1 (disc everywhere) or 0 (no cup), every head predicts the same trivial mask and the Dice-based "
        "agreement rises although the segmentation is wrong."
    )
    sec.tables.append(Table("diag-corruptions", "Agreement, uncertainty and predicted area per corruption", rows))
    return sec


def _jungo_section(work: Path) -> Section:
    from monai_lexu.report.compare import fusion_table, load_evaluation

    sec = Section("Jungo et al. Table 1 (MC dropout, label fusion)")
    runs = {}
    for d in sorted((work / "runs").glob("mcdropout_*_*")):
        parts = d.name.split("_")
        ev = d / "eval" / "metrics_test.json"
        if len(parts) == 3 and ev.is_file():
            runs[(parts[1], parts[2])] = load_evaluation(ev)
    if not runs:
        sec.paragraphs.append(f"No Jungo run under {work / 'runs'}: not run in this work folder.")
        return sec
    rows, _ = fusion_table(runs)
    seeds = set()
    for d in (work / "runs").glob("mcdropout_*_*"):
        log = d / "train.log"
        m = re.search(r"--seed (\d+)", log.read_text(errors="replace")) if log.is_file() else None
        seeds.add(m.group(1) if m else "not passed")
    sec.paragraphs.append(f"Training seed(s) passed: {', '.join(sorted(seeds))}. Mean ± std over the test images.")
    sec.tables.append(Table("table1-jungo", "Jungo et al. Table 1, ours", rows))
    return sec


HECKTOR_PROTOCOLS = {
    "3d": {"prefix": "metrics_fold", "subdir": "", "id": "table2-hecktor", "title": "3D recipe (cpu_small.json)"},
    "slices": {
        "prefix": "metrics_slices_fold",
        "subdir": "slices",
        "id": "table2-hecktor-slices",
        "title": "the paper's 2D axial-slice protocol, CPU-sized (plain U-Net 16-256, 128 x 128, batch 16, learning "
        "rate 1e-3, 60 epochs; every image a held-out slice)",
    },
}
"""Table 2's HECKTOR half per protocol of ``benchmarks/hecktor_table2.py``: its per-fold file prefix, the runs'
subfolder of ``hecktor_table2``, the report's table id and how the section names the protocol."""


def _hecktor_eval_dirs(work: Path, protocol: str = "3d") -> dict[str, Path]:
    """Table 2's HECKTOR evaluation folder per method: ``hecktor_table2/[<subdir>/]<METHOD>/eval``
    (``benchmarks/hecktor_table2.py``) or, for the 3D recipe, else the first ``runs/<bundle>*/eval`` with a per-fold
    per-image CSV."""
    spec = HECKTOR_PROTOCOLS[protocol]
    found = {}
    for method, bundle in HECKTOR_BUNDLES.items():
        candidates = [work / "hecktor_table2" / spec["subdir"] / method / "eval"]
        if protocol == "3d":
            candidates += sorted((work / "runs").glob(f"{bundle}*/eval"))
        for d in candidates:
            if any(d.glob(f"{spec['prefix']}*_per_image.csv")):
                found[method] = d
                break
    return found


def _hecktor_section(work: Path, protocol: str = "3d") -> Section:
    """Table 2's HECKTOR half from :func:`monai_lexu.report.cv.pooled_folds`: the folds every method finished, their
    held-out cases pooled (SR/DC over the pooled cases; the rest mean ± std over them), as ``hecktor_table2.py``, for
    one of :data:`HECKTOR_PROTOCOLS`."""
    from monai_lexu.report.cv import pooled_folds

    spec = HECKTOR_PROTOCOLS[protocol]
    sec = Section("LEXU Table 2, HECKTOR half (LEXU, LE, DE)" + ("" if protocol == "3d" else ", 2D slice protocol"))
    dirs = _hecktor_eval_dirs(work, protocol)
    if not dirs and protocol != "3d":
        sec.paragraphs.append(
            f"Not run: no evaluation under {work / 'hecktor_table2' / spec['subdir']} "
            "(`python benchmarks/hecktor_table2.py --protocol slices`)."
        )
        return sec
    if not dirs:
        sec.paragraphs.append(
            "Not run: no HECKTOR cross-validation evaluation under " + str(work / "hecktor_table2") + " or "
            + str(work / "runs") + ". The paper's numbers, for the record:"
        )  # fmt: skip
        rows = [{"method": m, **v} for m, v in PAPER_TABLE2["HECKTOR"].items()]
        sec.tables.append(Table("table2-hecktor-paper", "LEXU Table 2 (HECKTOR), the paper's numbers", rows))
        return sec
    structures = ["GTVp", "GTVn"]
    pooled = pooled_folds(dirs, range(3), structures, prefix=spec["prefix"])
    ours: dict[str, dict[str, float]] = {}
    text: dict[str, dict[str, str]] = {}
    for m, r in pooled["results"].items():
        ours[m], text[m] = {}, {}
        for col in _t2_columns(structures):
            metric, _, s = col.partition(" ")
            if not s:  # the paper's one NLL: the mean over structures
                ours[m][col] = float(np.mean([r[x]["NLL"] for x in structures]))
                text[m][col] = f"{ours[m][col]:.4f}"
            elif metric in ("SR", "DC"):
                ours[m][col] = r[s][metric]
                text[m][col] = f"{r[s][metric]:.3f}"
            else:
                ours[m][col] = r[s][metric]
                text[m][col] = f"{r[s][metric]:.3f} ± {r[s][metric + '_std']:.3f}"
    common = pooled["common"]
    sec.paragraphs.append(
        f"Ours: {spec['title']}, synthetic HECKTOR-like set, "
        + ("the folds every method finished: " + ", ".join(map(str, common)) if common else "no fold common to all")
        + "; per method its held-out cases pooled ("
        + ", ".join(f"{m} folds {r['_folds']}, {r['_cases']} cases" for m, r in pooled["results"].items())
        + "): SR and DC over the pooled cases, the rest mean ± std (ddof 0) over them; NLL the mean over GTVp and "
        "GTVn. Finished folds: " + "; ".join(f"{m} {k}" for m, k in pooled["finished"].items())
        + ". Methods not run: " + (", ".join(m for m in HECKTOR_BUNDLES if m not in dirs) or "none") + ". From: "
        + ", ".join(str(d) for d in dirs.values()) + "."
    )  # fmt: skip
    sec.tables.append(
        Table(
            spec["id"],
            "LEXU Table 2 (HECKTOR): the paper's numbers beside ours" + ("" if protocol == "3d" else ", 2D slices"),
            ordering_table(ours, PAPER_TABLE2["HECKTOR"], _t2_columns(structures), _hib, text),
        )
    )
    return sec


def _log_span(path: Path) -> float | None:
    stamps = re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+", path.read_text(errors="replace"), re.M)
    if len(stamps) < 2:
        return None
    a, b = (datetime.strptime(s, "%Y-%m-%d %H:%M:%S") for s in (stamps[0], stamps[-1]))
    return (b - a).total_seconds()


def _run_configs(stem: str) -> tuple[str, tuple[str, ...]]:
    """(bundle folder, config files) of a run-folder stem."""
    return _RUN_CONFIGS.get(stem, (stem, ("train.json", "evaluate.json", "cpu_small.json")))


_PARSED_CONFIGS = re.compile(r"^parsing config_file \[([^\]]*)\]", re.M)


def _hecktor_runs(work: Path, repo: Path) -> list[dict[str, Any]]:
    """One row per finished fold of Table 2's HECKTOR half (both :data:`HECKTOR_PROTOCOLS`): the config files each
    run parsed (MONAI's ``parsing config_file [...]`` lines of ``fold<k>.log``, relative to the repository), its wall
    time (first to last log time stamp: training and evaluation) and its held-out images (rows of the per-image
    CSV). A run without its log (e.g. read from ``runs/``) says ``n/a``."""
    rows = []
    for protocol, spec in HECKTOR_PROTOCOLS.items():
        for method, ev in _hecktor_eval_dirs(work, protocol).items():
            for fold in range(3):
                table = ev / f"{spec['prefix']}{fold}_per_image.csv"
                if not table.is_file():
                    continue
                log = ev.parent / f"fold{fold}.log"
                text = log.read_text(errors="replace") if log.is_file() else ""
                files: list[str] = []
                for listed in _PARSED_CONFIGS.findall(text):
                    for name in re.findall(r"'([^']+)'", listed):
                        path = Path(name)
                        shown = str(path.relative_to(repo)) if path.is_relative_to(repo) else str(path)
                        files += [shown] if shown not in files else []
                span = _log_span(log) if text else None
                with open(table) as fh:
                    images = max(0, sum(1 for line in fh if line.strip()) - 1)
                rows.append(
                    {
                        "protocol": protocol,
                        "method": method,
                        "fold": fold,
                        "bundle": HECKTOR_BUNDLES[method],
                        "configs": " + ".join(files) or "n/a",
                        "train + evaluate (min)": "n/a" if span is None else f"{span / 60:.1f}",
                        "held-out images": images,
                    }
                )
    return rows


def _provenance_section(work: Path, runs: Sequence[Mapping[str, Any]], repo: Path) -> Section:
    from monai_lexu.report.docs import _commit, machine_info

    sec = Section("Provenance")
    info = machine_info()
    sec.paragraphs.append(
        f"Written {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} from the work folder {work}; "
        f"repository commit {_commit(repo)}."
    )
    sec.tables.append(Table("machine", "Machine", [{"item": k, "value": str(v)} for k, v in info.items()]))
    rows = []
    for r in runs:
        d = r["dir"]
        spans = [_log_span(f) for f in sorted(d.glob("train*.log"))]  # the calibrated ensemble: one log per stage
        train = sum(spans) if spans and None not in spans else None
        ev = _log_span(d / "evaluate.log") if (d / "evaluate.log").is_file() else None
        bundle, names = _run_configs(r["bundle"])
        rows.append(
            {
                "run": r["name"],
                "bundle": r["bundle"],
                "seed": r["seed"],
                "beta": "" if r["beta"] is None else f"{r['beta']:g}",
                "configs": f"bundles/{bundle}/configs/" + " + ".join(names),
                "train (min)": "n/a" if train is None else f"{train / 60:.1f}",
                "evaluate (s)": "n/a" if ev is None else f"{ev:.0f}",
                "test images": r["eval"].get("num_images", ""),
            }
        )
    sec.tables.append(Table("runs", "Runs read by this report (timings from the first/last log time stamps)", rows))
    hecktor = _hecktor_runs(work, repo)
    if hecktor:
        caption = "Table 2's HECKTOR runs (benchmarks/hecktor_table2.py; the config files from each fold's log)"
        sec.tables.append(Table("hecktor-runs", caption, hecktor))
    paths = {
        repo / "bundles" / b / "configs" / n for b, names in {_run_configs(r["bundle"]) for r in runs} for n in names
    }
    paths |= {repo / f for r in hecktor for f in r["configs"].split(" + ") if f != "n/a"}  # outside repo: absolute
    configs = []
    for path in sorted(p for p in paths if p.is_relative_to(repo) and p.is_file()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        configs.append({"config file": str(path.relative_to(repo)), "sha256 (first 16)": digest})
    sec.tables.append(Table("configs", "Config files of the bundles run (as in the working tree now)", configs))
    return sec


def build_report(
    work: str | Path,
    out: str | Path,
    title: str = "monai-lexu: reproduction and analyses",
    extra_methods: Mapping[str, Sequence[str | Path]] | None = None,
) -> dict:
    """Read the work folder, write ``report.html``, ``report.md``, ``figures/*.png`` and ``report.json`` in ``out``.

    ``extra_methods`` (name -> evaluation JSONs on the same RIGA-like test set) adds methods the paper lacks to
    Table 2 (shown beside the others, left out of the ordering check).

    Returns:
        ``{"html": path, "markdown": path, "tables": [ids], "figures": [ids], "summary": {...}}``.
    """
    work, out = Path(work), Path(out)
    repo = Path(__file__).resolve().parents[2]
    runs = _runs(work)
    extra = {m: [Path(p) for p in paths] for m, paths in (extra_methods or {}).items()}
    sections = [_table2_section(work, runs, extra), _table3_section(runs)]
    analyses, results = _analyses_sections(work, runs)
    diagnostic = _diagnostic_section(work)
    sections += analyses + ([diagnostic] if diagnostic else [])
    sections += [
        _hecktor_section(work),
        _hecktor_section(work, "slices"),
        _jungo_section(work),
        _provenance_section(work, runs, repo),
    ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(exist_ok=True)
    for s in sections:
        for f in s.figures:
            (out / "figures" / f"{f.id}.png").write_bytes(f.png)
    html_path, md_path = out / "report.html", out / "report.md"
    for path, text in ((html_path, render_html(title, sections)), (md_path, render_markdown(title, sections))):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    summary = {
        m: {str(seed): {s: {k: v for k, v in r["summary"][s].items() if k != "curves"} for s in r["summary"]}
            for seed, r in by_seed.items()}
        for m, by_seed in results.items()
    }  # fmt: skip
    tables = [t.id for s in sections for t in s.tables]
    figures = [f.id for s in sections for f in s.figures]
    (out / "report.json").write_text(
        json.dumps(
            {"tables": {t.id: t.rows for s in sections for t in s.tables}, "analyses": summary}, indent=1, default=str
        )
        + "\n"
    )
    return {"html": html_path, "markdown": md_path, "tables": tables, "figures": figures, "summary": summary}
