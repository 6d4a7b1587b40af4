"""Soft Dice: Dice averaged over several thresholds of both the probability map and the soft label (LEXU Table 2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.utils import MetricReduction

from monai_lexu.metrics.utils import (
    PerImageMetric,
    as_work_tensor,
    check_same_shape,
    count_true,
    nan_rows,
    threshold_for,
)

__all__ = ["soft_dice", "SoftDiceMetric"]

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)


def soft_dice(
    y_pred: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    smooth: float = 1e-6,
) -> torch.Tensor:
    """Soft Dice of a probability map against a soft label, per image and structure.

    Definition (grader_soup ``get_soft_dice``): ``SoftDice = mean_t Dice_t`` over ``t`` in ``thresholds`` with
    ``Dice_t = (2 |P_t & G_t| + smooth) / (|P_t| + |G_t| + smooth)``, ``P_t = 1[y_pred > t]`` and
    ``G_t = 1[y > t]`` (strict ``>``). The soft label is thresholded at the same t as the prediction: with 6 raters
    t = 0.5 means at least 4 agree, t = 0.9 means all 6. Against a binary label every threshold gives the same
    ``G_t``; against one rater's mask it gives the paper's "Average" column when averaged over raters.

    Degenerate inputs: both masks empty at a threshold -> ``Dice_t = smooth / smooth = 1``; one empty, the other
    not -> ~0. NaN anywhere in an (image, structure) -> NaN for it (propagated, not treated as background).

    Args:
        y_pred: predicted probabilities (B, L, *S).
        y: soft label (B, L, *S) in [0, 1] (mean of the valid raters), or a binary mask.
        thresholds: thresholds t, applied to both maps.
        smooth: added to numerator and denominator.

    Returns:
        float32 tensor (B, L).
    """
    p, g = as_work_tensor(y_pred, y)
    check_same_shape(p, g)
    if len(thresholds) == 0:
        raise ValueError("`thresholds` must contain at least one threshold.")
    p, g = p.flatten(2), g.to(p.device).flatten(2)
    # every threshold at once (one compare per map instead of one per threshold: the per-op overhead dominated),
    # exact counts from uint8 sums
    c = torch.tensor([threshold_for(t, p.dtype, ">") for t in thresholds], dtype=p.dtype, device=p.device)
    c = c.view(*([1] * (p.ndim - 1)), -1, 1)  # (1, 1, T, 1)
    pt, gt = p.unsqueeze(-2) > c, g.unsqueeze(-2) > c  # (B, L, T, N): float32 input gives the float64 masks
    inter = count_true(pt & gt).double()
    total = (count_true(pt) + count_true(gt)).double()
    out = ((2.0 * inter + smooth) / (total + smooth)).mean(-1)
    has_nan = nan_rows(p) | nan_rows(g)
    return torch.where(has_nan, torch.full_like(out, float("nan")), out).float()


class SoftDiceMetric(PerImageMetric):
    """Cumulative soft Dice: per-image :func:`soft_dice`, mean over images per structure.

    Args:
        thresholds: see :func:`soft_dice`.
        smooth: see :func:`soft_dice`.
        reduction: MONAI reduction of the (N, L) per-image values, default ``"mean_batch"`` -> (L,).
        get_not_nans: return ``(metric, not_nans)`` from ``aggregate()``.
    """

    def __init__(
        self,
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
        smooth: float = 1e-6,
        reduction: MetricReduction | str = MetricReduction.MEAN_BATCH,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(reduction=reduction, get_not_nans=get_not_nans)
        self.thresholds = tuple(thresholds)
        self.smooth = smooth

    def _compute_tensor(  # type: ignore[override]
        self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any
    ) -> torch.Tensor:
        """Soft Dice of one iteration: y_pred, y (B, L, *S) -> (B, L)."""
        if y is None:
            raise ValueError("SoftDiceMetric needs `y` (soft label).")
        return soft_dice(y_pred, y, thresholds=self.thresholds, smooth=self.smooth)
