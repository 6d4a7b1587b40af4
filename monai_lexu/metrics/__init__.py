"""monai_lexu.metrics: uncertainty and segmentation metrics for multi-rater data.

Functional cores (one definition each, documented in their docstrings) and MONAI-style cumulative classes
(:class:`monai.metrics.CumulativeIterationMetric` subclasses).
"""

from __future__ import annotations

from monai_lexu.metrics.agreement import (
    HeadAgreementMetric,
    auroc,
    consecutive_head_agreement,
    head_agreement,
    pairwise_soft_dice,
)
from monai_lexu.metrics.band_core import BAND_CORE_TOLERANCE, BandCoreRatioMetric, band_core_ratio
from monai_lexu.metrics.calibration import (
    CalibrationMetric,
    ReliabilityCurve,
    expected_calibration_error,
    pooled_expected_calibration_error,
    reliability_curve,
)
from monai_lexu.metrics.correlation import (
    MIN_CASES_FOR_CORRELATION,
    DistanceCorrelationMetric,
    NormalizedCrossCorrelationMetric,
    SpearmanCorrelationMetric,
    distance_correlation,
    normalized_cross_correlation,
    spearman_correlation,
)
from monai_lexu.metrics.entropy import (
    MeanEntropyMetric,
    WeightedMeanEntropyMetric,
    mean_entropy,
    rater_entropy,
    weighted_mean_entropy,
)
from monai_lexu.metrics.estimated_dice import estimated_dice
from monai_lexu.metrics.ged import generalized_energy_distance, iou_distance_matrix
from monai_lexu.metrics.heatmap import (
    ParzenCurve,
    binary_dice,
    dice_estimate_agreement,
    parzen_calibration_curve,
    quantile_summary,
    trainee_error_heatmap_values,
    union_intersection_counts,
    union_sensitivity_intersection_precision,
)
from monai_lexu.metrics.nll import (
    NegativeLogLikelihoodMetric,
    NegativeLogLikelihoodReferenceMetric,
    negative_log_likelihood,
    negative_log_likelihood_reference,
)
from monai_lexu.metrics.qc import POOR_DICE_THRESHOLDS, QCCurve, poor_segmentations, qc_curve, qc_d_auc, qc_dice
from monai_lexu.metrics.registry import REPORT_METRICS, ReportMetric, report_metric_names
from monai_lexu.metrics.soft_dice import SoftDiceMetric, soft_dice
from monai_lexu.metrics.utils import (
    PerImageMetric,
    as_float_tensor,
    check_same_shape,
    image_scores,
    nan_aware_reduction,
)

__all__ = [
    "HeadAgreementMetric",
    "POOR_DICE_THRESHOLDS",
    "QCCurve",
    "auroc",
    "consecutive_head_agreement",
    "generalized_energy_distance",
    "head_agreement",
    "iou_distance_matrix",
    "pairwise_soft_dice",
    "poor_segmentations",
    "qc_curve",
    "qc_d_auc",
    "qc_dice",
    "BAND_CORE_TOLERANCE",
    "BandCoreRatioMetric",
    "CalibrationMetric",
    "MIN_CASES_FOR_CORRELATION",
    "DistanceCorrelationMetric",
    "MeanEntropyMetric",
    "NegativeLogLikelihoodMetric",
    "NegativeLogLikelihoodReferenceMetric",
    "NormalizedCrossCorrelationMetric",
    "ParzenCurve",
    "PerImageMetric",
    "ReliabilityCurve",
    "REPORT_METRICS",
    "ReportMetric",
    "report_metric_names",
    "as_float_tensor",
    "binary_dice",
    "dice_estimate_agreement",
    "parzen_calibration_curve",
    "quantile_summary",
    "trainee_error_heatmap_values",
    "union_intersection_counts",
    "union_sensitivity_intersection_precision",
    "band_core_ratio",
    "check_same_shape",
    "image_scores",
    "SoftDiceMetric",
    "SpearmanCorrelationMetric",
    "WeightedMeanEntropyMetric",
    "distance_correlation",
    "estimated_dice",
    "expected_calibration_error",
    "pooled_expected_calibration_error",
    "mean_entropy",
    "nan_aware_reduction",
    "negative_log_likelihood",
    "negative_log_likelihood_reference",
    "normalized_cross_correlation",
    "rater_entropy",
    "reliability_curve",
    "soft_dice",
    "spearman_correlation",
    "weighted_mean_entropy",
]
