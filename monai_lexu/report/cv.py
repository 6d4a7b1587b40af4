"""Cross-validation summary: per-fold tables of :class:`~monai_lexu.handlers.UncertaintyReport` -> one table."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from monai_lexu.report.tables import (
    finite_mean_std,
    format_value,
    markdown_table,
    mean_std,
    too_small_cell,
    write_csv,
    write_markdown,
)

__all__ = ["cross_validation_summary"]

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
