"""monai_lexu.losses: multi-rater training losses."""

from __future__ import annotations

from .multi_rater import SAMPLING_MODES, LEXULoss, MultiHeadRaterLoss, sample_valid_raters
from .parametric import PARAMETRIC_TARGETS, ParametricCalibrationLoss, parametric_loss, shifted_loss_weights

__all__ = [
    "PARAMETRIC_TARGETS",
    "SAMPLING_MODES",
    "LEXULoss",
    "MultiHeadRaterLoss",
    "ParametricCalibrationLoss",
    "parametric_loss",
    "sample_valid_raters",
    "shifted_loss_weights",
]
