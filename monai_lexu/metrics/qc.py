"""Segmentation quality control (LEXU Fig. 2a/b, after Ng et al.): refer uncertain images, count the poor ones left.

The functional core is :func:`qc_curve` / :func:`qc_d_auc` on image-level scores; :func:`qc_dice` and
:func:`poor_segmentations` give the per-image Dice and the "poor" flags the curve needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from monai_lexu.metrics.heatmap import binary_dice

__all__ = ["POOR_DICE_THRESHOLDS", "QCCurve", "poor_segmentations", "qc_curve", "qc_d_auc", "qc_dice"]

POOR_DICE_THRESHOLDS: dict[str, float] = {"disc": 0.97, "cup": 0.85, "GTVp": 0.65, "GTVn": 0.55}
"""Per-structure Dice below which a segmentation is "poor" (LEXU §4.2)."""


class QCCurve(tuple):
    """``(x, y, y_ideal)`` of :func:`qc_curve`, each ``(N + 1,)`` float64 (a plain tuple with names)."""

    @property
    def x(self) -> np.ndarray:
        return self[0]

    @property
    def y(self) -> np.ndarray:
        return self[1]

    @property
    def y_ideal(self) -> np.ndarray:
        return self[2]


def _scores_and_flags(scores: Any, is_poor: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    p = np.asarray(is_poor).reshape(-1).astype(bool)
    if s.shape != p.shape:
        raise ValueError(f"scores ({s.size}) and is_poor ({p.size}) must have one value per image.")
    if s.size == 0:
        raise ValueError("quality control needs at least one image.")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"scores must be finite; {int((~np.isfinite(s)).sum())} of {s.size} are NaN or infinite.")
    return s, p


def qc_curve(scores: Any, is_poor: Any) -> QCCurve:
    """Remaining fraction of poor segmentations as images are referred for review in order of decreasing score.

    Definition (the project's, stated in the LEXU issue; the paper gives only the plot): the N images are referred
    for review in decreasing order of ``scores`` (an image-level uncertainty, e.g. the sum of the uncertainty map;
    ties keep the input order: a stable sort). For ``k = 0 .. N`` referred images, ``x_k = k / N`` and
    ``y_k = (poor images among the N - k not referred) / (all poor images)``. The ideal curve refers the poor images
    first: ``y*_k = max(0, 1 - x_k N / N_poor)``.

    With no poor image the fractions are 0 / 0: ``y`` and ``y_ideal`` are then all zeros (no poor image remains at
    any k) and :func:`qc_d_auc` returns NaN (the ranking cannot be judged).

    Args:
        scores: ``(N,)`` image-level scores, larger = refer first (finite).
        is_poor: ``(N,)`` booleans, True for a poor segmentation.

    Returns:
        :class:`QCCurve` ``(x, y, y_ideal)``, each ``(N + 1,)``.
    """
    s, p = _scores_and_flags(scores, is_poor)
    n, n_poor = s.size, int(p.sum())
    order = np.argsort(-s, kind="stable")
    x = np.arange(n + 1, dtype=np.float64) / n
    if n_poor == 0:
        return QCCurve((x, np.zeros(n + 1), np.zeros(n + 1)))
    referred_poor = np.concatenate([[0], np.cumsum(p[order])])
    y = (n_poor - referred_poor) / n_poor
    y_ideal = np.maximum(0.0, 1.0 - x * n / n_poor)
    return QCCurve((x, y.astype(np.float64), y_ideal))


def qc_d_auc(scores: Any, is_poor: Any) -> float:
    """d-AUC of segmentation quality control: area under :func:`qc_curve` minus the area under its ideal curve.

    Definition: ``d-AUC = trapz(y, x) - trapz(y_ideal, x)`` over the ``N + 1`` points of :func:`qc_curve` (scores
    in decreasing order refer images; ``y_k`` the fraction of poor images not yet referred after ``k``; the ideal
    refers the poor ones first, ``y*(x) = max(0, 1 - x N / N_poor)``). 0 is perfect, lower is better; the worst
    (every poor image referred last) is ``1 - N_poor / N``.

    Returns NaN when no image is poor (the curve is 0 / 0: nothing to find, the ranking cannot be judged).

    Args:
        scores: ``(N,)`` image-level scores (larger = refer first).
        is_poor: ``(N,)`` booleans.

    Returns:
        d-AUC as a float (NaN without a poor image).
    """
    s, p = _scores_and_flags(scores, is_poor)
    if not p.any():
        return float("nan")
    x, y, y_ideal = qc_curve(s, p)
    return float(np.trapezoid(y, x) - np.trapezoid(y_ideal, x))


def qc_dice(prob: Any, soft_label: Any, threshold: float = 0.5) -> np.ndarray:
    """Per-image Dice of the prediction ``prob >= threshold`` against the soft-majority label ``soft >= threshold``.

    Both masks empty gives 1 (:func:`monai_lexu.metrics.binary_dice`).

    Args:
        prob: ``(N, L, *S)`` probabilities.
        soft_label: ``(N, L, *S)`` mean of the valid raters.
        threshold: the binarisation threshold of both maps.

    Returns:
        ``(N, L)`` float64.
    """
    p = np.asarray(prob, dtype=np.float64)
    g = np.asarray(soft_label, dtype=np.float64)
    if p.shape != g.shape or p.ndim < 3:
        raise ValueError(f"prob {p.shape} and soft_label {g.shape} must both be (N, L, *S).")
    n, num_l = p.shape[:2]
    d = binary_dice((p >= threshold).reshape(n * num_l, -1), (g >= threshold).astype(np.float64).reshape(n * num_l, -1))
    return d.reshape(n, num_l)


def poor_segmentations(
    dice: Any, structures: Sequence[str], thresholds: Mapping[str, float] | None = None
) -> np.ndarray:
    """Flags ``dice < threshold[structure]`` per image and structure.

    Args:
        dice: ``(N, L)`` per-image Dice (:func:`qc_dice`).
        structures: the L structure names.
        thresholds: name -> Dice threshold (default :data:`POOR_DICE_THRESHOLDS`).

    Returns:
        ``(N, L)`` booleans.
    """
    d = np.asarray(dice, dtype=np.float64)
    table = POOR_DICE_THRESHOLDS if thresholds is None else thresholds
    missing = [s for s in structures if s not in table]
    if missing:
        raise ValueError(f"no poor-segmentation Dice threshold for {missing}; known: {sorted(table)}")
    if d.ndim != 2 or d.shape[1] != len(structures):
        raise ValueError(f"dice must be (N, L={len(structures)}), got {d.shape}.")
    return d < np.asarray([table[s] for s in structures])[None]
