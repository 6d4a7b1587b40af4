"""monai_lexu.losses: multi-rater training losses."""

from __future__ import annotations

from .multi_rater import SAMPLING_MODES, LEXULoss, MultiHeadRaterLoss, sample_valid_raters

__all__ = ["SAMPLING_MODES", "LEXULoss", "MultiHeadRaterLoss", "sample_valid_raters"]
