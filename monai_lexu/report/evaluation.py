"""The evaluation report's files: summary table (CSV/Markdown), per-image table, JSON, reliability diagram, case maps.

:class:`monai_lexu.handlers.UncertaintyReport` collects and aggregates (across DDP ranks) and hands an
:class:`EvaluationSummary` to :func:`write_evaluation`. The files, read back by :mod:`monai_lexu.report.compare`,
:mod:`monai_lexu.report.cv` and ``benchmarks/reproduce_tables.py``, are, in ``output_dir``:

- ``<prefix>_summary.md``: title, explanation and the table (per metric and structure ``mean ± std`` over images,
  or the single value of a metric computed across images);
- ``<prefix>_summary.csv``: ``metric`` and one column per structure with the mean (the value for SR/DC/ECE);
- ``<prefix>_per_image.csv``: ``id`` then, per structure, the extra image columns (``unc_sum_<s>``,
  ``var_sum_<s>``) and every per-image metric ``<metric>_<s>``;
- ``<prefix>.json``: ``{"num_images", "mean": {s: {m}}, "std": {s: {m}}, "per_image": {s: {m: [..]}}}``, plus
  ``"n_too_small": {m: {"n": N, "min": k}}`` for the metrics across images computed over fewer images than their
  minimum (SR/DC: :data:`~monai_lexu.metrics.correlation.MIN_CASES_FOR_CORRELATION`); their ``mean`` and ``std``
  are null, their Markdown cells read "n too small (n=N < k)" and their CSV cells NaN;
- ``<prefix>_reliability.png``: the pooled reliability diagram (when the summary has reliability data);
- ``<prefix>_maps/<id>.npz``: the kept case maps (see :func:`write_case_maps`);
- ``<prefix>_case_<id>.png``: for 3D data, a picture of the first kept case (image channels with the raters'
  contours, probability, per-structure uncertainty with the disagreement band; :func:`~monai_lexu.report.plot_case`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monai_lexu.report.figures import plot_case, plot_reliability_diagram
from monai_lexu.report.tables import (
    finite_mean_std,
    markdown_table,
    mean_std,
    too_small_cell,
    write_csv,
    write_markdown,
)

__all__ = ["EvaluationSummary", "evaluation_markdown", "write_case_maps", "write_evaluation"]

_INTRO = (
    "SR/DC: correlation across images of the per-image sums of the uncertainty map and of the rater variance (shown "
    "from a minimum number of images on, else 'n too small'); NCC: "
    "per-image pixel correlation of the two maps; soft Dice, NLL, WME (predictive entropy weighted by the raters' "
    "entropy) and ME against the soft label (mean ± std over images); ECE pooled over all pixels against the soft "
    "label."
)


@dataclass
class EvaluationSummary:
    """The aggregated numbers of one evaluation, per structure.

    Attributes:
        structures: the L structure names.
        ids: the N case ids, in the order of the per-image values.
        values: metric -> per-image values (N, L) or one value per structure computed across images (L,), in
            table-row order.
        image_columns: extra per-image columns of the per-image table, name -> (N, L) (e.g. ``unc_sum``).
        reliability: pooled reliability data ``(confidence, frequency, counts)``, each (L, M), or None.
        notes: metric -> sentence explaining it in the Markdown summary (beyond its fixed introduction).
        min_images: metric across images -> the fewest images it is shown for (:meth:`too_small`); others: 1.
    """

    structures: list[str]
    ids: list[str]
    values: dict[str, np.ndarray]
    image_columns: dict[str, np.ndarray] = field(default_factory=dict)
    reliability: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    notes: dict[str, str] = field(default_factory=dict)
    min_images: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, n_struct = len(self.ids), len(self.structures)
        self.values = {m: np.asarray(v, dtype=np.float64) for m, v in self.values.items()}
        self.image_columns = {c: np.asarray(v, dtype=np.float64) for c, v in self.image_columns.items()}
        for name, v in {**self.values, **self.image_columns}.items():
            if v.shape not in ((n, n_struct), (n_struct,)) or (name in self.image_columns and v.ndim != 2):
                raise ValueError(f"{name}: expected ({n}, {n_struct}) per image or ({n_struct},), got {v.shape}.")

    @property
    def num_images(self) -> int:
        """Number of images N."""
        return len(self.ids)

    @property
    def metrics(self) -> list[str]:
        """The metric names, in table-row order."""
        return list(self.values)

    def is_per_image(self, metric: str) -> bool:
        """Whether ``metric`` has one value per image (else one value across images)."""
        return self.values[metric].ndim == 2

    def too_small(self, metric: str) -> bool:
        """Whether ``metric`` is computed across fewer images than its minimum (shown as "n too small")."""
        return not self.is_per_image(metric) and self.num_images < self.min_images.get(metric, 1)

    def by_structure(self) -> dict[str, dict[str, float | list[float]]]:
        """``{structure: {metric: value across images (float) or per-image values (list)}}``."""
        out: dict[str, dict[str, float | list[float]]] = {}
        for i, s in enumerate(self.structures):
            out[s] = {m: (v[:, i].tolist() if v.ndim == 2 else float(v[i])) for m, v in self.values.items()}
        return out

    def statistics(self) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
        """``(mean, std)``, each ``{structure: {metric: float}}``.

        Per-image metrics: mean and population std of the finite values (:func:`finite_mean_std`); metrics across
        images: the value and NaN.
        """
        means: dict[str, dict[str, float]] = {s: {} for s in self.structures}
        stds: dict[str, dict[str, float]] = {s: {} for s in self.structures}
        for m, v in self.values.items():
            for i, s in enumerate(self.structures):
                if v.ndim == 2:
                    means[s][m], stds[s][m], _ = finite_mean_std(v[:, i].tolist())
                else:
                    means[s][m], stds[s][m] = float(v[i]), float("nan")
        return means, stds

    def per_image_rows(self) -> list[dict[str, Any]]:
        """Rows of the per-image table: ``id``, then per structure the image columns and the per-image metrics."""
        per_image = {m: v for m, v in self.values.items() if v.ndim == 2}
        columns = {**self.image_columns, **per_image}
        rows = []
        for n, case_id in enumerate(self.ids):
            row: dict[str, Any] = {"id": case_id}
            for i, s in enumerate(self.structures):
                row.update({f"{c}_{s}": float(v[n, i]) for c, v in columns.items()})
            rows.append(row)
        return rows


def evaluation_markdown(summary: EvaluationSummary, title: str) -> str:
    """The Markdown summary: title, explanation and the table (``mean ± std`` or the single value per cell)."""
    rows = []
    for m, v in summary.values.items():
        row: dict[str, object] = {"metric": m}
        for i, s in enumerate(summary.structures):
            if summary.too_small(m):
                row[s] = too_small_cell(summary.num_images, summary.min_images[m])
            else:
                row[s] = mean_std(v[:, i].tolist()) if v.ndim == 2 else f"{float(v[i]):.3f}"
        rows.append(row)
    notes = "".join(f" {m}: {summary.notes[m]}." for m in summary.metrics if summary.notes.get(m))
    table = markdown_table(rows, ["metric", *summary.structures])
    return f"# {title}\n\n{summary.num_images} images. {_INTRO}{notes}\n\n{table}"


def write_case_maps(maps: Sequence[Mapping[str, Any]], folder: str | Path) -> list[Path]:
    """Write every case's maps to ``<folder>/<id>.npz`` (compressed); returns the paths.

    Args:
        maps: one mapping per case with ``id`` and its arrays (e.g. ``prob``, ``unc``, ``soft_label``,
            ``rater_var`` (L, H, W), ``image`` (C, H, W), ``raters`` (R, L, H, W), ``slice``), as kept by
            :meth:`monai_lexu.handlers.UncertaintyReport.keep_maps`.
        folder: output folder, created when there is at least one case.
    """
    folder = Path(folder)
    paths = []
    for record in maps:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{record['id']}.npz"
        np.savez_compressed(path, **record)
        paths.append(path)
    return paths


def write_evaluation(
    summary: EvaluationSummary,
    output_dir: str | Path,
    prefix: str = "metrics",
    title: str = "Uncertainty and segmentation metrics",
    maps: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Path]:
    """Write the evaluation files (see the module docstring) into ``output_dir``.

    Args:
        summary: the aggregated numbers.
        output_dir: destination folder (created).
        prefix: file name prefix.
        title: heading of the Markdown file (and of the reliability diagram).
        maps: case maps for ``<prefix>_maps/`` (see :func:`write_case_maps`).

    Returns:
        The written paths by kind: ``summary_md``, ``summary_csv``, ``per_image_csv``, ``json``,
        ``reliability_png`` when the summary has reliability data and ``case_png`` when a kept case is a slice of a
        volume.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    means, stds = summary.statistics()
    nan = float("nan")
    paths = {
        "summary_md": write_markdown(output_dir / f"{prefix}_summary.md", evaluation_markdown(summary, title)),
        "summary_csv": write_csv(
            output_dir / f"{prefix}_summary.csv",
            [
                {"metric": m, **{s: nan if summary.too_small(m) else means[s][m] for s in summary.structures}}
                for m in summary.metrics
            ],
        ),
        "per_image_csv": write_csv(output_dir / f"{prefix}_per_image.csv", summary.per_image_rows()),
    }
    if summary.reliability is not None:
        paths["reliability_png"] = plot_reliability_diagram(
            *summary.reliability,
            summary.structures,
            output_dir / f"{prefix}_reliability.png",
            title=f"{title}: reliability against the soft label",
        )
    by_structure = summary.by_structure()
    per_image = {s: {m: v for m, v in values.items() if isinstance(v, list)} for s, values in by_structure.items()}
    small = [m for m in summary.metrics if summary.too_small(m)]
    for table in (means, stds):
        for s in summary.structures:
            table[s].update({m: None for m in small})  # type: ignore[misc]
    result: dict[str, Any] = {"num_images": summary.num_images, "mean": means, "std": stds, "per_image": per_image}
    if small:
        result["n_too_small"] = {m: {"n": summary.num_images, "min": summary.min_images[m]} for m in small}
    paths["json"] = output_dir / f"{prefix}.json"
    paths["json"].write_text(json.dumps(result, indent=2))
    write_case_maps(maps, output_dir / f"{prefix}_maps")
    volume_maps = [m for m in maps if int(m.get("slice", -1)) >= 0]
    if volume_maps:  # a picture of the first volume: CT/PET, raters, probability, uncertainty
        first = volume_maps[0]
        paths["case_png"] = plot_case(first, output_dir / f"{prefix}_case_{first['id']}.png", summary.structures, title)
    return paths
