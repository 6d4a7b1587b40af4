"""monai_lexu.inferers: probability/uncertainty inference for multi-head networks."""

from __future__ import annotations

from .labelmap import ProbToLabelMap, ProbToLabelMapd
from .multihead import (
    UNCERTAINTY_MEASURES,
    MCDropoutInferer,
    MultiHeadInferer,
    SplitProbUnc,
    SplitProbUncD,
    SplitProbUncd,
    SplitProbUncDict,
    heads_to_prob_unc,
    mc_dropout,
)

__all__ = [
    "UNCERTAINTY_MEASURES",
    "MCDropoutInferer",
    "MultiHeadInferer",
    "ProbToLabelMap",
    "ProbToLabelMapd",
    "SplitProbUnc",
    "SplitProbUncd",
    "SplitProbUncD",
    "SplitProbUncDict",
    "heads_to_prob_unc",
    "mc_dropout",
]
