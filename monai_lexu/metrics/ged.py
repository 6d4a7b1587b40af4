"""Generalised energy distance (GED) between a method's samples and the raters' masks (Kohl et al. 2018)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["generalized_energy_distance", "iou_distance_matrix"]


def iou_distance_matrix(a: Any, b: Any) -> np.ndarray:
    """``d(a_i, b_j) = 1 - IoU(a_i, b_j)`` for every pair of binary masks, NaN when both masks are empty.

    Args:
        a: ``(M, *S)`` masks (non-zero = foreground).
        b: ``(K, *S)`` masks.

    Returns:
        ``(M, K)`` float64 (NaN where ``a_i`` and ``b_j`` are both empty: IoU is 0 / 0).
    """
    x = np.asarray(a) != 0
    y = np.asarray(b) != 0
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(f"mask shapes differ: {x.shape[1:]} and {y.shape[1:]}.")
    x = x.reshape(x.shape[0], -1).astype(np.float64)
    y = y.reshape(y.shape[0], -1).astype(np.float64)
    inter = x @ y.T
    union = x.sum(1)[:, None] + y.sum(1)[None] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, 1.0 - inter / np.where(union > 0, union, 1.0), np.nan)


def generalized_energy_distance(samples: Any, raters: Any, threshold: float = 0.5) -> float:
    """GED with ``d = 1 - IoU``, NaN-aware as Kohl et al.'s evaluation, for one structure of one image.

    Definition: ``GED^2 = 2 E[d(S, Y)] - E[d(S, S')] - E[d(Y, Y')]`` with ``S`` the method's samples (heads,
    ensemble members or Monte-Carlo samples, binarised ``>= threshold``) and ``Y`` the raters' masks. Each
    expectation is the mean over ALL ordered pairs (``M x K``, ``M x M`` and ``K x K``, the diagonal included, as the
    probabilistic U-Net evaluation builds its distance matrices), where a pair of two empty masks has an undefined
    IoU (NaN) and is left out of its mean (``nanmean``). A term with no defined pair makes the GED NaN. The squared
    form is returned (Kohl et al. report ``D^2_GED``).

    Args:
        samples: ``(M, *S)`` probabilities or masks of the method's samples.
        raters: ``(K, *S)`` binary masks of the (valid) raters.
        threshold: samples are foreground where ``>= threshold``; raters where non-zero.

    Returns:
        ``D^2_GED`` (float; NaN when a term has no defined pair).
    """
    s = np.asarray(samples, dtype=np.float64) >= threshold
    y = np.asarray(raters) != 0
    if s.ndim < 2 or y.ndim < 2 or s.shape[1:] != y.shape[1:]:
        raise ValueError(f"samples {s.shape} and raters {y.shape} must be (M, *S) and (K, *S) of one shape.")
    terms = [iou_distance_matrix(s, y), iou_distance_matrix(s, s), iou_distance_matrix(y, y)]
    if any(np.isnan(t).all() for t in terms):
        return float("nan")
    d_sy, d_ss, d_yy = (float(np.nanmean(t)) for t in terms)
    return 2.0 * d_sy - d_ss - d_yy
