"""monai_lexu.inferers: probability/uncertainty inference for multi-head networks."""

from __future__ import annotations

from .multihead import (
    MultiHeadInferer,
    SplitProbUnc,
    SplitProbUncD,
    SplitProbUncd,
    SplitProbUncDict,
    heads_to_prob_unc,
)

__all__ = [
    "MultiHeadInferer",
    "SplitProbUnc",
    "SplitProbUncd",
    "SplitProbUncD",
    "SplitProbUncDict",
    "heads_to_prob_unc",
]
