"""monai_lexu.inferers: probability/uncertainty inference for multi-head networks, ensembles and MC dropout."""

from __future__ import annotations

from .calibrated import (
    CalibratedEnsembleInferer,
    VotePatternCounts,
    calibrated_heatmap,
    equal_coefficients,
    fit_ensemble_coefficients,
    heads_to_votes,
    heatmap_to_prob_unc,
    load_coefficients,
    save_coefficients,
)
from .keep_heads import KeepHeadsInferer, keep_heads
from .multihead import MCDropoutInferer, MultiHeadInferer, mc_dropout

__all__ = [
    "keep_heads",
    "KeepHeadsInferer",
    "CalibratedEnsembleInferer",
    "MCDropoutInferer",
    "MultiHeadInferer",
    "VotePatternCounts",
    "calibrated_heatmap",
    "equal_coefficients",
    "fit_ensemble_coefficients",
    "heads_to_votes",
    "heatmap_to_prob_unc",
    "load_coefficients",
    "mc_dropout",
    "save_coefficients",
]
