"""The simulated clinician's target (MedUHIP §4.2): a random subset of raters, fused and binarised.

The fusion is the project's majority (:class:`monai_lexu.transforms.FuseRaters` ``mode="majority"``: strictly more
than half of the chosen raters; an exact tie is background, so two raters fuse to their intersection). The paper
does not say how it binarises; ``ImprintLab/SPA`` uses mean >= 0.5 (a tie is foreground): a difference, ours.
"""

from __future__ import annotations

import numpy as np

__all__ = ["rater_subset_target"]


def rater_subset_target(
    raters: np.ndarray, num_raters: int | None, rng: np.random.Generator, valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fuse a random subset of ``num_raters`` valid raters by majority.

    Args:
        raters: ``(R, *S)`` binary masks of one structure.
        num_raters: subset size (clipped to the number of valid raters); None: drawn uniformly from 1..R_valid.
        rng: random generator (subset and, if needed, size).
        valid: ``(R,)`` bool validity; all valid if None.

    Returns:
        ``(target (*S) float32 in {0, 1}, chosen rater indices)``.

    Raises:
        ValueError: if no rater is valid or ``num_raters < 1``.
    """
    from monai_lexu.transforms import FuseRaters

    raters = np.asarray(raters)
    idx = np.arange(raters.shape[0]) if valid is None else np.flatnonzero(np.asarray(valid, dtype=bool))
    if idx.size == 0:
        raise ValueError("rater_subset_target: no valid rater.")
    n = int(rng.integers(1, idx.size + 1)) if num_raters is None else min(int(num_raters), idx.size)
    if n < 1:
        raise ValueError(f"rater_subset_target: num_raters must be >= 1, got {num_raters}.")
    chosen = np.sort(rng.choice(idx, size=n, replace=False))
    fused = FuseRaters(mode="majority")(raters[chosen][:, None].astype(np.float32))
    return np.asarray(fused, dtype=np.float32)[0], chosen
