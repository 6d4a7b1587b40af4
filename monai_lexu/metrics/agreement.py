"""Agreement between the heads of one network (or ensemble members, or Monte-Carlo samples): example difficulty.

LEXU Fig. 2c / EDUE's OOD figure score every image by how much its heads agree; distorted (harder, out-of-distribution)
images should give lower agreement. The functional cores take one image's heads ``(K, L, *S)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from monai_lexu.metrics.soft_dice import DEFAULT_THRESHOLDS, soft_dice
from monai_lexu.metrics.utils import PerImageMetric, as_float_tensor

__all__ = ["HeadAgreementMetric", "auroc", "consecutive_head_agreement", "head_agreement", "pairwise_soft_dice"]


def _heads(heads: Any) -> torch.Tensor:
    h = as_float_tensor(heads, "heads")
    if h.ndim < 3:
        raise ValueError(f"heads must be (K, L, *S), got {tuple(h.shape)}.")
    if h.shape[0] < 2:
        raise ValueError(f"agreement needs at least 2 heads, got {h.shape[0]}.")
    return h


def pairwise_soft_dice(heads: Any, thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS) -> torch.Tensor:
    """Soft Dice between every pair of heads ``i < j`` of one image.

    The soft Dice is :func:`monai_lexu.metrics.soft_dice` (mean over thresholds of the Dice of both maps thresholded
    at ``t``; two empty masks give 1), with head ``i`` as prediction and head ``j`` as label; it is symmetric.

    Args:
        heads: ``(K, L, *S)`` probability maps of the K heads (members, samples).
        thresholds: thresholds of the soft Dice.

    Returns:
        float32 ``(K (K - 1) / 2, L)``, pairs in the order (0, 1), (0, 2), ..., (K-2, K-1).
    """
    h = _heads(heads)
    i, j = torch.triu_indices(h.shape[0], h.shape[0], offset=1)
    return soft_dice(h[i], h[j], thresholds=thresholds)


def head_agreement(heads: Any, thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS) -> dict[str, np.ndarray]:
    """Agreement scores of one image: mean and variance of the pairwise soft Dice, per structure.

    ``mean`` is the agreement score shown by the project (1 = all heads agree, lower = disagreement). ``var`` is
    the population variance (ddof 0) over the pairs, the score of the LEXU reference notebook (it grows with
    disagreement when some pairs agree and others do not).

    Args:
        heads: ``(K, L, *S)`` probability maps.
        thresholds: thresholds of the soft Dice.

    Returns:
        ``{"mean": (L,), "var": (L,)}`` float64.
    """
    d = pairwise_soft_dice(heads, thresholds).double()
    return {"mean": d.mean(0).numpy(), "var": d.var(0, unbiased=False).numpy()}


def consecutive_head_agreement(heads: Any, threshold: float = 0.5) -> dict[str, np.ndarray]:
    """Layer Ensembles' agreement curve between consecutive heads and the area under it (AULA).

    Definition (Kushibar et al.): ``a_k = Dice(H_k, H_{k-1})`` for ``k = 1 .. K - 1``, with ``H_k = 1[h_k > threshold]``
    (two empty masks give Dice 1), and ``AULA = trapz(a, dx=1)``. Deliberate difference from the public code: it
    casts the probabilities to bool (any non-zero probability is foreground), which makes the curve constant; here
    the maps are thresholded at 0.5.

    Args:
        heads: ``(K, L, *S)`` probability maps, in the network's head order (shallow to deep).
        threshold: binarisation threshold.

    Returns:
        ``{"curve": (K - 1, L), "area": (L,)}`` float64.
    """
    h = _heads(heads)
    curve = soft_dice(h[1:], h[:-1], thresholds=(threshold,)).double().numpy()
    return {"curve": curve, "area": np.trapezoid(curve, dx=1.0, axis=0)}


def auroc(scores: Any, positive: Any) -> float:
    """Area under the ROC curve of telling positive from negative images by ``scores`` (higher = positive).

    Mann-Whitney form: ``P(s_pos > s_neg) + 0.5 P(s_pos = s_neg)`` over all (positive, negative) pairs; 0.5 is
    chance, 1 a perfect separation. NaN without a positive or a negative image; NaN scores are left out.

    Args:
        scores: ``(N,)`` image-level scores.
        positive: ``(N,)`` booleans (e.g. "distorted").

    Returns:
        AUROC as a float.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(positive).reshape(-1).astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"scores ({s.size}) and positive ({y.size}) must have one value per image.")
    ok = np.isfinite(s)
    pos, neg = s[ok & y], s[ok & ~y]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    diff = pos[:, None] - neg[None]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


class HeadAgreementMetric(PerImageMetric):
    """Cumulative head agreement: per image the mean (or variance) of the pairwise soft Dice between its heads.

    ``y_pred`` is the heads' probability maps ``(B, K, L, *S)`` (e.g. the ``heads`` kept by the evaluation's
    ``keep_head_maps``); ``y`` is not used. ``aggregate()`` gives the mean over images per structure.

    Args:
        statistic: ``"mean"`` (agreement) or ``"var"`` (the reference notebook's score), see :func:`head_agreement`.
        thresholds: thresholds of the soft Dice.
    """

    def __init__(self, statistic: str = "mean", thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS, **kwargs: Any):
        super().__init__(**kwargs)
        if statistic not in ("mean", "var"):
            raise ValueError(f"statistic must be 'mean' or 'var', got {statistic!r}.")
        self.statistic, self.thresholds = statistic, tuple(thresholds)

    def _compute_tensor(  # type: ignore[override]
        self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any
    ) -> torch.Tensor:
        """(B, K, L, *S) -> (B, L)."""
        rows = [torch.as_tensor(head_agreement(h, self.thresholds)[self.statistic]) for h in y_pred]
        return torch.stack(rows).float()
