"""Interactive segmentation figures (MedUHIP §4.3): Dice after k interactions and the number of clicks (NoC).

* Dice after ``k`` (Table 1 uses ``k = 3``): the Dice of the prediction after ``k`` interactions against the
  clinician's target, per case; :func:`dice_after_k` summarises the per-case curves.
* NoC at a Dice threshold (Table 3): the number of interactions after which the Dice first reaches the
  threshold (``>=``), counting at most ``max_interactions`` (6) and scoring a case that never reaches it
  ``not_reached`` (10), as the paper says. Ours: ``k = 0`` (the automatic prediction before any click) counts, so
  a case already above the threshold scores 0; the paper's interactive baselines need one prompt to start, so its
  smallest value is 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["NOC_MAX_INTERACTIONS", "NOC_NOT_REACHED", "dice_after_k", "number_of_clicks"]

NOC_MAX_INTERACTIONS = 6
NOC_NOT_REACHED = 10


def number_of_clicks(
    dice_curve: Sequence[float],
    threshold: float,
    max_interactions: int = NOC_MAX_INTERACTIONS,
    not_reached: float = NOC_NOT_REACHED,
) -> float:
    """NoC of one case: the smallest ``k <= max_interactions`` with ``dice_curve[k] >= threshold``, else
    ``not_reached``.

    Args:
        dice_curve: Dice after ``k = 0, 1, ...`` interactions (``dice_curve[k]``); entries beyond
            ``max_interactions`` are ignored; NaN never reaches.
        threshold: the Dice to reach.
        max_interactions: the most interactions that count.
        not_reached: the score of a case that does not reach ``threshold`` within ``max_interactions``.
    """
    curve = np.asarray(dice_curve, dtype=np.float64)[: max_interactions + 1]
    hit = np.flatnonzero(np.nan_to_num(curve, nan=-np.inf) >= threshold)
    return float(hit[0]) if hit.size else float(not_reached)


def dice_after_k(dice_curves: Sequence[Sequence[float]] | np.ndarray) -> dict[str, list[float]]:
    """Mean and standard deviation over cases of the Dice after each ``k``.

    Args:
        dice_curves: ``(cases, K + 1)`` Dice per case after ``k = 0..K`` interactions.

    Returns:
        ``{"mean": [K + 1], "std": [K + 1], "n": [K + 1]}`` (NaN ignored).
    """
    d = np.asarray(dice_curves, dtype=np.float64)
    if d.ndim != 2:
        raise ValueError(f"dice_after_k: expected (cases, K + 1) Dice values, got shape {d.shape}.")
    return {
        "mean": [float(v) for v in np.nanmean(d, 0)],
        "std": [float(v) for v in np.nanstd(d, 0)],
        "n": [int(v) for v in np.isfinite(d).sum(0)],
    }
