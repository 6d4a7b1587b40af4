"""Band/core uncertainty ratio: does the uncertainty sit where the raters disagree rather than where they all agree?"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from monai.utils import MetricReduction

from monai_lexu.metrics.utils import (
    PerImageMetric,
    as_work_tensor,
    check_same_shape,
    count_true,
    mask_as,
    nan_rows,
    threshold_for,
)

__all__ = ["BAND_CORE_TOLERANCE", "BandCoreRatioMetric", "band_core_ratio"]

BAND_CORE_TOLERANCE = 1e-6
"""Tolerance on the soft label: core ``soft >= 1 - tol``, band ``tol < soft < 1 - tol`` (float means of raters)."""


def band_core_ratio(
    unc: torch.Tensor | np.ndarray, soft_label: torch.Tensor | np.ndarray, tol: float = BAND_CORE_TOLERANCE
) -> torch.Tensor:
    """Mean uncertainty in the raters' disagreement band over the mean uncertainty in their consensus core.

    Definition, per image and structure::

        band = {x : tol < soft_label(x) < 1 - tol}      (the valid raters do not all agree: some drew x, some not)
        core = {x : soft_label(x) >= 1 - tol}           (every valid rater drew x)
        band/core = mean(unc[band]) / mean(unc[core])

    ``soft_label`` is the mean of the VALID raters' binary masks, so the band is exactly the union minus the
    intersection of the valid raters (:func:`monai_lexu.datasets.hecktor.disagreement_band`). A value well above 1
    means the uncertainty is concentrated where the experts disagree; about 1 means it is spread over the whole
    structure (a "blob"); below 1, the model is least sure where the experts are all sure. Voxels outside every
    rater's mask (``soft_label == 0``) are in neither region.

    Degenerate inputs: NaN (shown as ``nan`` in the tables, left out of the mean over images) when the band or the core
    is empty (e.g. one valid rater: no band; raters who share no voxel: no core), when the core's mean uncertainty is
    0 (the ratio is undefined), or when ``unc`` or ``soft_label`` holds a NaN in the image.

    Args:
        unc: uncertainty maps (B, L, *S), >= 0 (e.g. the variance over heads).
        soft_label: mean of the valid raters (B, L, *S) in [0, 1].
        tol: tolerance of the two soft-label comparisons (float rounding of the rater mean).

    Returns:
        float32 tensor (B, L).

    Raises:
        ValueError: on a shape mismatch or fewer than 3 dims.
    """
    u, s = as_work_tensor(unc, soft_label, names="unc, soft_label")
    check_same_shape(u, s, names="unc, soft_label")
    u, s = u.flatten(2), s.to(u.device).flatten(2)
    band = (s > threshold_for(tol, s.dtype, ">")) & (s < threshold_for(1.0 - tol, s.dtype, "<"))
    core = s >= threshold_for(1.0 - tol, s.dtype, ">=")
    n_band, n_core = count_true(band), count_true(core)
    # u * mask: NaN * 0 is NaN, but an image with a NaN is undefined anyway (below)
    band_mean = (u * mask_as(band, u.dtype)).sum(-1, dtype=torch.float64) / n_band.clamp(min=1)
    core_mean = (u * mask_as(core, u.dtype)).sum(-1, dtype=torch.float64) / n_core.clamp(min=1)
    ratio = band_mean / torch.where(core_mean > 0, core_mean, torch.ones_like(core_mean))
    undefined = (n_band == 0) | (n_core == 0) | (core_mean <= 0) | nan_rows(u) | nan_rows(s)
    return torch.where(undefined, torch.full_like(ratio, float("nan")), ratio).float()


class BandCoreRatioMetric(PerImageMetric):
    """Cumulative band/core uncertainty ratio: per-image :func:`band_core_ratio`, mean over images per structure.

    Images where the ratio is undefined (NaN: no band, no core, or zero core uncertainty) are left out of the mean;
    a structure without any defined value aggregates to NaN.

    Args:
        tol: see :func:`band_core_ratio`.
        reduction: MONAI reduction of the (N, L) per-image values, default ``"mean_batch"`` -> (L,).
        get_not_nans: return ``(metric, not_nans)`` from ``aggregate()``.
    """

    def __init__(
        self,
        tol: float = BAND_CORE_TOLERANCE,
        reduction: MetricReduction | str = MetricReduction.MEAN_BATCH,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(reduction=reduction, get_not_nans=get_not_nans)
        self.tol = float(tol)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        """``y_pred``: uncertainty (B, L, *S); ``y``: soft label (B, L, *S) -> (B, L)."""
        if y is None:
            raise ValueError("BandCoreRatioMetric needs the soft label as `y`.")
        return band_core_ratio(y_pred, y, tol=self.tol)
