"""The evaluation report's metrics: report column name -> cumulative metric, the inputs it takes and its scope.

:class:`monai_lexu.handlers.UncertaintyReport` builds one metric object per entry of :data:`REPORT_METRICS` (in this
order: the order of the table rows), feeds it every image and reads the summary from its (DDP-gathered) buffers.
Adding a metric to the report is one functional core, one :class:`monai.metrics.CumulativeIterationMetric` class
(see :class:`monai_lexu.metrics.utils.PerImageMetric`) and one line here, e.g.::

    "Brier": ReportMetric(lambda settings: BrierScoreMetric(), ("prob", "soft_label"), description="..."),

The inputs are the report's per-image maps, each (L, *S): ``prob`` (probability), ``unc`` (uncertainty),
``soft_label`` (mean of the valid raters), ``rater_var`` (their variance) and ``ground_truth`` (a true mask; only
when the report has a ``ground_truth_key``), and the maps derived from them once per image (:data:`DERIVED_INPUTS`:
``prob_entropy``, ``soft_label_entropy``). The first input is the metric's ``y_pred``, the second its ``y``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from monai.metrics import DiceMetric
from monai.metrics.metric import CumulativeIterationMetric

from monai_lexu.metrics.band_core import BandCoreRatioMetric
from monai_lexu.metrics.calibration import CalibrationMetric
from monai_lexu.metrics.correlation import (
    MIN_CASES_FOR_CORRELATION,
    DistanceCorrelationMetric,
    NormalizedCrossCorrelationMetric,
    SpearmanCorrelationMetric,
)
from monai_lexu.metrics.entropy import MeanEntropyMetric, WeightedMeanEntropyMetric
from monai_lexu.metrics.nll import NegativeLogLikelihoodMetric
from monai_lexu.metrics.soft_dice import SoftDiceMetric

__all__ = [
    "ACROSS_IMAGES",
    "DERIVED_INPUTS",
    "PER_IMAGE",
    "REPORT_INPUTS",
    "REPORT_METRICS",
    "ReportMetric",
    "report_metric_names",
]

PER_IMAGE = "per_image"
"""Scope of a metric with one value per (image, structure): its buffer (N, L) is the column; mean/std over images."""
ACROSS_IMAGES = "across_images"
"""Scope of a metric computed once over all images (SR, DC, pooled ECE): one value per structure, (L,)."""
DERIVED_INPUTS = {"prob_entropy": "prob", "soft_label_entropy": "soft_label"}
"""Maps the report computes ONCE per image from another input (derived name -> source), for the metrics that share
them: the binary entropy (bits, :func:`monai_lexu.metrics.entropy.entropy_map`) of the probability and of the soft
label (WME uses both, ME the first)."""
REPORT_INPUTS = ("prob", "unc", "soft_label", "rater_var", "ground_truth", *DERIVED_INPUTS)
"""The per-image maps a report metric can take, each (L, *S)."""


@dataclass(frozen=True)
class ReportMetric:
    """How the report computes one column.

    Attributes:
        factory: builds the cumulative metric from the report's settings (a mapping with ``calibration_bins``).
        inputs: names (from :data:`REPORT_INPUTS`) of ``y_pred`` and, if the metric takes one, ``y``.
        scope: :data:`PER_IMAGE` (the metric's buffer is (N, L), one value per image and structure) or
            :data:`ACROSS_IMAGES` (``aggregate`` gives one value per structure over all images).
        aggregate: for :data:`ACROSS_IMAGES`, metric -> (L,) tensor; ``None``: ``metric.aggregate()``.
        min_images: for :data:`ACROSS_IMAGES`, fewer images give NaN without calling ``aggregate``, shown as
            "n too small" in the report's tables (null and the number of images in its JSON).
        image_columns: metric -> ``{column: (N, L) tensor}``, extra per-image columns of the per-image table.
        prepare: applied to the (1, L, *S) inputs before the metric (e.g. thresholding, as MONAI post-transforms).
        description: sentence added to the Markdown summary's explanation (the eight built-in rows are explained by
            its fixed introduction).
    """

    factory: Callable[[Mapping[str, Any]], CumulativeIterationMetric]
    inputs: tuple[str, ...]
    scope: str = PER_IMAGE
    aggregate: Callable[[Any], torch.Tensor] | None = None
    min_images: int = 1
    image_columns: Callable[[Any], dict[str, torch.Tensor]] | None = None
    prepare: Callable[..., tuple[torch.Tensor, ...]] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.scope not in (PER_IMAGE, ACROSS_IMAGES):
            raise ValueError(f"`scope` must be {PER_IMAGE!r} or {ACROSS_IMAGES!r}, got {self.scope!r}.")
        if not 1 <= len(self.inputs) <= 2 or any(name not in REPORT_INPUTS for name in self.inputs):
            raise ValueError(f"`inputs` must be one or two of {REPORT_INPUTS}, got {self.inputs}.")


def _image_sums(metric: Any) -> dict[str, torch.Tensor]:
    """Per-image sums of the uncertainty and of the rater variance buffered by an SR/DC metric, each (N, L)."""
    unc_sum, var_sum = metric.get_buffer()
    return {"unc_sum": unc_sum, "var_sum": var_sum}


def _binarize(prob: torch.Tensor, ground_truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``prob >= 0.5`` against ``ground_truth > 0.5``, as float masks (Jungo's Table 1 Dice)."""
    return (prob >= 0.5).float(), (ground_truth > 0.5).float()


REPORT_METRICS: dict[str, ReportMetric] = {
    "SR": ReportMetric(
        lambda _: SpearmanCorrelationMetric(),
        ("unc", "rater_var"),
        ACROSS_IMAGES,
        min_images=MIN_CASES_FOR_CORRELATION,
        image_columns=_image_sums,
    ),
    "DC": ReportMetric(
        lambda _: DistanceCorrelationMetric(),
        ("unc", "rater_var"),
        ACROSS_IMAGES,
        min_images=MIN_CASES_FOR_CORRELATION,
        image_columns=_image_sums,
    ),
    "NCC": ReportMetric(lambda _: NormalizedCrossCorrelationMetric(), ("unc", "rater_var")),
    "band/core": ReportMetric(
        lambda _: BandCoreRatioMetric(),
        ("unc", "soft_label"),
        description=(
            "mean uncertainty in the raters' disagreement band (0 < soft label < 1) divided by the mean uncertainty in "
            "their core (soft label = 1), per image; > 1: the uncertainty sits where the raters disagree; nan when "
            "the band or the core is empty"
        ),
    ),
    "soft_dice": ReportMetric(lambda _: SoftDiceMetric(), ("prob", "soft_label")),
    "NLL": ReportMetric(lambda _: NegativeLogLikelihoodMetric(), ("prob", "soft_label")),
    "WME": ReportMetric(
        lambda _: WeightedMeanEntropyMetric(pred_is_entropy=True, target_is_entropy=True),
        ("prob_entropy", "soft_label_entropy"),
    ),
    "ME": ReportMetric(lambda _: MeanEntropyMetric(pred_is_entropy=True), ("prob_entropy",)),
    "ECE": ReportMetric(
        lambda s: CalibrationMetric(num_bins=s["calibration_bins"]),
        ("prob", "soft_label"),
        ACROSS_IMAGES,
        aggregate=CalibrationMetric.pooled_ece,
    ),
    "Dice_gt": ReportMetric(
        lambda _: DiceMetric(include_background=True, reduction="mean_batch", ignore_empty=False),
        ("prob", "ground_truth"),
        prepare=_binarize,
        description="Dice of prob >= 0.5 against the true mask",
    ),
}
"""Every column the evaluation report can compute, in table-row order (see the module docstring)."""


def report_metric_names(available: set[str] | frozenset[str]) -> list[str]:
    """The registered columns whose inputs are all available, in registry order (the report's default rows).

    Args:
        available: names of the inputs the report has, a subset of :data:`REPORT_INPUTS`.
    """
    return [name for name, spec in REPORT_METRICS.items() if set(source_inputs(spec.inputs)) <= set(available)]


def source_inputs(inputs: tuple[str, ...] | list[str]) -> list[str]:
    """The report inputs behind ``inputs`` (a derived input, :data:`DERIVED_INPUTS`, stands for its source)."""
    return [DERIVED_INPUTS.get(name, name) for name in inputs]
