"""Correlation of model uncertainty with expert disagreement: SR and DC across images, NCC per image (LEXU Table 2).

Image-level figures (Spearman rank correlation SR, distance correlation DC) correlate, over a whole test set, the
per-image sums of the model's uncertainty map with the per-image sums of the rater-variance map, separately for
every structure. The pixel-level figure (normalised cross-correlation NCC) is a Pearson correlation between the two
maps of one image, averaged over images.

SR and DC are statistics over a SAMPLE of images: the functions here compute them from 2 images on (below that they
are undefined), but a rank correlation of 3 or 4 points takes only a handful of values (with 3 images SR is one of
-1, -0.5, 0.5, 1) and says nothing. The evaluation report therefore shows them only over at least
:data:`MIN_CASES_FOR_CORRELATION` (5) images; over fewer, its tables print "n too small" and its JSON holds null and
the number of images (:mod:`monai_lexu.report.evaluation`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from monai.metrics.metric import CumulativeIterationMetric
from monai.utils import MetricReduction

from monai_lexu.metrics.utils import PerImageMetric, as_work_tensor, check_same_shape, image_scores

__all__ = [
    "DCOR_DIRECT_MAX",
    "MIN_CASES_FOR_CORRELATION",
    "spearman_correlation",
    "distance_correlation",
    "normalized_cross_correlation",
    "SpearmanCorrelationMetric",
    "DistanceCorrelationMetric",
    "NormalizedCrossCorrelationMetric",
]

MIN_CASES_FOR_CORRELATION = 5
"""Fewest images over which the evaluation report shows a correlation across images (SR, DC); fewer: "n too small"."""

_NAN_POLICIES = ("propagate", "omit")


def _paired_scores(y_pred: Any, y: Any, nan_policy: str) -> tuple[torch.Tensor, torch.Tensor]:
    if nan_policy not in _NAN_POLICIES:
        raise ValueError(f"`nan_policy` must be one of {_NAN_POLICIES}, got {nan_policy!r}.")
    sp, sy = image_scores(y_pred, "y_pred"), image_scores(y, "y")
    if sp.shape != sy.shape:
        raise ValueError(
            f"`y_pred` and `y` must give the same (N, L) image scores, got {tuple(sp.shape)} and {tuple(sy.shape)}."
        )
    return sp.cpu(), sy.cpu()


def _per_structure(sp: torch.Tensor, sy: torch.Tensor, nan_policy: str) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """Per structure, the two score vectors to correlate, or None when the result must be NaN."""
    out: list[tuple[np.ndarray, np.ndarray] | None] = []
    for c in range(sp.shape[1]):
        a, b = sp[:, c].numpy(), sy[:, c].numpy()
        finite = np.isfinite(a) & np.isfinite(b)
        if not finite.all():
            if nan_policy == "propagate":
                out.append(None)
                continue
            a, b = a[finite], b[finite]
        out.append((a, b) if a.shape[0] >= 2 else None)
    return out


def spearman_correlation(
    y_pred: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    nan_policy: str = "propagate",
    return_pvalue: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Image-level Spearman rank correlation (SR) between model uncertainty and rater disagreement.

    Definition: for each structure l, ``s_pred[n] = sum_pixels y_pred[n, l]`` and ``s_gt[n] = sum_pixels y[n, l]``
    over the N images; SR_l = ``scipy.stats.spearmanr(s_pred, s_gt).statistic`` (Pearson correlation of the ranks,
    ties get average ranks). This is the grader_soup definition (variance sums, per structure, across the test set).
    SR is symmetric in its arguments and invariant to any strictly increasing transform of either score.

    Degenerate inputs:
        - constant scores of either map (e.g. no image has any rater disagreement): NaN (rank correlation undefined);
        - fewer than 2 images (after NaN removal with ``nan_policy="omit"``): NaN;
        - NaN/inf scores: ``"propagate"`` (default) gives NaN for that structure, ``"omit"`` drops those images.

    Args:
        y_pred: model uncertainty maps (N, L, *S), e.g. the variance over heads; or image scores (N, L).
        y: rater-variance maps (N, L, *S) (the ``rater_var`` of the data contract); or image scores (N, L).
        nan_policy: ``"propagate"`` or ``"omit"``.
        return_pvalue: also return scipy's two-sided p-values.

    Returns:
        SR per structure, float32 tensor (L,); with ``return_pvalue`` a tuple ``(sr, pvalue)``.
    """
    from scipy.stats import spearmanr  # lazy: scipy.stats is slow to import

    sp, sy = _paired_scores(y_pred, y, nan_policy)
    stat = torch.full((sp.shape[1],), float("nan"), dtype=torch.float64)
    pval = stat.clone()
    for c, pair in enumerate(_per_structure(sp, sy, nan_policy)):
        if pair is None:
            continue
        a, b = pair
        if np.ptp(a) == 0 or np.ptp(b) == 0:  # constant: undefined (scipy would warn and return NaN)
            continue
        res = spearmanr(a, b)
        stat[c] = float(res.statistic)
        pval[c] = float(res.pvalue)
    stat = stat.clamp(-1.0, 1.0).float()
    return (stat, pval.float()) if return_pvalue else stat


def distance_correlation(
    y_pred: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray, nan_policy: str = "propagate"
) -> torch.Tensor:
    """Image-level distance correlation (DC, Szekely, Rizzo & Bakirov 2007) between uncertainty and disagreement.

    Definition: with the per-image sums ``s_pred``, ``s_gt`` of :func:`spearman_correlation`, pairwise distances
    ``a_ij = |s_pred_i - s_pred_j|``, ``b_ij = |s_gt_i - s_gt_j|``, double-centred ``A``, ``B`` (subtract row and
    column means, add the grand mean), the V-statistics ``dCov^2 = mean(A*B)``, ``dVar_x^2 = mean(A*A)``,
    ``dVar_y^2 = mean(B*B)`` and ``DC = sqrt(dCov^2 / sqrt(dVar_x^2 * dVar_y^2))`` in [0, 1]. Computed by that
    explicit formula up to :data:`DCOR_DIRECT_MAX` images (equal to ``dcor.distance_correlation``, default
    ``exponent=1``, within 1e-9; tested), above with ``dcor`` (imported then, ~7 s on first use).

    Difference from the reference code: grader_soup used ``statsmodels.stats.dist_dependence_measures.
    distance_correlation``. Its formula is the same biased V-statistic, ``dcov / sqrt(dvar_x * dvar_y)`` with
    ``dcov = sqrt(mean(A*B))`` etc., i.e. the same number as dcor's default (checked numerically in the tests
    against an explicit O(n^2) implementation of that formula). It is not dcor's bias-corrected
    ``u_distance_correlation_sqr``. The only difference is a constant score vector: statsmodels divides 0 by 0
    (NaN), dcor and Szekely's definition give 0; this function follows dcor (0).

    Degenerate inputs: constant scores: 0; fewer than 2 images: NaN; NaN/inf: as ``nan_policy`` (see
    :func:`spearman_correlation`).

    Args:
        y_pred: model uncertainty maps (N, L, *S) or image scores (N, L).
        y: rater-variance maps (N, L, *S) or image scores (N, L).
        nan_policy: ``"propagate"`` or ``"omit"``.

    Returns:
        DC per structure, float32 tensor (L,).
    """
    sp, sy = _paired_scores(y_pred, y, nan_policy)
    pairs = _per_structure(sp, sy, nan_policy)
    out = torch.full((sp.shape[1],), float("nan"), dtype=torch.float64)
    for c, pair in enumerate(pairs):
        if pair is None:
            continue
        if pair[0].shape[0] <= DCOR_DIRECT_MAX:
            out[c] = _distance_correlation_direct(pair[0], pair[1])
        else:
            import dcor  # lazy: numba compilation, several seconds; only for large samples

            out[c] = float(dcor.distance_correlation(pair[0], pair[1]))
    return out.float()


DCOR_DIRECT_MAX = 2048
"""Up to this many images :func:`distance_correlation` uses the explicit O(n^2) formula (float64, two n x n
matrices: 32 MiB at 2048); above, ``dcor``'s O(n log n) method (imported then; ~7 s the first time)."""


def _distance_correlation_direct(a: np.ndarray, b: np.ndarray) -> float:
    """Szekely's biased distance correlation of two 1-D samples (the V-statistics of :func:`distance_correlation`),
    explicit O(n^2) in float64; 0 when either sample is constant (as ``dcor``)."""

    def centred(x: np.ndarray) -> np.ndarray:
        d = np.abs(x[:, None] - x[None, :])
        row = d.mean(axis=1)
        return d - row[:, None] - row[None, :] + row.mean()

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    xa, yb = centred(x), centred(y)
    dcov2 = float(np.mean(xa * yb))
    dvar = float(np.mean(xa * xa)) * float(np.mean(yb * yb))
    if dvar <= 0.0:
        return 0.0
    return float(np.sqrt(max(dcov2, 0.0) / np.sqrt(dvar)))


def normalized_cross_correlation(
    y_pred: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    equal_constant_value: float = float("nan"),
) -> torch.Tensor:
    """Pixel-level normalised cross-correlation (NCC) of two maps, per image and structure.

    Definition (grader_soup, ``qual_analysis.ipynb``): with the pixels of one (image, structure) flattened,
    ``NCC = sum_i z(x)_i z(g)_i / (N - 1)`` with ``z = (v - mean) / std(ddof=1)``, which is exactly Pearson's r:
    ``sum (x - mx)(g - mg) / sqrt(sum (x - mx)^2 * sum (g - mg)^2)``. Computed in float64 and clipped to [-1, 1].
    It is invariant to a positive affine rescaling of either map (so biased vs unbiased variance maps give the
    same NCC) and changes sign under a negative one.

    Difference from ValUES (``evaluation/metrics/ncc.py``): ValUES divides by N instead of N - 1 while using
    ``std(ddof=1)``, i.e. reports ``(N - 1) / N`` times this value (negligible for images, N ~ 6.5e4).

    Degenerate inputs (the reference code does not guard them and produces NaN/inf):
        - either map constant over the image (``max == min``; e.g. all raters agree, variance map all zero):
          NaN, so the image is excluded from the mean (:class:`NormalizedCrossCorrelationMetric` uses a nanmean
          and reports how many images it excluded);
        - both maps constant and equal (e.g. no disagreement and the model predicts exactly zero uncertainty):
          ``equal_constant_value`` (default NaN as well, since r is undefined; pass 1.0 to count it as perfect);
        - NaN anywhere in either map: NaN.

    Args:
        y_pred: model uncertainty maps (B, L, *S).
        y: reference maps, e.g. rater variance (B, L, *S).
        equal_constant_value: value for two constant, equal maps.

    Returns:
        float32 tensor (B, L).
    """
    p, g = as_work_tensor(y_pred, y)
    check_same_shape(p, g)
    p, g = p.flatten(2), g.to(p.device).flatten(2)
    # per-row min and max, in the input dtype (exact): constant maps and NaN rows (NaN anywhere makes the minimum NaN)
    (p_min, p_max), (g_min, g_max) = _row_aminmax(p), _row_aminmax(g)
    # centred in float64 (float32 centring loses digits when r is near 0): the float64 means from float64 sums of the
    # input, and one promoting subtraction per map (no separate float64 copy)
    n = p.shape[-1]
    pc = torch.sub(p, p.sum(-1, dtype=torch.float64, keepdim=True) / n)
    gc = torch.sub(g, g.sum(-1, dtype=torch.float64, keepdim=True) / n)

    def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # per-row dot products (3.5x cheaper than bmm on CPU)
        return torch.einsum("bln,bln->bl", a, b)

    denom = torch.sqrt(dot(pc, pc) * dot(gc, gc))
    r = dot(pc, gc) / torch.where(denom > 0, denom, torch.ones_like(denom))
    r = r.clamp(-1.0, 1.0)
    p_const, g_const = p_max == p_min, g_max == g_min
    nan = torch.full_like(r, float("nan"))
    r = torch.where(p_const | g_const | (denom == 0), nan, r)
    equal = p_const & g_const & (p[..., 0] == g[..., 0])
    r = torch.where(equal, torch.full_like(r, equal_constant_value), r)
    has_nan = torch.isnan(p_min) | torch.isnan(g_min)
    return torch.where(has_nan, nan, r).float()


def _row_aminmax(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimum and maximum over the last dim of ``(B, L, N)`` (NaN in a row makes both NaN). ``amin`` + ``amax``
    (vectorised): ``torch.aminmax(x, dim=-1)`` is 20x slower on CPU."""
    return x.amin(-1), x.amax(-1)


class _ImageScoreCorrelation(CumulativeIterationMetric):
    """Buffers per-image scores (B, L) of both inputs; the correlation is computed over all images in aggregate()."""

    def __init__(self, nan_policy: str = "propagate") -> None:
        super().__init__()
        if nan_policy not in _NAN_POLICIES:
            raise ValueError(f"`nan_policy` must be one of {_NAN_POLICIES}, got {nan_policy!r}.")
        self.nan_policy = nan_policy

    def _compute_tensor(  # type: ignore[override]
        self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any
    ) -> list[torch.Tensor]:
        """Image scores of one iteration.

        Args:
            y_pred: uncertainty maps (B, L, *S) or scores (B, L).
            y: rater-variance maps (B, L, *S) or scores (B, L).

        Returns:
            ``[pred_scores (B, L), y_scores (B, L)]`` (float64), appended to the two buffers.
        """
        if y is None:
            raise ValueError(f"{self.__class__.__name__} needs `y` (rater-variance maps or scores).")
        sp, sy = _paired_scores(y_pred, y, self.nan_policy)
        return [sp, sy]

    def _scores(self) -> tuple[torch.Tensor, torch.Tensor]:
        data = self.get_buffer()
        if data is None:
            raise ValueError(f"{self.__class__.__name__}.aggregate() called before any data was added.")
        return data[0], data[1]


class SpearmanCorrelationMetric(_ImageScoreCorrelation):
    """Cumulative SR: buffers per-image uncertainty and disagreement sums, correlates all images in ``aggregate()``.

    Calling the metric returns ``[pred_scores (B, L), y_scores (B, L)]`` for the iteration; ``aggregate()`` returns
    :func:`spearman_correlation` over every image seen, a float32 tensor (L,).

    Args:
        nan_policy: see :func:`spearman_correlation`.
    """

    def aggregate(self) -> torch.Tensor:  # type: ignore[override]
        """SR per structure over all images seen, (L,)."""
        sp, sy = self._scores()
        return spearman_correlation(sp, sy, nan_policy=self.nan_policy)  # type: ignore[return-value]


class DistanceCorrelationMetric(_ImageScoreCorrelation):
    """Cumulative DC: buffers per-image sums, computes :func:`distance_correlation` over all images in aggregate().

    Args:
        nan_policy: see :func:`spearman_correlation`.
    """

    def aggregate(self) -> torch.Tensor:  # type: ignore[override]
        """DC per structure over all images seen, (L,)."""
        sp, sy = self._scores()
        return distance_correlation(sp, sy, nan_policy=self.nan_policy)


class NormalizedCrossCorrelationMetric(PerImageMetric):
    """Cumulative NCC: per-image Pearson r of the maps, aggregated as a nanmean over images per structure.

    Images whose NCC is undefined (a constant map) are excluded; :meth:`num_excluded` gives their count per
    structure and ``get_not_nans=True`` makes ``aggregate()`` return the number of images used as well.

    Args:
        equal_constant_value: see :func:`normalized_cross_correlation`.
        reduction: MONAI reduction of the (N, L) per-image values, default ``"mean_batch"`` -> (L,).
        get_not_nans: return ``(metric, not_nans)`` from ``aggregate()``.
    """

    def __init__(
        self,
        equal_constant_value: float = float("nan"),
        reduction: MetricReduction | str = MetricReduction.MEAN_BATCH,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(reduction=reduction, get_not_nans=get_not_nans)
        self.equal_constant_value = equal_constant_value

    def _compute_tensor(  # type: ignore[override]
        self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any
    ) -> torch.Tensor:
        """NCC of one iteration: y_pred, y (B, L, *S) -> (B, L)."""
        if y is None:
            raise ValueError("NormalizedCrossCorrelationMetric needs `y` (reference maps).")
        return normalized_cross_correlation(y_pred, y, equal_constant_value=self.equal_constant_value)
