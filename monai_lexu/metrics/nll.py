"""Negative log-likelihood of the prediction under the soft rater label (LEXU Table 2, NLL column)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from monai.utils import MetricReduction

from monai_lexu.contract import check_unit_range
from monai_lexu.metrics.utils import (
    PerImageMetric,
    as_float_tensor,
    as_work_tensor,
    check_same_shape,
    mask_as,
    threshold_for,
)

__all__ = [
    "negative_log_likelihood",
    "negative_log_likelihood_reference",
    "NegativeLogLikelihoodMetric",
    "NegativeLogLikelihoodReferenceMetric",
]


def negative_log_likelihood(
    y_pred: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray, eps: float = 1e-5
) -> torch.Tensor:
    """Binary (per-structure) negative log-likelihood of a probability map under a soft label.

    Definition: ``NLL = -mean_pixels [ y log(p) + (1 - y) log(1 - p) ]`` with ``p = clamp(y_pred, eps, 1 - eps)``,
    natural log, per image and structure. Each structure is an independent sigmoid channel, so this is the binary
    cross-entropy of the contract's probability map (mean of the heads' sigmoids) against the soft label (mean of the
    valid raters), which equals the NLL of every valid rater's binary mask averaged over raters. It is a proper
    scoring rule: for every pixel the minimum over p is at ``p = y`` (exactly, for ``eps <= y <= 1 - eps``).

    Difference from the reference code (grader_soup / LayerEnsembles ``get_uncertainty_metrics``): the reference
    softmaxes the L structure logits of each head against each other (disc vs cup as if they were exclusive
    classes), averages over heads, and scores only the positive terms ``-mean_pixels sum_c y_c log(p_c + 1e-5)``,
    one number per image. That is not a likelihood of the multi-label sigmoid model; use
    :func:`negative_log_likelihood_reference` to reproduce the paper's numbers. Here eps clamps instead of being
    added (keeps the minimum exactly at p = y). Values are not comparable to the paper's NLL column.

    Degenerate inputs: p in {0, 1} costs at most ``-log(eps)`` per pixel; NaN in an (image, structure) -> NaN.

    Args:
        y_pred: predicted probabilities (B, L, *S).
        y: soft label (B, L, *S) in [0, 1].
        eps: clamping margin.

    Returns:
        float32 tensor (B, L).

    Raises:
        ValueError: on a shape mismatch or values outside [0, 1].
    """
    p, g = as_work_tensor(y_pred, y)
    check_same_shape(p, g)
    check_unit_range(p, "y_pred")
    check_unit_range(g, "y")
    g = g.to(p.device)
    if p.dtype == torch.float64:
        p = p.clamp(eps, 1.0 - eps)
        ll = g * torch.log(p) + (1.0 - g) * torch.log1p(-p)
        return (-ll.flatten(2).mean(-1)).float()
    # float32: logs of the float32 values (exact inputs, ~1 ulp results), the clamped pixels with the float64
    # constants log(eps), log(1 - eps) (clamping in float32 would move 1 - eps by 1e-8, 2e-5 relative in log(eps)),
    # sums in float64
    lo, hi = eps, 1.0 - eps
    lo32, hi32 = threshold_for(lo, p.dtype, "<"), threshold_for(hi, p.dtype, ">")
    pmin, pmax = (float(v) for v in torch.aminmax(p)) if p.numel() else (lo32, hi32)
    if pmin >= lo32 and pmax <= hi32:  # no pixel clamped (NaN compares False: the general path keeps it)
        ll = torch.lerp(torch.log1p(-p), torch.log(p), g)  # g log p + (1 - g) log(1 - p)
    else:
        # clamp to the float32 values next to eps / 1 - eps, then move the clamped pixels' logs onto the float64
        # constants by adding (constant - log at the float32 clamp) times a 0/1 mask: arithmetic instead of
        # torch.where (not vectorised for bool masks on CPU); equal to the constants within 1 float32 ulp
        pc = p.clamp(lo32, hi32)
        log_p, log_q = torch.log(pc), torch.log1p(-pc)
        for mask, value in ((p < lo32, lo32), (p > hi32, hi32)):
            if bool(mask.any()):
                m = mask_as(mask, p.dtype)
                v = torch.tensor(value, dtype=p.dtype)
                const = lo if value == lo32 else hi
                log_p.add_(m, alpha=math.log(const) - float(torch.log(v)))
                log_q.add_(m, alpha=math.log1p(-const) - float(torch.log1p(-v)))
        ll = torch.lerp(log_q, log_p, g)
    return (-ll.flatten(2).sum(-1, dtype=torch.float64) / ll.flatten(2).shape[-1]).float()


def negative_log_likelihood_reference(
    head_logits: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray, skip_first: int = 0, eps: float = 1e-5
) -> torch.Tensor:
    """NLL exactly as the LEXU reference code computes it (softmax across structures), for paper comparisons.

    Definition: ``q_k = softmax_c(z_k)`` over the L structure channels of head k, ``q = mean_{k >= skip_first} q_k``
    and ``NLL = -mean_pixels sum_c y_c log(q_c + eps)`` per image, natural log. LEXU uses ``skip_first=0`` (all
    5 heads); the LE baseline of the paper skips 6 of its 10 heads.

    This treats the L independent sigmoid channels as mutually exclusive classes and ignores the ``(1 - y)`` terms,
    so it is not the likelihood of the multi-label model (for L = 1 the softmax is 1 and the value is 0 whatever the
    logits); see :func:`negative_log_likelihood` for the per-structure binary version.

    Args:
        head_logits: logits of K heads, head-major (B, K*L, *S) as in the network contract (channel k*L + l is head
            k, structure l), or already split (B, K, L, *S).
        y: soft label (B, L, *S).
        skip_first: number of leading heads to drop (0 <= skip_first < K).
        eps: added inside the log.

    Returns:
        float32 tensor (B,).

    Raises:
        ValueError: if the channel count is not a multiple of L or ``skip_first`` leaves no head.
    """
    z, g = as_float_tensor(head_logits, "head_logits"), as_float_tensor(y, "y")
    if g.ndim < 3:
        raise ValueError(f"`y` must have shape (B, L, *spatial), got {tuple(g.shape)}.")
    n_struct = g.shape[1]
    if z.ndim == g.ndim:
        if z.shape[0] != g.shape[0] or z.shape[2:] != g.shape[2:] or z.shape[1] % n_struct:
            raise ValueError(
                f"`head_logits` must have shape (B, K*L, *S) matching `y` {tuple(g.shape)} (L={n_struct}), "
                f"got {tuple(z.shape)}."
            )
        z = z.reshape(z.shape[0], z.shape[1] // n_struct, n_struct, *z.shape[2:])
    elif z.ndim != g.ndim + 1 or z.shape[:1] + z.shape[2:] != g.shape:
        raise ValueError(
            f"`head_logits` must have shape (B, K*L, *S) or (B, K, L, *S) matching `y` {tuple(g.shape)}, "
            f"got {tuple(z.shape)}."
        )
    n_heads = z.shape[1]
    if not 0 <= skip_first < n_heads:
        raise ValueError(f"`skip_first` must be in [0, {n_heads - 1}] for {n_heads} heads, got {skip_first}.")
    q = torch.softmax(z[:, skip_first:], dim=2).mean(dim=1)
    g = g.to(q.device)
    return (-(g * torch.log(q + eps)).sum(1).flatten(1).mean(-1)).float()


class NegativeLogLikelihoodMetric(PerImageMetric):
    """Cumulative binary NLL: per-image :func:`negative_log_likelihood`, mean over images per structure.

    Args:
        eps: see :func:`negative_log_likelihood`.
        reduction: MONAI reduction of the (N, L) per-image values, default ``"mean_batch"`` -> (L,).
        get_not_nans: return ``(metric, not_nans)`` from ``aggregate()``.
    """

    def __init__(
        self,
        eps: float = 1e-5,
        reduction: MetricReduction | str = MetricReduction.MEAN_BATCH,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(reduction=reduction, get_not_nans=get_not_nans)
        self.eps = eps

    def _compute_tensor(  # type: ignore[override]
        self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any
    ) -> torch.Tensor:
        """NLL of one iteration: y_pred, y (B, L, *S) -> (B, L)."""
        if y is None:
            raise ValueError("NegativeLogLikelihoodMetric needs `y` (soft label).")
        return negative_log_likelihood(y_pred, y, eps=self.eps)


class NegativeLogLikelihoodReferenceMetric(PerImageMetric):
    """Cumulative reference-code NLL (:func:`negative_log_likelihood_reference`): one value per image.

    ``y_pred`` are the head logits (B, K*L, *S); the buffer is (N, 1) and the default reduction ``"mean"`` gives
    the paper's single NLL number (a (1,) tensor, as MONAI's "mean" reduction returns).

    Args:
        skip_first: heads to drop, see :func:`negative_log_likelihood_reference`.
        eps: added inside the log.
        reduction: MONAI reduction of the (N, 1) per-image values.
        get_not_nans: return ``(metric, not_nans)`` from ``aggregate()``.
    """

    def __init__(
        self,
        skip_first: int = 0,
        eps: float = 1e-5,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(reduction=reduction, get_not_nans=get_not_nans)
        self.skip_first = skip_first
        self.eps = eps

    def _compute_tensor(  # type: ignore[override]
        self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any
    ) -> torch.Tensor:
        """Reference NLL of one iteration: head logits (B, K*L, *S), y (B, L, *S) -> (B, 1)."""
        if y is None:
            raise ValueError("NegativeLogLikelihoodReferenceMetric needs `y` (soft label).")
        return negative_log_likelihood_reference(y_pred, y, skip_first=self.skip_first, eps=self.eps)[:, None]
