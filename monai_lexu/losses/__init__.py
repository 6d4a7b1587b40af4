"""monai_lexu.losses: multi-rater training losses."""

from __future__ import annotations

from .lexu_loss import SAMPLING_MODES, LEXULoss, sample_valid_raters

__all__ = ["SAMPLING_MODES", "LEXULoss", "sample_valid_raters"]
