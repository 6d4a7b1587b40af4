"""Cross-validation summary: per-fold tables of :class:`~monai_lexu.handlers.UncertaintyReport` -> one table."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from monai_lexu.report.tables import (
    finite_mean_std,
    format_value,
    markdown_table,
    mean_std,
    too_small_cell,
    write_csv,
    write_markdown,
)

__all__ = ["cross_validation_summary", "pooled_folds"]

logger = logging.getLogger("monai_lexu")


def _number(value: object) -> float:
    """A JSON table value as a float: null (a statistic over too few images) -> NaN."""
    return float("nan") if value is None else float(value)  # type: ignore[arg-type]


def cross_validation_summary(
    output_dir: str | Path,
    folds: Sequence[int] = (0, 1, 2),
    prefix: str = "metrics_fold",
    title: str = "Cross-validation",
) -> dict[str, dict[str, dict[str, float]]] | None:
    """Combine ``<prefix><k>.json`` of each fold into ``<prefix>s_summary.{md,csv,json}``: per fold and mean ± std.

    The mean ± std is over the folds that have been evaluated (std with ddof=0, the spread of the fold means); folds
    whose file is missing are listed as missing, so the function can run after every fold's evaluation.

    A statistic a fold computed over too few images (null in its JSON, listed in its ``"n_too_small"``) shows as
    "n too small" in that fold's cell, is NaN in the CSV/JSON and is left out of the mean; when no fold has a value
    the mean cell shows "n too small" too.

    Args:
        output_dir: folder holding the per-fold JSON files written by ``UncertaintyReport(prefix=f"{prefix}{k}")``.
        folds: fold indices.
        prefix: per-fold file prefix.
        title: heading of the Markdown file.

    Returns:
        ``{structure: {metric: {"fold<k>": value, "mean": m, "std": s}}}``, or ``None`` when no fold is evaluated.
    """
    output_dir = Path(output_dir)
    found = {k: json.loads(p.read_text()) for k in folds if (p := output_dir / f"{prefix}{k}.json").is_file()}
    if not found:
        logger.warning("no evaluated fold in %s (%s*.json)", output_dir, prefix)
        return None
    first = next(iter(found.values()))["mean"]
    structures, metrics = list(first), list(next(iter(first.values())))
    result: dict[str, dict[str, dict[str, float]]] = {}
    rows, csv_rows = [], []
    for metric in metrics:
        row: dict[str, object] = {"metric": metric}
        # folds where a metric across images had too few images (JSON null + "n_too_small"): "n too small" cells
        small = {f"fold{k}": v.get("n_too_small", {}).get(metric) for k, v in found.items()}
        for s in structures:
            values = {f"fold{k}": _number(v["mean"][s][metric]) for k, v in found.items()}
            mean, std, n_finite = finite_mean_std(list(values.values()))
            result.setdefault(s, {})[metric] = {**values, "mean": mean, "std": std}
            if n_finite == 0 and any(small.values()):
                first = next(x for x in small.values() if x)
                row[s] = too_small_cell(first["n"], first["min"])
            else:
                row[s] = mean_std(list(values.values()))
            for fold, x in values.items():
                row[f"{s} {fold}"] = (
                    too_small_cell(small[fold]["n"], small[fold]["min"]) if small[fold] else format_value(x)
                )
            csv_rows.append({"metric": metric, "structure": s, **values, "mean": mean, "std": std})
        rows.append(row)
    columns = ["metric", *structures] + [f"{s} fold{k}" for s in structures for k in found]
    missing = [k for k in folds if k not in found]
    text = (
        f"# {title}\n\nFolds evaluated: {sorted(found)}"
        + (f"; missing: {missing}" if missing else "")
        + ". Per fold the mean over its images (SR/DC across its images); mean ± std over folds.\n\n"
        + markdown_table(rows, columns)
    )
    write_markdown(output_dir / f"{prefix}s_summary.md", text)
    write_csv(output_dir / f"{prefix}s_summary.csv", csv_rows)
    (output_dir / f"{prefix}s_summary.json").write_text(json.dumps(result, indent=2))
    logger.info("\n%s", text)
    return result


POOLED_PER_CASE = ("NCC", "soft_dice", "NLL", "band/core")
"""Per-case columns :func:`pooled_folds` averages over the pooled held-out cases (those a CSV has)."""


def pooled_folds(
    eval_dirs: Mapping[str, str | Path],
    folds: Sequence[int],
    structures: Sequence[str],
    prefix: str = "metrics_fold",
) -> dict[str, object]:
    """Several methods' cross-validations compared on the same held-out cases: the folds EVERY method finished.

    A fold is finished when ``<dir>/<prefix><k>_per_image.csv`` (:func:`monai_lexu.report.write_evaluation`) exists.
    Each method's held-out cases of the common folds (of its own finished folds when no fold is common) are pooled:

    - SR, DC: Spearman rank correlation / distance correlation between the per-case sums of the uncertainty map
      (``unc_sum_<s>``) and of the raters' variance map (``var_sum_<s>``) over the pooled cases (one value: a fold of
      a small set has too few cases for a correlation of its own);
    - :data:`POOLED_PER_CASE` (those in the CSV): mean and std (ddof 0) over the pooled cases, ``<key>`` and
      ``<key>_std``.

    Args:
        eval_dirs: method -> its evaluation folder.
        folds: the fold indices to look for.
        structures: structure names (the CSV's column suffixes).
        prefix: per-fold file prefix.

    Returns:
        ``{"common": [k...], "finished": {method: [k...]}, "results": {method: {"_folds": [k...], "_cases": n,
        structure: {"SR", "DC", "NCC", "NCC_std", ...}}}}``; a method with no finished fold has no result.
    """
    from monai_lexu.metrics.correlation import distance_correlation, spearman_correlation
    from monai_lexu.report.tables import finite_mean_std

    def csv_path(method: str, k: int) -> Path:
        return Path(eval_dirs[method]) / f"{prefix}{k}_per_image.csv"

    finished = {m: [k for k in folds if csv_path(m, k).is_file()] for m in eval_dirs}
    common = [k for k in folds if all(k in finished[m] for m in eval_dirs)]
    results: dict[str, dict[str, object]] = {}
    for m in eval_dirs:
        have = common or finished[m]
        rows: list[dict[str, str]] = []
        for k in have:
            with open(csv_path(m, k), newline="") as fh:
                rows += list(csv.DictReader(fh))
        if not rows:
            continue
        results[m] = {"_folds": list(have), "_cases": len(rows)}
        for s in structures:
            unc = np.array([[float(r[f"unc_sum_{s}"])] for r in rows])
            var = np.array([[float(r[f"var_sum_{s}"])] for r in rows])
            cell = {"SR": float(spearman_correlation(unc, var)[0]), "DC": float(distance_correlation(unc, var)[0])}
            for key in POOLED_PER_CASE:
                if f"{key}_{s}" in rows[0]:
                    cell[key], cell[f"{key}_std"], _ = finite_mean_std([float(r[f"{key}_{s}"]) for r in rows])
            results[m][s] = cell
    return {"common": common, "finished": finished, "results": results}
