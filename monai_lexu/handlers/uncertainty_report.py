"""An ignite handler that evaluates probability/uncertainty maps against the raters and writes the paper's table."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ignite.distributed as idist
import torch
from monai.metrics.metric import CumulativeIterationMetric
from monai.utils import evenly_divisible_all_gather, string_list_all_gather

from monai_lexu.handlers.output_transforms import lookup_key
from monai_lexu.metrics.calibration import CalibrationMetric
from monai_lexu.metrics.registry import (
    ACROSS_IMAGES,
    DERIVED_INPUTS,
    REPORT_METRICS,
    ReportMetric,
    report_metric_names,
    source_inputs,
)
from monai_lexu.report.evaluation import EvaluationSummary, evaluation_markdown, write_evaluation

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["UncertaintyReport"]

logger = logging.getLogger("monai_lexu")

_ID_DELIMITER = "\x1f"  # ASCII unit separator: joins the case ids gathered across ranks


class UncertaintyReport:
    """Evaluate every image's probability and uncertainty maps and write the per-structure table of the LEXU paper.

    The report owns one cumulative metric per column of :data:`monai_lexu.metrics.registry.REPORT_METRICS` and feeds
    it every image: the sums of the uncertainty and rater-variance maps (SR and DC across images), the pixel-level
    NCC between the two maps, the soft Dice of the probability against the soft label, the binary NLL, Jungo's
    weighted mean entropy (WME, predictive entropy weighted by the raters' entropy; NaN and left out for an image
    without disagreement), mean entropy (ME) and pooled calibration data (the ECE row; see :mod:`monai_lexu.metrics`
    for each exact definition). With ``ground_truth_key`` (data with a known true mask, e.g. the Jungo synthetic
    set) it also records ``Dice_gt``: the Dice of ``prob >= 0.5`` against that mask (MONAI ``DiceMetric`` with
    ``ignore_empty=False``: two empty masks give 1), Jungo's Table 1 Dice. SR and DC over fewer than
    :data:`~monai_lexu.metrics.correlation.MIN_CASES_FOR_CORRELATION` (5) images are NaN, shown as "n too small" in the
    tables and null (with the number of images) in the JSON. ``band/core`` is the mean uncertainty in the raters'
    disagreement band over that in their core (:func:`~monai_lexu.metrics.band_core.band_core_ratio`).

    The summary (:meth:`summary`) is read from the metrics' buffers, which MONAI's ``Cumulative`` gathers across DDP
    ranks, so every rank gets the summary over all images (rank 0's images first, then rank 1's, ...); the case ids
    are gathered the same way. When the engine completes, rank 0 writes (:func:`monai_lexu.report.write_evaluation`)
    ``<prefix>_summary.csv``/``.md``, ``<prefix>_per_image.csv``, ``<prefix>.json`` (per structure and metric:
    ``mean``, ``std`` over images, and the per-image values) and ``<prefix>_reliability.png`` in ``output_dir`` and
    logs the Markdown table; every rank puts the means into ``engine.state.metrics`` (e.g. ``SR_cup``). With
    ``save_maps > 0`` the first ``save_maps`` images' maps are kept (:meth:`keep_maps`) and written to
    ``<prefix>_maps/<id>.npz`` (under DDP: rank 0's first images). Every rank must evaluate at least one image
    (as MONAI's ``Cumulative`` buffers need; ``DistributedSampler`` guarantees it).

    Args:
        structures: names of the L structure channels, e.g. ``["disc", "cup"]``.
        output_dir: where the tables go.
        prob_key: key of the probability maps (L, *S) in the (post-processed, decollated) output.
        unc_key: key of the uncertainty maps (L, *S).
        soft_label_key: key of the soft label (L, *S) (looked up in the output, its ``label`` dict, then the batch).
        var_key: key of the rater variance map (L, *S).
        id_key: key of the case id in the batch (when absent, the image's position in the gathered list).
        prefix: file name prefix.
        title: heading of the Markdown file.
        calibration_bins: equal-width bins of the pooled reliability diagram (``<prefix>_reliability.png``) and of
            the pooled ECE row (mean |confidence - observed frequency| weighted by pixel count, against the soft
            label; see :func:`monai_lexu.metrics.pooled_expected_calibration_error`).
        ground_truth_key: key of a true mask ``(L, *S)`` (output, its ``label`` dict, or batch); ``None``: no Dice_gt.
        save_maps: number of images (the first ones seen) whose maps are written to ``<prefix>_maps/<id>.npz``.
        image_key: key of the network input ``(C, *S)`` saved with the maps.
        raters_key: key of the rater masks ``(R, L, *S)`` saved with the maps (``rater_valid`` selects the valid).
        metrics: the report's columns (names in ``REPORT_METRICS``), in table order; ``None``: every registered
            column whose inputs the report has (``Dice_gt`` only with ``ground_truth_key``).
    """

    def __init__(
        self,
        structures: Sequence[str],
        output_dir: str | Path,
        prob_key: str = "prob",
        unc_key: str = "unc",
        soft_label_key: str = "soft_label",
        var_key: str = "rater_var",
        id_key: str = "id",
        prefix: str = "metrics",
        title: str = "Uncertainty and segmentation metrics",
        calibration_bins: int = 10,
        ground_truth_key: str | None = None,
        save_maps: int = 0,
        image_key: str = "image",
        raters_key: str = "raters",
        metrics: Sequence[str] | None = None,
    ) -> None:
        self.structures = list(structures)
        self.output_dir = Path(output_dir)
        self.keys = {"prob": prob_key, "unc": unc_key, "soft_label": soft_label_key, "rater_var": var_key}
        if ground_truth_key:
            self.keys["ground_truth"] = ground_truth_key
        self.id_key = id_key
        self.prefix, self.title = prefix, title
        self.calibration_bins = calibration_bins
        self.ground_truth_key = ground_truth_key
        self.save_maps, self.image_key, self.raters_key = int(save_maps), image_key, raters_key
        self.metrics = tuple(report_metric_names(set(self.keys)) if metrics is None else metrics)
        for name in self.metrics:
            if name not in REPORT_METRICS:
                raise ValueError(f"unknown report metric {name!r}; registered: {list(REPORT_METRICS)}")
            missing = set(source_inputs(REPORT_METRICS[name].inputs)) - set(self.keys)
            if missing:
                raise ValueError(f"report metric {name!r} needs {sorted(missing)} (e.g. set ground_truth_key)")
        self.specs: dict[str, ReportMetric] = {name: REPORT_METRICS[name] for name in self.metrics}
        settings = {"calibration_bins": calibration_bins}
        self.metric_fns: dict[str, CumulativeIterationMetric] = {
            name: spec.factory(settings) for name, spec in self.specs.items()
        }
        self.derived = sorted({k for spec in self.specs.values() for k in spec.inputs if k in DERIVED_INPUTS})
        self.reset()

    def reset(self) -> None:
        """Forget every recorded image."""
        for metric in self.metric_fns.values():
            metric.reset()
        self.ids: list[str | None] = []  # this rank's case ids (None: no id, numbered by position)
        self.maps: list[dict[str, Any]] = []

    def attach(self, engine: Engine) -> None:
        """Reset at every epoch start, record every iteration, summarise and write when the engine completes."""
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_STARTED, lambda _: self.reset())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.iteration_completed)
        engine.add_event_handler(Events.COMPLETED, self.completed)

    def __call__(self, engine: Engine) -> None:
        self.iteration_completed(engine)

    def add(
        self,
        prob: torch.Tensor,
        unc: torch.Tensor,
        soft_label: torch.Tensor,
        rater_var: torch.Tensor,
        case_id: str | int | None = None,
        ground_truth: torch.Tensor | None = None,
    ) -> str:
        """Record one image: feed every metric.

        Args:
            prob: probability maps (L, *S).
            unc: uncertainty maps (L, *S).
            soft_label: mean of the valid raters (L, *S).
            rater_var: variance of the valid raters (L, *S).
            case_id: identifier written to the per-image table (None: the image's position).
            ground_truth: true mask (L, *S) for ``Dice_gt`` (required when ``ground_truth_key`` is set).

        Returns:
            The id under which the image is recorded on this rank.
        """
        maps = {"prob": prob, "unc": unc, "soft_label": soft_label, "rater_var": rater_var}
        if self.ground_truth_key:
            if ground_truth is None:
                raise ValueError(f"case {case_id}: no ground truth under {self.ground_truth_key!r} for Dice_gt")
            maps["ground_truth"] = ground_truth
        # (1, L, *S) float32 on the CPU: the buffers are gathered across ranks and every metric sees the same input
        inputs = {k: torch.as_tensor(t).detach().float().cpu()[None] for k, t in maps.items()}
        p, u, s, v = (inputs[k] for k in ("prob", "unc", "soft_label", "rater_var"))
        if not (p.shape == u.shape == s.shape == v.shape) or p.shape[1] != len(self.structures):
            raise ValueError(
                f"case {case_id}: prob {tuple(p.shape[1:])}, unc {tuple(u.shape[1:])}, soft label {tuple(s.shape[1:])} "
                f"and rater variance {tuple(v.shape[1:])} must all be (L={len(self.structures)}, *S)"
            )
        if "ground_truth" in inputs and inputs["ground_truth"].shape != p.shape:
            g = inputs["ground_truth"]
            raise ValueError(f"case {case_id}: ground truth {tuple(g.shape[1:])} != prob {tuple(p.shape[1:])}")
        if self.derived:
            from monai_lexu.metrics.entropy import entropy_map

            for key in self.derived:  # once per image, shared by the metrics that take them (WME, ME)
                source = DERIVED_INPUTS[key]
                inputs[key] = entropy_map(inputs[source], name=f"{source} of case {case_id}")
        for name, metric in self.metric_fns.items():
            spec = self.specs[name]
            args = tuple(inputs[k] for k in spec.inputs)
            metric(*(spec.prepare(*args) if spec.prepare else args))
        self.ids.append(None if case_id is None else str(case_id))
        return str(len(self.ids) - 1) if case_id is None else str(case_id)

    def iteration_completed(self, engine: Engine) -> None:
        """Record every image of the iteration's (decollated) output."""
        outputs = engine.state.output if isinstance(engine.state.output, list) else [engine.state.output]
        batches = engine.state.batch if isinstance(engine.state.batch, list) else [None] * len(outputs)
        for out, batch in zip(outputs, batches):
            try:
                case_id = lookup_key(self.id_key, out, batch)
            except KeyError:
                case_id = None
            recorded = self.add(
                lookup_key(self.keys["prob"], out, batch),
                lookup_key(self.keys["unc"], out, batch),
                lookup_key(self.keys["soft_label"], out, batch),
                lookup_key(self.keys["rater_var"], out, batch),
                case_id=case_id if isinstance(case_id, (str, int)) else None,
                ground_truth=lookup_key(self.ground_truth_key, out, batch) if self.ground_truth_key else None,
            )
            if len(self.maps) < self.save_maps:
                self.keep_maps(out, batch, recorded)

    def keep_maps(self, output: Any, batch: Any, case_id: Any) -> None:
        """Keep one image's maps for figures (2D as they are; 3D: one axial slice, see below).

        3D: the axial slice (last axis) whose smallest per-structure rater-variance sum is largest, i.e. the slice
        that cuts the disagreement band of EVERY structure most (e.g. the primary and a node); when no slice cuts
        all of them, the slice with the largest total rater variance.

        Stored as float32 numpy arrays: ``image`` (C, H, W), ``raters`` (R_valid, L, H, W), ``prob``, ``unc``,
        ``soft_label``, ``rater_var`` (L, H, W), plus ``id`` and ``slice`` (the slice index along the last axis
        for 3D, -1 for 2D); ``heads`` (K, L, H, W) when the output has them (the evaluation's ``keep_head_maps``
        opt-in: :class:`monai_lexu.inferers.KeepHeadsInferer`). Missing image/raters/heads are simply not stored.
        """
        import numpy as np

        keys = {k: self.keys[k] for k in ("prob", "unc", "soft_label", "rater_var")}
        maps = {k: torch.as_tensor(lookup_key(v, output, batch)).detach().float().cpu() for k, v in keys.items()}
        for name, key in (("image", self.image_key), ("raters", self.raters_key), ("heads", "heads")):
            try:
                maps[name] = torch.as_tensor(lookup_key(key, output, batch)).detach().float().cpu()
            except KeyError:
                pass
        if "raters" in maps:
            try:
                valid = torch.as_tensor(lookup_key("rater_valid", output, batch)).bool().cpu()
                maps["raters"] = maps["raters"][valid]
            except KeyError:
                pass
        index = -1
        if maps["prob"].ndim == 4:  # (L, H, W, D): the axial slice through every structure's disagreement band
            per_slice = maps["rater_var"].sum(dim=(1, 2))  # (L, D)
            both = per_slice.min(dim=0).values
            index = int((both if both.max() > 0 else per_slice.sum(0)).argmax())
            maps = {k: v[..., index] for k, v in maps.items()}
        record = {k: v.numpy().astype(np.float32) for k, v in maps.items()}
        record.update(id=str(case_id), slice=index)
        self.maps.append(record)

    def _gathered_ids(self) -> list[str]:
        """Every rank's case ids in rank order (a collective call); images without id get their position."""
        counts = evenly_divisible_all_gather(torch.tensor([len(self.ids)]), concat=True).tolist()
        if sum(counts) == 0:
            raise RuntimeError("UncertaintyReport saw no image: is the evaluation data loader empty?")
        if min(counts) == 0:
            empty = [r for r, c in enumerate(counts) if c == 0]
            raise RuntimeError(
                f"UncertaintyReport: rank(s) {empty} saw no image; every rank must evaluate at least one (images per "
                f"rank: {counts}) for the metric buffers to be gathered."
            )
        local = ["" if i is None else i for i in self.ids]
        ids = string_list_all_gather(local, delimiter=_ID_DELIMITER)
        if len(ids) != sum(counts):
            raise RuntimeError(
                f"UncertaintyReport: gathered {len(ids)} ids for {sum(counts)} images (an id holds "
                "the ASCII unit separator?)"
            )
        return [i if i else str(n) for n, i in enumerate(ids)]

    def summary(self) -> EvaluationSummary:
        """Aggregate every metric over all images seen by all ranks (a collective call under DDP).

        Returns:
            :class:`monai_lexu.report.EvaluationSummary`: per-image values (N, L) of the per-image metrics, one value
            per structure (L,) of the metrics across images, the per-image sums behind SR/DC, the pooled reliability
            data and the case ids.
        """
        ids = self._gathered_ids()
        values: dict[str, torch.Tensor] = {}
        columns: dict[str, torch.Tensor] = {}
        for name, metric in self.metric_fns.items():
            spec = self.specs[name]
            for column, data in (spec.image_columns(metric) if spec.image_columns else {}).items():
                columns.setdefault(column, data)
            if spec.scope == ACROSS_IMAGES:
                if len(ids) < spec.min_images:
                    values[name] = torch.full((len(self.structures),), float("nan"))
                else:
                    values[name] = spec.aggregate(metric) if spec.aggregate else metric.aggregate()
            else:
                data = metric.get_buffer()
                values[name] = data[0] if isinstance(data, list) else data
        calibration = next((m for m in self.metric_fns.values() if isinstance(m, CalibrationMetric)), None)
        reliability = None
        if calibration is not None:
            curve = calibration.reliability()
            reliability = (curve.confidence.numpy(), curve.frequency.numpy(), curve.counts.numpy())
        return EvaluationSummary(
            structures=self.structures,
            ids=ids,
            values={k: v.detach().cpu().double().numpy() for k, v in values.items()},
            image_columns={k: v.detach().cpu().double().numpy() for k, v in columns.items()},
            reliability=reliability,
            notes={name: spec.description for name, spec in self.specs.items() if spec.description},
            min_images={name: spec.min_images for name, spec in self.specs.items() if spec.scope == ACROSS_IMAGES},
        )

    def completed(self, engine: Engine | None = None) -> dict[str, dict[str, float]]:
        """Summarise (every rank), write the files and log the table (rank 0).

        Args:
            engine: the engine whose ``state.metrics`` receive ``<metric>_<structure>`` means, or None.

        Returns:
            ``{structure: {metric: mean}}`` (the value itself for metrics across images).
        """
        summary = self.summary()
        means, _ = summary.statistics()
        if idist.get_rank() == 0:
            write_evaluation(summary, self.output_dir, self.prefix, self.title, maps=self.maps)
            logger.info("\n%s", evaluation_markdown(summary, self.title))
        if engine is not None:
            for s in self.structures:
                for m in self.metrics:
                    engine.state.metrics[f"{m}_{s}"] = means[s][m]
        return means
