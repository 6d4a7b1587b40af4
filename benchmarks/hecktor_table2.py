"""LEXU Table 2, HECKTOR half: LEXU, LE and DE on the synthetic HECKTOR-like set, 3-fold CV, 3D recipe or 2D slices.

Issue 15, item 3. Each method's bundle (``lexu_hecktor``, ``layer_ensemble_hecktor``, ``deep_ensemble_hecktor``) is
trained and evaluated on every fold with the same schedule for all three, one torch thread per run, on one shared
synthetic set (9 cases, seed 0, patient-based folds of 3 held-out cases), in one of two protocols (``--protocol``):

- ``3d`` (default): our 3D recipe with its CPU override (``configs/cpu_small.json``), ``--epochs`` default 400 = 1200
  steps (the quick start's); table ``table2_hecktor3d.{md,json}``; runs under ``<work>/<METHOD>``.
- ``slices``: the paper's protocol, 2D axial slices where any rater marks a structure (``configs/train_slices.json``,
  ``evaluate_slices.json``; every image of the tables is a held-out slice), CPU-sized on the command line as the
  RIGA CPU recipe (``lexu_riga/configs/cpu_small.json``): plain U-Net 16-256 from scratch instead of the paper's
  pretrained ResNet50, 128 x 128 instead of 256 x 256, batch 16, learning rate 1e-3 instead of the paper's 5e-5,
  ``--epochs`` default 60; table ``table2_hecktor_slices.{md,json}``; runs under ``<work>/slices/<METHOD>``. (With the
  paper's 5e-5 the from-scratch network does not train in 420 steps: fold-0 soft Dice 0.22-0.43, NLL 0.34-0.53.)

Runs are resumable: a fold whose per-image CSV exists is skipped (``--force`` redoes it). The slice protocol's
evaluation keeps every held-out slice's maps with each head's / member's probabilities (``--keep_head_maps true``;
``<prefix><fold>_maps/``) for the table's per-threshold Dice diagnostic; ``--evaluate-only`` evaluates finished folds
again from their checkpoints (same metrics; runs from before this kept the maps of 4 images per fold).

Table definitions (one row per method and structure):

- Methods are compared on the folds every one of them finished (all 3 once done), their held-out cases pooled.
- SR, DC: Spearman rank correlation / distance correlation between the per-case sums of the uncertainty map and of
  the raters' variance map, over those pooled held-out cases (9 with all folds). Deliberate difference from the
  paper: it computes them per test set of one split; a fold here has 3 cases, under the 5 our tables require.
- NCC, soft Dice, NLL, band/core: per-case values, mean ± std over the pooled held-out cases.
- "paper ordering" checks the paper's claims on its HECKTOR half: LEXU has the highest SR, DC and NCC for GTVp and
  GTVn, DE the highest soft Dice, LEXU the lowest NLL.

Usage::

    nice python benchmarks/hecktor_table2.py                       # all 9 runs, 2 at a time, then the table
    python benchmarks/hecktor_table2.py --methods LEXU LE --folds 0  # a subset
    python benchmarks/hecktor_table2.py --table-only                 # rebuild the table from finished runs
    python benchmarks/hecktor_table2.py --protocol slices            # the paper's 2D slice protocol, CPU-sized
    python benchmarks/hecktor_table2.py --protocol slices --evaluate-only  # evaluate again, every map kept
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BUNDLES = {"LEXU": "lexu_hecktor", "LE": "layer_ensemble_hecktor", "DE": "deep_ensemble_hecktor"}
_UNIT = {"LEXU": "head", "LE": "head", "DE": "member"}
STRUCTURES = ("GTVp", "GTVn")
PAPER_ORDER = {"SR": ("LEXU", max), "DC": ("LEXU", max), "NCC": ("LEXU", max), "soft_dice": ("DE", max)}
PAPER_ORDER_NLL = ("LEXU", min)
PROTOCOLS = {
    "3d": {
        "train": ["train.json"], "evaluate": ["train.json", "evaluate.json"], "override_files": ["cpu_small.json"],
        "overrides": [], "evaluate_overrides": [], "table": "table2_hecktor3d", "epochs": 400,
    },
    "slices": {
        "train": ["train_slices.json"], "evaluate": ["train_slices.json", "evaluate_slices.json"],
        "override_files": [], "evaluate_overrides": ["--keep_head_maps", "true"], "table": "table2_hecktor_slices",
        "overrides": ["--backbone", "plain", "--features", "[16, 32, 64, 128, 256]", "--image_size", "[128, 128]",
                      "--batch_size", "16", "--learning_rate", "0.001"],
        "epochs": 60,
    },
}  # fmt: skip
"""Per protocol: the bundle configs of training and evaluation, the CPU-sizing, the table's name and the default
epochs. Where the runs and their per-fold files are (the report reads them there too) and the protocol's title are
:data:`monai_lexu.report.html.HECKTOR_PROTOCOLS`."""


def _layout(protocol: str) -> dict[str, str]:
    """The protocol's evaluation file prefix, runs subfolder and title, from the report's one definition."""
    from monai_lexu.report.html import HECKTOR_PROTOCOLS

    return HECKTOR_PROTOCOLS[protocol]


def _runs(work: Path, protocol: str) -> Path:
    subdir = _layout(protocol)["subdir"]
    return work / subdir if subdir else work


def _bundle_cmd(method: str, configs: list[str], fold: int, work: Path, args: argparse.Namespace) -> list[str]:
    spec = PROTOCOLS[args.protocol]
    cfg = REPO / "bundles" / BUNDLES[method] / "configs"
    files = [str(cfg / c) for c in configs + spec["override_files"]]
    runs = _runs(work, args.protocol)
    return [
        sys.executable, "-m", "monai.bundle", "run", "--config_file", repr(files),
        "--fold", str(fold), "--epochs", str(args.epochs), "--val_interval", str(args.epochs // 4),
        "--dataset_dir", str(work / "data"), "--make_synthetic", "true",
        "--ckpt_dir", str(runs / method / "models"), "--output_dir", str(runs / method / "eval"),
        "--num_threads", str(args.num_threads), "--export_model", "false", *spec["overrides"],
    ]  # fmt: skip


def _run_fold(method: str, fold: int, work: Path, args: argparse.Namespace) -> float:
    """Train (unless ``args.evaluate_only``) and evaluate one fold; returns its wall seconds. Output in
    ``<work>/<method>/fold<k>.log`` (``fold<k>_evaluate.log`` for a re-evaluation)."""
    name = f"fold{fold}_evaluate.log" if args.evaluate_only else f"fold{fold}.log"
    log = _runs(work, args.protocol) / method / name
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    spec = PROTOCOLS[args.protocol]
    steps = [] if args.evaluate_only else [(spec["train"], [])]
    steps.append((spec["evaluate"], spec["evaluate_overrides"]))
    with open(log, "w") as fh:
        for configs, extra in steps:
            cmd = _bundle_cmd(method, configs, fold, work, args) + extra
            fh.write(f"$ {shlex.join(cmd)}\n")  # the CPU-sizing overrides too, so the log says how the run was made
            fh.flush()
            proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
            if proc.returncode != 0:
                raise RuntimeError(f"{method} fold {fold} failed ({proc.returncode}); see {log}")
    return time.perf_counter() - start


def _done(method: str, fold: int, work: Path, protocol: str = "3d") -> bool:
    prefix = _layout(protocol)["prefix"]
    return (_runs(work, protocol) / method / "eval" / f"{prefix}{fold}_per_image.csv").is_file()


def dice_per_threshold(work: Path, methods: list[str], folds: list[int], protocol: str = "3d") -> list[dict]:
    """Where the soft Dice is won or lost: Dice_t of each of the soft Dice's thresholds, per method and structure.

    Definition: for every held-out image of the given finished folds (the evaluation's saved maps,
    ``<prefix><fold>_maps/*.npz``: ``prob`` and ``soft_label``, (L, *S)), ``Dice_t`` is
    :func:`monai_lexu.metrics.soft_dice` with the single threshold t (strict ``>`` on both maps), for t in its
    default thresholds; the table gives the mean over the pooled images (the soft Dice is the mean over t), and the
    mean share of the image's pixels with ``0.1 < prob <= 0.9`` (the width of the prediction's transition band).
    When the maps hold every head's / member's probabilities (``heads``, (K, L, *S): the evaluation's
    ``keep_head_maps``), a second row per method and structure gives the same for each head / member alone, averaged
    over the K of them: the method's map is their mean, so the two rows separate what one head or member does from
    what averaging them does.
    A diagnostic beside the paper's table, not one of its columns. 2D slice protocol only: a 3D evaluation keeps one
    axial slice per volume (the one cutting the disagreement band most), not the volume, so for 3D runs nothing is
    returned rather than a slice-selected figure.

    Returns:
        one row per method (and per method's single head / member) and structure: ``images``, ``Dice@t`` for each
        t, ``band share``.
    """
    import torch

    from monai_lexu.metrics.soft_dice import DEFAULT_THRESHOLDS, soft_dice

    def per_t(prob: torch.Tensor, soft: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, *S) maps -> Dice_t (B, L, T) and band share (B, L)."""
        dice = torch.stack([soft_dice(prob, soft, thresholds=(t,)) for t in DEFAULT_THRESHOLDS], -1)
        return dice, ((prob > 0.1) & (prob <= 0.9)).flatten(2).float().mean(-1)

    prefix, rows = _layout(protocol)["prefix"], []
    for m in methods:
        folders = [_runs(work, protocol) / m / "eval" / f"{prefix}{k}_maps" for k in folds]
        files = [f for folder in folders for f in sorted(folder.glob("*.npz"))]
        if not files:
            continue
        found: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {m: [], f"{m}, one {_UNIT[m]} alone": []}
        for f in files:
            with np.load(f) as z:
                if int(z["slice"]) != -1:  # one slice of a 3D volume: see the docstring
                    return []
                prob, soft = torch.from_numpy(z["prob"][None]), torch.from_numpy(z["soft_label"][None])
                heads = torch.from_numpy(z["heads"]) if "heads" in z.files else None
            found[m].append(tuple(x[0] for x in per_t(prob, soft)))
            if heads is not None:
                d, b = per_t(heads, soft.expand_as(heads))
                found[f"{m}, one {_UNIT[m]} alone"].append((d.mean(0), b.mean(0)))
        for name, values in found.items():
            if len(values) != len(files):  # heads missing in some maps: no average over a subset
                continue
            d = torch.stack([v[0] for v in values]).double()  # (N, L, T)
            b = torch.stack([v[1] for v in values]).double()  # (N, L)
            for i, s in enumerate(STRUCTURES):
                row = {"method": name, "structure": s, "images": len(files)}
                row.update(
                    {f"Dice@{t}": f"{float(d[:, i, j].nanmean()):.3f}" for j, t in enumerate(DEFAULT_THRESHOLDS)}
                )
                row["band share"] = f"{float(b[:, i].mean()):.4f}"
                rows.append(row)
    return rows


def table(work: Path, out: Path, methods: list[str], folds: list[int], protocol: str = "3d") -> dict:
    """Pool every finished fold's held-out cases per method and write the protocol's table (``.md``, ``.json``)."""
    from monai_lexu.metrics import MIN_CASES_FOR_CORRELATION
    from monai_lexu.report.cv import pooled_folds
    from monai_lexu.report.tables import markdown_table, too_small_cell

    spec = PROTOCOLS[protocol]
    runs = _runs(work, protocol)
    pooled = pooled_folds(
        {m: runs / m / "eval" for m in methods}, folds, STRUCTURES, prefix=_layout(protocol)["prefix"]
    )
    common, results = pooled["common"], pooled["results"]
    checks = []
    full = [m for m in methods if m in results]
    if common and set(full) == set(BUNDLES):
        n_cases = min(results[m]["_cases"] for m in full)
        for s in STRUCTURES:
            for key, (winner, pick) in {**PAPER_ORDER, "NLL": PAPER_ORDER_NLL}.items():
                if key in ("SR", "DC") and n_cases < MIN_CASES_FOR_CORRELATION:
                    continue
                best = pick(results[m][s][key] for m in full)
                ours = [m for m in full if np.isclose(results[m][s][key], best, rtol=0, atol=1e-9)]
                checks.append({"structure": s, "metric": key, "paper": winner, "ours": "/".join(ours),
                               "holds": winner in ours})  # fmt: skip
    lines = [
        f"# LEXU Table 2, HECKTOR half, {_layout(protocol)['title']}, synthetic HECKTOR-like set",
        "",
        f"`benchmarks/hecktor_table2.py`: {', '.join(results)}; "
        + (f"the folds every method finished ({common}), pooled" if common else "no fold common to all methods yet")
        + " (SR/DC over the pooled held-out cases, the rest mean ± std over those cases).",
        "",
    ]
    table_rows = []
    for m, r in results.items():
        n = r["_cases"]
        small = n < MIN_CASES_FOR_CORRELATION
        for s in STRUCTURES:
            c = r[s]
            row = {"method": m, "folds": f"{','.join(map(str, r['_folds']))} ({n} cases)", "structure": s}
            for key in ("SR", "DC"):
                row[key] = too_small_cell(n, MIN_CASES_FOR_CORRELATION) if small else c[key]
            for key, label, digits in (("NCC", "NCC", 3), ("soft_dice", "soft Dice", 3), ("NLL", "NLL", 4),
                                       ("band/core", "band/core", 2)):  # fmt: skip
                row[label] = f"{c[key]:.{digits}f} ± {c[f'{key}_std']:.{digits}f}"
            table_rows.append(row)
    lines.append(markdown_table(table_rows))
    if checks:
        cols = {"structure": "structure", "metric": "metric", "paper": "paper's best", "ours": "ours (ties: all)"}
        lines.append(markdown_table([{**{v: c[k] for k, v in cols.items()}, "holds": c["holds"]} for c in checks]))
    else:
        lines.append("Paper orderings: not checked until LEXU, LE and DE share a finished fold.\n")
    per_t = dice_per_threshold(work, full, common, protocol) if common else []
    if per_t:
        lines += [
            "Diagnostic (not a paper column): Dice at each of the soft Dice's thresholds, mean over the pooled "
            "held-out images, and the share of pixels with 0.1 < prob <= 0.9.",
            "",
            markdown_table(per_t),
        ]
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{spec['table']}.md").write_text("\n".join(lines))
    (out / f"{spec['table']}.json").write_text(
        json.dumps({"results": results, "checks": checks, "dice_per_threshold": per_t}, indent=2) + "\n"
    )
    print("\n".join(lines), end="", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--work", type=Path, default=REPO / "benchmarks/work/hecktor_table2", help="runs and data")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks/results/hecktor_table2", help="table (md, json)")
    p.add_argument("--methods", nargs="+", choices=list(BUNDLES), default=list(BUNDLES))
    p.add_argument("--folds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--protocol", choices=list(PROTOCOLS), default="3d", help="3d (our recipe) or slices (the paper's)")
    p.add_argument(
        "--epochs", type=int, default=None, help="epochs of every method (default: 400 for 3d, 60 for slices)"
    )
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
    p.add_argument("--num-threads", type=int, default=1, help="torch threads per run (default 1)")
    p.add_argument("--force", action="store_true", help="redo finished folds")
    p.add_argument("--table-only", action="store_true", help="only rebuild the table from finished runs")
    p.add_argument(
        "--evaluate-only",
        action="store_true",
        help="evaluate the finished folds' checkpoints again (the slice protocol keeps every slice's maps with their "
        "heads; runs before this option kept 4 per fold)",
    )
    args = p.parse_args(argv)
    args.epochs = args.epochs or PROTOCOLS[args.protocol]["epochs"]
    work = args.work.resolve()
    if not args.table_only:
        from monai_lexu.datasets.hecktor import ensure_hecktor_dataset

        volumes = ensure_hecktor_dataset(work / "data", {"num_cases": 9, "seed": 0}, folds=3)  # once, before the runs
        if args.protocol == "slices":
            from monai_lexu.datasets.hecktor import ensure_axial_slices

            ensure_axial_slices(volumes, work / "data" / "slices")  # the configs' slices_dir, once
        # DE (5 members, about 5x the others) first within each fold, so the longest runs do not end alone
        order = sorted(args.methods, key=lambda m: m != "DE")
        if args.evaluate_only:
            todo = [(m, k) for k in args.folds for m in order if _done(m, k, work, args.protocol)]
        else:
            todo = [(m, k) for k in args.folds for m in order if args.force or not _done(m, k, work, args.protocol)]
        print(f"[hecktor_table2] {len(todo)} runs to do: {todo}", flush=True)
        start = time.perf_counter()
        finished = 0

        def job(item: tuple[str, int]) -> None:
            nonlocal finished
            secs = _run_fold(*item, work, args)
            finished += 1
            elapsed = time.perf_counter() - start
            eta = elapsed / finished * (len(todo) - finished) / max(1, min(args.jobs, len(todo)))
            print(f"[hecktor_table2] {item[0]} fold {item[1]} done in {secs / 60:.1f} min "
                  f"({finished}/{len(todo)}, ETA {eta / 60:.0f} min)", flush=True)  # fmt: skip

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            list(pool.map(job, todo))
    table(work, args.out, args.methods, args.folds, args.protocol)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
