"""Figures of a (calibrated) ensemble heatmap (Buddenkotte et al.): Parzen calibration curve, union sensitivity and
intersection precision, Dice-estimate agreement, and the trainee (human-machine) analysis.

All functions take numpy arrays or tensors and pool voxels (no per-image mean) unless stated otherwise; the per-image
Dice estimate itself is :func:`monai_lexu.metrics.estimated_dice`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

__all__ = [
    "ParzenCurve",
    "parzen_calibration_curve",
    "union_intersection_counts",
    "union_sensitivity_intersection_precision",
    "dice_estimate_agreement",
    "binary_dice",
    "trainee_error_heatmap_values",
    "quantile_summary",
]


def _np(x: Any, dtype: Any = np.float64) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


class ParzenCurve(NamedTuple):
    """Parzen-window calibration curve (pooled; add two curves' sums to pool more images).

    Attributes:
        nodes: node positions ``j / K``, ``j = 0 .. J`` (J >= K; the grid grows to cover the largest heatmap value).
        weight: ``N1`` per node: kernel mass of the voxels (sum of the kernel weights).
        target: ``N2`` per node: kernel-weighted sum of the target (ground truth, soft label, or a prediction).
        confidence: kernel-weighted sum of the (clipped-below) heatmap values.
    """

    nodes: np.ndarray
    weight: np.ndarray
    target: np.ndarray
    confidence: np.ndarray

    @property
    def frequency(self) -> np.ndarray:
        """``N2 / N1`` per node: the observed frequency (NaN where no voxel contributes)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.weight > 0, self.target / np.where(self.weight > 0, self.weight, 1), np.nan)

    @property
    def mean_confidence(self) -> np.ndarray:
        """Kernel-weighted mean heatmap value per node (equals the node for values on the grid)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.weight > 0, self.confidence / np.where(self.weight > 0, self.weight, 1), np.nan)

    def __add__(self, other: Any) -> ParzenCurve:  # type: ignore[override]
        if not isinstance(other, ParzenCurve):
            return NotImplemented
        n = max(len(self.nodes), len(other.nodes))
        step = self.nodes[1] - self.nodes[0]
        if not np.isclose(step, other.nodes[1] - other.nodes[0]):
            raise ValueError("Parzen curves with different node spacings cannot be pooled.")

        def pad(a: np.ndarray) -> np.ndarray:
            return np.pad(a, (0, n - len(a)))

        nodes = np.arange(n) * step
        return ParzenCurve(
            nodes,
            pad(self.weight) + pad(other.weight),
            pad(self.target) + pad(other.target),
            pad(self.confidence) + pad(other.confidence),
        )

    def distance_to_diagonal(self, against: str = "node", min_node: float = 0.0) -> float:
        """``sum_j N1_j |freq_j - x_j| / sum_j N1_j`` over nodes ``x_j >= min_node`` with voxels (NaN if none).

        Args:
            against: ``"node"`` (the node position, as the reference plots the curve) or ``"confidence"`` (the
                kernel-weighted mean heatmap value at the node, free of the edge bias of a continuous heatmap).
            min_node: lowest node included (``1 / K`` drops the all-zero mass, as the reference's plot).
        """
        x = self.nodes if against == "node" else self.mean_confidence
        keep = (self.weight > 0) & (self.nodes >= min_node - 1e-12)
        if not keep.any():
            return float("nan")
        return float(np.sum(self.weight[keep] * np.abs(self.frequency[keep] - x[keep])) / np.sum(self.weight[keep]))

    def rows(self) -> list[dict[str, float]]:
        """CSV rows ``{node, voxels, frequency, mean_confidence}``."""
        return [
            {"node": float(x), "voxels": float(n), "frequency": float(f), "mean_confidence": float(c)}
            for x, n, f, c in zip(self.nodes, self.weight, self.frequency, self.mean_confidence)
        ]


def parzen_calibration_curve(heatmap: Any, target: Any, num_members: int, mask: Any = None) -> ParzenCurve:
    """Parzen-window calibration curve with the linear kernel of the reference (Buddenkotte et al., Fig. 2).

    Definition: nodes ``x_j = j / K`` (spacing = kernel half-width ``1 / K`` for ``K`` members). A voxel with value
    ``v`` in ``[x_j, x_{j+1})`` adds ``1 - xi`` to node ``j`` and ``xi`` to node ``j + 1`` (``xi = (v - x_j) K``),
    i.e. the triangular kernel ``max(0, 1 - K |v - x|)``; ``N1`` sums these weights and ``N2`` the weights times the
    target. The curve is ``N2 / N1`` at each node; a perfectly calibrated heatmap lies on the diagonal.

    Edge cases the reference crashes on or drops, guarded here: values below 0 (negative coefficients) go entirely
    to node 0; values in ``[0, 1/K)`` are KEPT (the reference drops them, so its curve starts at 1/K: pass
    ``min_node=1/K`` to :meth:`ParzenCurve.distance_to_diagonal` to do the same); a value exactly on a node adds 1 to
    that node only; values above 1 extend the grid (the reference's fixed grid ends at ``(K + 1) / K`` and crashes
    beyond it). NaN voxels are ignored. Besides ``N2`` the curve keeps the kernel-weighted heatmap values, so
    ``mean_confidence`` is the confidence the frequency should match (exactly the node for heatmaps on the grid; for
    continuous heatmaps the one-sided kernel at node 0 and the last node biases the node position, not this).

    Use ``target`` = ground truth (or the raters' soft label) for calibration, and ``target`` = a binary prediction
    for the prevalence of predicted foreground against the heatmap (Fig. 4, middle row).

    Args:
        heatmap: ``h`` of any shape (unclipped).
        target: same shape, in [0, 1].
        num_members: ``K`` (node spacing ``1 / K``).
        mask: optional same-shape voxel weights (e.g. a region of interest).

    Returns:
        :class:`ParzenCurve`.
    """
    if num_members < 1:
        raise ValueError(f"num_members must be >= 1, got {num_members}.")
    h = _np(heatmap).reshape(-1)
    t = _np(target).reshape(-1)
    if h.shape != t.shape:
        raise ValueError(f"heatmap ({h.size} voxels) and target ({t.size} voxels) differ in size.")
    m = np.ones_like(h) if mask is None else _np(mask).reshape(-1)
    if m.shape != h.shape:
        raise ValueError(f"mask ({m.size} voxels) and heatmap ({h.size} voxels) differ in size.")
    keep = np.isfinite(h) & np.isfinite(t) & (m > 0)
    h, t, m = h[keep], t[keep], m[keep]
    k = float(num_members)
    pos = np.clip(h, 0.0, None) * k
    base = np.floor(pos + 1e-9).astype(np.int64)
    xi = np.clip(pos - base, 0.0, 1.0)
    xi[xi < 1e-9] = 0.0
    size = max(int(num_members), int(base.max(initial=0)) + 1) + 1
    hc = np.clip(h, 0.0, None)

    def acc(values: np.ndarray) -> np.ndarray:
        out = np.bincount(base, weights=values * (1 - xi), minlength=size)
        out += np.bincount(base + 1, weights=values * xi, minlength=size)[:size]
        return out[:size]

    return ParzenCurve(np.arange(size) / k, acc(m), acc(m * t), acc(m * hc))


def union_intersection_counts(
    heatmap: Any, target: Any, union_threshold: float = 0.0, intersection_threshold: float = 0.99
) -> dict[str, float]:
    """Voxel counts behind the union sensitivity / intersection precision (sum them over images to pool).

    Union ``U = {h > union_threshold}`` (0: any member votes), intersection ``I = {h >= intersection_threshold}``
    (0.99: every member, with the reference's tolerance for coefficients summing to slightly less than 1).

    Returns:
        ``{"union_tp": |U & gt|, "foreground": |gt|, "intersection_tp": |I & gt|, "intersection": |I|}`` (a soft
        target counts fractionally).
    """
    h = _np(heatmap)
    t = _np(target)
    if h.shape != t.shape:
        raise ValueError(f"heatmap {h.shape} and target {t.shape} must have the same shape.")
    u = h > union_threshold
    i = h >= intersection_threshold
    return {
        "union_tp": float(t[u].sum()),
        "foreground": float(t.sum()),
        "intersection_tp": float(t[i].sum()),
        "intersection": float(i.sum()),
    }


def union_sensitivity_intersection_precision(counts: dict[str, float]) -> tuple[float, float]:
    """Pooled ``(sens(U), prec(I))`` from summed :func:`union_intersection_counts` (Table 1 of the paper).

    ``sens = sum |U & gt| / sum |gt|`` and ``prec = sum |I & gt| / sum |I|``: voxel ratios pooled over every image
    (the reference ``compute_global_sens_prec_UQ.py``), NaN when the denominator is 0.
    """
    sens = counts["union_tp"] / counts["foreground"] if counts["foreground"] > 0 else float("nan")
    prec = counts["intersection_tp"] / counts["intersection"] if counts["intersection"] > 0 else float("nan")
    return sens, prec


def binary_dice(pred: Any, target: Any) -> np.ndarray:
    """Dice ``2 sum(s p) / (sum s + sum p)`` per leading index (``(B, *S)`` -> ``(B,)``); 1.0 when both are empty.

    ``target`` may be soft (then it is the Dice against the soft label); ``pred`` is binarised (non-zero).
    """
    p = (_np(pred) != 0).astype(np.float64)
    s = _np(target)
    p, s = p.reshape(p.shape[0], -1), s.reshape(s.shape[0], -1)
    tot = p.sum(1) + s.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, 2 * (p * s).sum(1) / np.where(tot > 0, tot, 1), 1.0)


def dice_estimate_agreement(estimated: Any, true: Any) -> dict[str, float]:
    """Agreement of estimated and true per-image Dice (Fig. 4 top): Pearson r, mean absolute error, mean bias.

    Pairs with a NaN are dropped; r is NaN with fewer than 2 pairs or a constant side.

    Returns:
        ``{"pearson_r", "mae", "bias" (mean of estimated - true), "n"}``.
    """
    e, t = _np(estimated).reshape(-1), _np(true).reshape(-1)
    ok = np.isfinite(e) & np.isfinite(t)
    e, t = e[ok], t[ok]
    n = int(e.size)
    if n == 0:
        return {"pearson_r": float("nan"), "mae": float("nan"), "bias": float("nan"), "n": 0}
    r = float("nan")
    if n >= 2 and e.std() > 0 and t.std() > 0:
        r = float(np.corrcoef(e, t)[0, 1])
    return {"pearson_r": r, "mae": float(np.abs(e - t).mean()), "bias": float((e - t).mean()), "n": n}


def trainee_error_heatmap_values(raters: Any, rater_valid: Any, heatmap: Any) -> dict[str, list[np.ndarray]]:
    """Heatmap values in each rater's errors against the others (Fig. 4 bottom, adapted to multi-rater data).

    Each valid rater ``r`` in turn plays the trainee; the reference is the strict majority of the OTHER valid raters
    (``mean > 0.5``; a tie counts as background); the trainee's false positives are voxels it marks and the
    reference does not, its false negatives the reverse. Needs >= 2 valid raters (with 2, the other rater is the
    reference).

    Args:
        raters: ``(R, *S)`` binary masks of one structure of one image.
        rater_valid: ``(R,)`` booleans (None: all valid).
        heatmap: ``(*S)`` heatmap.

    Returns:
        ``{"fp": [values of h in rater r's FP, per valid rater], "fn": [...]}`` (empty lists with < 2 raters).
    """
    r = _np(raters) != 0
    h = _np(heatmap)
    valid = np.ones(r.shape[0], bool) if rater_valid is None else _np(rater_valid, bool).reshape(-1)
    if r.shape[1:] != h.shape or valid.size != r.shape[0]:
        raise ValueError(f"raters {r.shape}, rater_valid {valid.shape} and heatmap {h.shape} do not fit.")
    idx = np.flatnonzero(valid)
    out: dict[str, list[np.ndarray]] = {"fp": [], "fn": []}
    if idx.size < 2:
        return out
    for j in idx:
        others = r[[i for i in idx if i != j]].mean(0) > 0.5
        out["fp"].append(h[r[j] & ~others])
        out["fn"].append(h[~r[j] & others])
    return out


def quantile_summary(values: Any, quantiles: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9)) -> dict[str, float]:
    """``{"n", "mean", "q10", "q25", ...}`` of pooled values (NaN for an empty set): a box plot as numbers."""
    v = np.concatenate([_np(x).reshape(-1) for x in values]) if isinstance(values, list) else _np(values).reshape(-1)
    out: dict[str, float] = {"n": float(v.size), "mean": float(v.mean()) if v.size else float("nan")}
    for q in quantiles:
        out[f"q{round(q * 100):02d}"] = float(np.quantile(v, q)) if v.size else float("nan")
    return out
