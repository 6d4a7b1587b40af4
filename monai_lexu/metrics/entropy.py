"""Entropy-based agreement with the experts: weighted mean entropy (WME) and mean entropy (ME), Jungo et al. 2018.

WME weights the model's predictive entropy by the experts' entropy, so it is high when the model is uncertain where
the experts disagree; ME is the plain mean predictive entropy and exposes models that are uncertain everywhere.

Which normalisation does WME use?  Jungo et al. (MICCAI 2018, section 3.4) write ``WME = 1/N sum_i H^_i H_i`` over
N pixels and call it "the weighted mean of the predictive entropy", while their Table 1 reports WME = .68 next to
ME = .12 for the same model. With the pixel count as denominator WME could never exceed ME: since
``0 <= H^_i <= 1`` (binary entropy in bits), ``1/N sum H^_i H_i <= max(H^) * 1/N sum H_i <= ME``. A typical
5-observer example (tests/metrics/test_entropy.py): a 50x50 image with a boundary band of 2 % of the pixels,
half marked by 1 and half by 2 of 5 observers (expert entropy 0.72 / 0.97 bits), and a model that reproduces the
soft label gives ``sum H^ H / sum H^ = 0.865`` but ``sum H^ H / N = 0.015``, with ME = 0.017 (ME grows with any
entropy the model adds along the rest of the boundary). Only the weighted mean ``sum H^ H / sum H^`` can exceed
ME and reach Table 1's magnitudes (it is <= 1), so it is the default here; the literal formula is
``weighting="pixels"``.

Log base: 2 (entropy in bits, in [0, 1] for a binary structure). Table 1's values are consistent with [0, 1]
entropies (a natural-log WME would be bounded by ln 2 = 0.693, barely above a mean of .68 +- .08), and Jungo's later
public code normalises entropy by log(C), which for C = 2 is the same as base 2.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from monai.utils import MetricReduction

from monai_lexu.contract import binary_entropy, check_unit_range, entropy_of_probabilities
from monai_lexu.metrics.utils import PerImageMetric, as_float_tensor, as_work_tensor, check_same_shape

__all__ = [
    "entropy_map",
    "rater_entropy",
    "weighted_mean_entropy",
    "mean_entropy",
    "WeightedMeanEntropyMetric",
    "MeanEntropyMetric",
]

_WEIGHTINGS = ("expert", "pixels")


def rater_entropy(
    raters: torch.Tensor | np.ndarray, rater_valid: torch.Tensor | np.ndarray | None = None, base: float = 2.0
) -> torch.Tensor:
    """Expert-disagreement entropy map: binary entropy of the fraction of valid raters marking each pixel.

    ``H^ = H(f)`` with ``f = sum_r valid_r * raters_r / sum_r valid_r``. For the contract's data, f is exactly the
    ``soft_label``, so ``rater_entropy(raters, rater_valid) == binary_entropy(soft_label)``. One valid rater, or
    unanimous raters, give 0.

    Args:
        raters: binary rater masks (B, R, L, *S) or (B, R, *S); dim 1 is the rater dim.
        rater_valid: (B, R) bool; padded raters (False) are ignored. None: all raters are valid.
        base: logarithm base (2 by default, see the module docstring).

    Returns:
        float32 tensor with the rater dim removed: (B, L, *S) or (B, *S).

    Raises:
        ValueError: on bad shapes or if an image has no valid rater.
    """
    r = as_float_tensor(raters, "raters")
    if r.ndim < 3:
        raise ValueError(f"`raters` must have shape (B, R, L, *S) or (B, R, *S), got {tuple(r.shape)}.")
    if rater_valid is None:
        w = torch.ones(r.shape[:2], dtype=r.dtype, device=r.device)
    else:
        w = as_float_tensor(rater_valid, "rater_valid").to(r.device)
        if w.shape != r.shape[:2]:
            raise ValueError(f"`rater_valid` must have shape {tuple(r.shape[:2])} (B, R), got {tuple(w.shape)}.")
    n_valid = w.sum(1)
    if (n_valid <= 0).any():
        bad = torch.nonzero(n_valid <= 0).flatten().tolist()
        raise ValueError(f"`rater_valid` has no valid rater for batch item(s) {bad}.")
    w = w.reshape(*w.shape, *([1] * (r.ndim - 2)))
    frac = (r * w).sum(1) / n_valid.reshape(-1, *([1] * (r.ndim - 2)))
    return binary_entropy(frac.clamp(0.0, 1.0), base=base)


def entropy_map(p: torch.Tensor | np.ndarray, base: float = 2.0, name: str = "p") -> torch.Tensor:
    """Binary entropy map of probabilities in the metrics' working dtype (float32 unless ``p`` is float64).

    The same values as :func:`~monai_lexu.contract.binary_entropy` (which computes in float64) within 1e-6 relative
    for every value the report uses (sums and means of the map; tested): ``(1 - p) log(1 - p)`` is computed as
    ``(1 - p) log1p(-p)``, exact near ``p = 0`` in float32 too. The report computes it once per map and image and
    feeds WME and ME with it (``pred_is_entropy`` / ``target_is_entropy``).

    Args:
        p: probabilities in [0, 1], any shape.
        base: logarithm base (2: bits).
        name: argument name for the range error.

    Raises:
        ValueError: if ``p`` leaves [0, 1].
    """
    if base <= 0 or base == 1:
        raise ValueError(f"`base` must be > 0 and != 1, got {base}.")
    (t,) = as_work_tensor(p, names=name)
    check_unit_range(t, name, tol=0.0)
    return entropy_of_probabilities(t, base)


def _entropies(
    y_pred: Any, y: Any, pred_is_entropy: bool, target_is_entropy: bool, base: float
) -> tuple[torch.Tensor, torch.Tensor]:
    p, g = as_work_tensor(y_pred, y)
    check_same_shape(p, g)
    h = p if pred_is_entropy else entropy_map(p, base=base, name="y_pred")
    hh = g if target_is_entropy else entropy_map(g, base=base, name="y")
    if h.dtype != hh.dtype:
        h, hh = h.double(), hh.double()
    return h.flatten(2), hh.to(h.device).flatten(2)


def weighted_mean_entropy(
    y_pred: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    weighting: str = "expert",
    base: float = 2.0,
    pred_is_entropy: bool = False,
    target_is_entropy: bool = False,
) -> torch.Tensor:
    """Weighted mean entropy (WME, Jungo et al. 2018): the model's entropy weighted by the experts' entropy.

    Definition (default ``weighting="expert"``): ``WME = sum_i H^_i H_i / sum_i H^_i`` per image and structure, with
    ``H_i = binary_entropy(y_pred_i)`` the predictive entropy and ``H^_i = binary_entropy(y_i)`` the entropy of
    the experts' disagreement (y = soft label = fraction of valid raters marking pixel i). With
    ``weighting="pixels"``, the paper's literal ``sum_i H^_i H_i / N`` over the N pixels. Both in [0, 1] for base 2.
    See the module docstring for why the weighted mean is the default (it is the only reading consistent with the
    paper's Table 1) and for the log base.

    Degenerate inputs: no expert disagreement anywhere in the image (all ``H^ = 0``: unanimous raters or a single
    rater): NaN for ``"expert"`` (0/0; excluded from the mean by :class:`WeightedMeanEntropyMetric`), 0 for
    ``"pixels"``. NaN in the maps: NaN.

    Args:
        y_pred: predicted probabilities (B, L, *S) (MC/heads mean); entropies if ``pred_is_entropy``.
        y: soft label (B, L, *S); expert entropy map (e.g. from :func:`rater_entropy`) if ``target_is_entropy``.
        weighting: ``"expert"`` or ``"pixels"``.
        base: logarithm base of both entropies.
        pred_is_entropy: ``y_pred`` already holds the predictive entropy map.
        target_is_entropy: ``y`` already holds the expert entropy map.

    Returns:
        float32 tensor (B, L).
    """
    if weighting not in _WEIGHTINGS:
        raise ValueError(f"`weighting` must be one of {_WEIGHTINGS}, got {weighting!r}.")
    h, hh = _entropies(y_pred, y, pred_is_entropy, target_is_entropy, base)
    num = (hh * h).sum(-1, dtype=torch.float64)
    if weighting == "pixels":
        return (num / h.shape[-1]).float()
    den = hh.sum(-1, dtype=torch.float64)
    out = num / torch.where(den > 0, den, torch.ones_like(den))
    return torch.where(den > 0, out, torch.full_like(out, float("nan"))).float()


def mean_entropy(y_pred: torch.Tensor | np.ndarray, base: float = 2.0, pred_is_entropy: bool = False) -> torch.Tensor:
    """Mean predictive entropy (ME, Jungo et al. 2018): ``mean_i binary_entropy(y_pred_i)`` per image and structure.

    Args:
        y_pred: predicted probabilities (B, L, *S); entropies if ``pred_is_entropy``.
        base: logarithm base (2: bits).
        pred_is_entropy: ``y_pred`` already holds the predictive entropy map.

    Returns:
        float32 tensor (B, L); NaN in an (image, structure) gives NaN.
    """
    (p,) = as_work_tensor(y_pred, names="y_pred")
    if p.ndim < 3:
        raise ValueError(f"`y_pred` must have shape (B, L, *spatial), got {tuple(p.shape)}.")
    h = p if pred_is_entropy else entropy_map(p, base=base, name="y_pred")
    return (h.flatten(2).sum(-1, dtype=torch.float64) / h.flatten(2).shape[-1]).float()


class WeightedMeanEntropyMetric(PerImageMetric):
    """Cumulative WME: per-image :func:`weighted_mean_entropy`, nanmean over images per structure.

    Images without any expert disagreement (NaN WME) are excluded; see :meth:`num_excluded`.

    Args:
        weighting, base, pred_is_entropy, target_is_entropy: see :func:`weighted_mean_entropy`.
        reduction: MONAI reduction of the (N, L) per-image values, default ``"mean_batch"`` -> (L,).
        get_not_nans: return ``(metric, not_nans)`` from ``aggregate()``.
    """

    def __init__(
        self,
        weighting: str = "expert",
        base: float = 2.0,
        pred_is_entropy: bool = False,
        target_is_entropy: bool = False,
        reduction: MetricReduction | str = MetricReduction.MEAN_BATCH,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(reduction=reduction, get_not_nans=get_not_nans)
        if weighting not in _WEIGHTINGS:
            raise ValueError(f"`weighting` must be one of {_WEIGHTINGS}, got {weighting!r}.")
        self.weighting = weighting
        self.base = base
        self.pred_is_entropy = pred_is_entropy
        self.target_is_entropy = target_is_entropy

    def _compute_tensor(  # type: ignore[override]
        self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any
    ) -> torch.Tensor:
        """WME of one iteration: y_pred, y (B, L, *S) -> (B, L)."""
        if y is None:
            raise ValueError("WeightedMeanEntropyMetric needs `y` (soft label or expert entropy).")
        return weighted_mean_entropy(
            y_pred,
            y,
            weighting=self.weighting,
            base=self.base,
            pred_is_entropy=self.pred_is_entropy,
            target_is_entropy=self.target_is_entropy,
        )


class MeanEntropyMetric(PerImageMetric):
    """Cumulative ME: per-image :func:`mean_entropy`, mean over images per structure (``y`` is ignored).

    Args:
        base, pred_is_entropy: see :func:`mean_entropy`.
        reduction: MONAI reduction of the (N, L) per-image values, default ``"mean_batch"`` -> (L,).
        get_not_nans: return ``(metric, not_nans)`` from ``aggregate()``.
    """

    def __init__(
        self,
        base: float = 2.0,
        pred_is_entropy: bool = False,
        reduction: MetricReduction | str = MetricReduction.MEAN_BATCH,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(reduction=reduction, get_not_nans=get_not_nans)
        self.base = base
        self.pred_is_entropy = pred_is_entropy

    def _compute_tensor(  # type: ignore[override]
        self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any
    ) -> torch.Tensor:
        """ME of one iteration: y_pred (B, L, *S) -> (B, L)."""
        return mean_entropy(y_pred, base=self.base, pred_is_entropy=self.pred_is_entropy)
