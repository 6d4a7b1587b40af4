"""Calibration against soft (multi-rater) labels: expected calibration error and reliability-diagram data.

Both are built on MONAI's equal-width binning (:func:`monai.metrics.calibration_binning`,
:class:`monai.metrics.CalibrationErrorMetric`; bins ``[k/M, (k+1)/M)``, the last one closed at 1).

Soft targets: the observed frequency of a bin is the mean of the target over the pixels in the bin. With the soft
label (fraction of valid raters marking the pixel) as target this is the frequency with which a rater marks a pixel
of that confidence, i.e. the same number as pooling every valid rater's binary mask as a separate sample with the
same prediction, each pixel weighted equally (within an image every pixel has the same raters, so this is exact;
across images with different rater counts each pixel, not each rater vote, has weight 1). MONAI's metric accepts
such non-binary targets unchanged (it only averages them). ``target_threshold=t`` instead binarises the target as
``1[y > t]`` first (``t = 0.5``: strict majority of the raters), for an ECE against a fused hard label.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
from monai.metrics import CalibrationErrorMetric, calibration_binning
from monai.utils import MetricReduction

from monai_lexu.metrics.utils import PerImageMetric, as_float_tensor, check_same_shape

__all__ = [
    "ReliabilityCurve",
    "expected_calibration_error",
    "pooled_expected_calibration_error",
    "reliability_curve",
    "CalibrationMetric",
    "bin_statistics",
]


def pooled_expected_calibration_error(
    sum_confidence: torch.Tensor, sum_frequency: torch.Tensor, counts: torch.Tensor
) -> torch.Tensor:
    """Expected calibration error of pooled bin statistics: THE pooled ECE of this package.

    Definition: with, per bin b, ``n_b`` pixels, the sum of their confidences ``C_b = n_b conf_b`` and the sum of
    their targets ``F_b = n_b freq_b`` (pooled over every pixel of every image), ``ECE = sum_b |C_b - F_b| /
    sum_b n_b``, i.e. ``sum_b n_b |conf_b - freq_b| / sum_b n_b``: the mean |confidence - observed frequency|
    weighted by pixel count. An empty bin (``n_b = 0``, so ``C_b = F_b = 0``) contributes nothing. Unlike a mean of
    per-image ECEs, this weights every pixel equally (large images count more).

    Empty policy: no pixel in any bin (``sum_b n_b = 0``) -> NaN (the error of nothing is undefined, not 0).

    Used by :meth:`ReliabilityCurve.expected_calibration_error`, :meth:`CalibrationMetric.pooled_ece` (and through
    it the ``ECE`` row of :class:`monai_lexu.handlers.UncertaintyReport`) and the reliability diagram's titles.

    Args:
        sum_confidence: sum of the predicted probabilities per bin (..., M); 0 for an empty bin.
        sum_frequency: sum of the targets (soft label) per bin (..., M); 0 for an empty bin.
        counts: number of pixels per bin (..., M).

    Returns:
        float tensor (...,) in [0, 1], NaN where every bin is empty (e.g. (L,) for (L, M) inputs).
    """
    sum_confidence, sum_frequency, counts = (torch.as_tensor(t) for t in (sum_confidence, sum_frequency, counts))
    if not sum_confidence.shape == sum_frequency.shape == counts.shape:
        raise ValueError(
            f"sum_confidence {tuple(sum_confidence.shape)}, sum_frequency {tuple(sum_frequency.shape)} and counts "
            f"{tuple(counts.shape)} must have the same shape (..., M)."
        )
    total = counts.sum(-1)
    ece = (sum_confidence - sum_frequency).abs().sum(-1) / total.clamp_min(1)
    return torch.where(total > 0, ece, torch.full_like(ece, float("nan")))


class ReliabilityCurve(NamedTuple):
    """Data of a reliability diagram, per structure.

    Attributes:
        confidence: mean predicted probability per bin (L, M); NaN for an empty bin.
        frequency: observed frequency per bin (L, M) = mean target (soft label) in the bin; NaN for an empty bin.
        counts: number of pixels per bin (L, M).
        bin_edges: the M + 1 bin edges in [0, 1].
    """

    confidence: torch.Tensor
    frequency: torch.Tensor
    counts: torch.Tensor
    bin_edges: torch.Tensor

    def expected_calibration_error(self) -> torch.Tensor:
        """Pooled ECE of the curve (:func:`pooled_expected_calibration_error`), (L,); NaN without any pixel."""
        return pooled_expected_calibration_error(*self.bin_sums())

    def bin_sums(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per bin: sum of confidences, sum of targets, counts, each (L, M) (0 for an empty bin)."""
        sum_conf = torch.nan_to_num(self.confidence, nan=0.0) * self.counts
        sum_freq = torch.nan_to_num(self.frequency, nan=0.0) * self.counts
        return sum_conf, sum_freq, self.counts


def _prepare(y_pred: Any, y: Any, target_threshold: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    p, g = as_float_tensor(y_pred, "y_pred", torch.float32), as_float_tensor(y, "y", torch.float32)
    check_same_shape(p, g)
    g = g.to(p.device)
    for t, name in ((p, "y_pred"), (g, "y")):
        if not t.numel():
            continue
        lo, hi = (float(v) for v in torch.aminmax(t))  # one pass; NaN anywhere makes them NaN
        if math.isnan(lo) or math.isnan(hi):
            raise ValueError(f"`{name}` contains NaN; calibration binning needs finite values.")
        if lo < 0 or hi > 1:
            raise ValueError(f"`{name}` must hold values in [0, 1] for calibration, got [{lo:.4g}, {hi:.4g}].")
    if target_threshold is not None:
        g = (g > target_threshold).float()
    return p, g


def bin_statistics(p: torch.Tensor, g: torch.Tensor, num_bins: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per (image, structure) and bin: pixel count, sum of probabilities, sum of targets, in ONE pass.

    The bins of MONAI's :func:`~monai.metrics.calibration_binning` (``torch.bucketize`` on its boundaries
    ``linspace(0, 1 + eps32, M + 1)[1:]``, clamped to the last bin; found here without the bucketize), so every
    pixel lands in the same bin (tested, boundaries included); the sums
    are accumulated in float64 (``torch.bincount`` with weights) where MONAI accumulates float32 means.

    Args:
        p: probabilities (B, L, *S), float32, in [0, 1].
        g: targets (B, L, *S), same shape.
        num_bins: number of bins M.

    Returns:
        ``(counts, sum_p, sum_g)``, each float64 (B, L, M).
    """
    rows = p.shape[0] * p.shape[1]
    boundaries = torch.linspace(0.0, 1.0 + torch.finfo(torch.float32).eps, num_bins + 1, device=p.device)
    pf = p.reshape(rows, -1)
    # torch.bucketize(pf, boundaries[1:]) (the number of boundaries b_k, k >= 1, below p) costs 50 ns per pixel on
    # CPU; floor(p M) is that bin except within rounding of a boundary (b_k is k / M to a few float32 ulps): only
    # those pixels go through bucketize
    scaled = pf * num_bins
    idx = scaled.floor()
    near = (scaled - idx < 1e-4) | (scaled - idx > 1 - 1e-4)
    idx = idx.long().clamp_(0, num_bins - 1)
    if bool(near.any()):
        idx[near] = torch.bucketize(pf[near], boundaries[1:], right=False).clamp_(max=num_bins - 1)
    idx += torch.arange(rows, device=p.device)[:, None] * num_bins
    idx = idx.flatten()
    size = rows * num_bins
    counts = torch.bincount(idx, minlength=size).double()
    # float64 weights: bincount accumulates in the weights' dtype, sequentially (float32 weights gave per-bin sums
    # off by up to ~1e-5 relative for a bin of 65536 pixels); the same cost on CPU
    sum_p = torch.bincount(idx, weights=pf.flatten().double(), minlength=size)
    sum_g = torch.bincount(idx, weights=g.reshape(rows, -1).flatten().double(), minlength=size)
    shape = (p.shape[0], p.shape[1], num_bins)
    return counts.reshape(shape), sum_p.double().reshape(shape), sum_g.double().reshape(shape)


def expected_calibration_error(
    y_pred: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    num_bins: int = 20,
    target_threshold: float | None = None,
    calibration_reduction: str = "expected",
) -> torch.Tensor:
    """Expected calibration error per image and structure, via MONAI's :class:`~monai.metrics.CalibrationErrorMetric`.

    Definition: equal-width bins over [0, 1]; ``ECE = sum_bins n_b |conf_b - freq_b| / sum_bins n_b`` with
    ``conf_b`` the mean probability and ``freq_b`` the mean target of the pixels in bin b, per (image, structure).
    ``calibration_reduction="average"`` gives the unweighted mean over non-empty bins (ValUES' "ACE") and
    ``"maximum"`` the MCE. The target is the soft label (see the module docstring: equivalent to pooling all
    raters) unless ``target_threshold`` binarises it.

    Default of 20 bins: MONAI's default and the ValUES setting (the LEXU paper reports no calibration error).
    Unlike ValUES, no Platt scaling of an uncertainty score is done: the model's probability map is the confidence.

    Degenerate inputs: NaN in either map raises ValueError (it cannot be binned); a constant prediction simply
    fills one bin.

    Args:
        y_pred: predicted probabilities (B, L, *S).
        y: soft label (B, L, *S) in [0, 1] (or binary).
        num_bins: number of equal-width bins.
        target_threshold: if given, use ``1[y > target_threshold]`` as the target.
        calibration_reduction: ``"expected"``, ``"average"`` or ``"maximum"``.

    Returns:
        float32 tensor (B, L).
    """
    p, g = _prepare(y_pred, y, target_threshold)
    metric = CalibrationErrorMetric(num_bins=num_bins, calibration_reduction=calibration_reduction)
    return metric(y_pred=p, y=g).float()  # type: ignore[union-attr]


def reliability_curve(
    y_pred: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    num_bins: int = 10,
    target_threshold: float | None = None,
) -> ReliabilityCurve:
    """Reliability-diagram data per structure, pooling all pixels of all images given.

    Args:
        y_pred: predicted probabilities (B, L, *S).
        y: soft label (B, L, *S) in [0, 1]; the observed frequency of a bin is its mean soft label.
        num_bins: number of equal-width bins.
        target_threshold: if given, use ``1[y > target_threshold]`` as the target.

    Returns:
        :class:`ReliabilityCurve` with (L, num_bins) tensors.
    """
    p, g = _prepare(y_pred, y, target_threshold)
    n_struct = p.shape[1]
    p1 = p.transpose(0, 1).reshape(1, n_struct, -1)
    g1 = g.transpose(0, 1).reshape(1, n_struct, -1)
    conf, freq, counts = calibration_binning(p1, g1, num_bins=num_bins)
    return ReliabilityCurve(conf[0], freq[0], counts[0], torch.linspace(0.0, 1.0, num_bins + 1))


class CalibrationMetric(PerImageMetric):
    """Cumulative calibration: per-image ECE (aggregated over images) plus pooled reliability-diagram data.

    ``aggregate()`` reduces the per-image :func:`expected_calibration_error` values (default: mean over images per
    structure, (L,)); :meth:`reliability` returns the :class:`ReliabilityCurve` pooled over every pixel seen and
    :meth:`pooled_ece` its pooled ECE (:func:`pooled_expected_calibration_error`, which weights images by their
    size). Like every buffer of a MONAI ``Cumulative``, the pooled data are gathered across DDP ranks. Calling the
    metric returns ``[ece (B, L), counts, sum_conf, sum_target]`` (the last three (B, L, num_bins)), all buffered.

    Args:
        num_bins: number of equal-width bins (for both outputs).
        target_threshold: see :func:`expected_calibration_error`.
        calibration_reduction: ``"expected"``, ``"average"`` or ``"maximum"``.
        reduction: MONAI reduction of the (N, L) per-image ECE values, default ``"mean_batch"`` -> (L,).
        get_not_nans: return ``(metric, not_nans)`` from ``aggregate()``.
    """

    def __init__(
        self,
        num_bins: int = 20,
        target_threshold: float | None = None,
        calibration_reduction: str = "expected",
        reduction: MetricReduction | str = MetricReduction.MEAN_BATCH,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(reduction=reduction, get_not_nans=get_not_nans)
        self.num_bins = num_bins
        self.target_threshold = target_threshold
        self.calibration_reduction = calibration_reduction

    def _compute_tensor(  # type: ignore[override]
        self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any
    ) -> list[torch.Tensor]:
        """Per-image ECE (B, L) and per-image bin statistics (B, L, num_bins) of one iteration."""
        if y is None:
            raise ValueError("CalibrationMetric needs `y` (soft label).")
        p, g = _prepare(y_pred, y, self.target_threshold)
        counts, sum_conf, sum_target = bin_statistics(p, g, self.num_bins)
        if self.calibration_reduction == "expected":  # = MONAI's sum_b n_b |conf_b - freq_b| / sum_b n_b, in float64
            total = counts.sum(-1)
            ece = (sum_conf - sum_target).abs().sum(-1) / total.clamp_min(1)
            ece = torch.where(total > 0, ece, torch.full_like(ece, float("nan"))).float()
        else:
            ece = expected_calibration_error(
                p, g, num_bins=self.num_bins, calibration_reduction=self.calibration_reduction
            )
        # buffered as float32, as MONAI's bins were (the pooled curve and ECE keep their dtype)
        return [ece, counts.float(), sum_conf.float(), sum_target.float()]

    def bin_sums(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Bin statistics pooled over all images seen (gathered across DDP ranks).

        Returns:
            ``(sum_confidence, sum_target, counts)``, each (L, num_bins).
        """
        data = self.get_buffer()
        if data is None:
            raise ValueError("CalibrationMetric: pooled bins asked for before any data was added.")
        return data[2].sum(0), data[3].sum(0), data[1].sum(0)

    def pooled_ece(self) -> torch.Tensor:
        """Pooled ECE over every pixel seen (:func:`pooled_expected_calibration_error`), (L,).

        Not the same number as ``aggregate()`` (the mean of per-image ECEs): pooling weights images by their size.
        """
        return pooled_expected_calibration_error(*self.bin_sums())

    def reliability(self) -> ReliabilityCurve:
        """Reliability-diagram data pooled over all images seen, (L, num_bins) tensors."""
        sum_conf, sum_target, counts = self.bin_sums()
        safe = counts.clamp_min(1)
        nan = torch.full_like(counts, float("nan"))
        conf = torch.where(counts > 0, sum_conf / safe, nan)
        freq = torch.where(counts > 0, sum_target / safe, nan)
        return ReliabilityCurve(conf, freq, counts, torch.linspace(0.0, 1.0, self.num_bins + 1))
