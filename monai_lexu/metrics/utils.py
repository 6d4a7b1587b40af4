"""Shared helpers of the uncertainty metrics: input conversion, shape checks and NaN-aware reductions."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from monai.metrics.metric import CumulativeIterationMetric
from monai.metrics.utils import do_metric_reduction
from monai.utils import MetricReduction

__all__ = [
    "as_float_tensor",
    "as_work_tensor",
    "check_same_shape",
    "count_true",
    "mask_as",
    "image_scores",
    "nan_aware_reduction",
    "nan_rows",
    "threshold_for",
    "PerImageMetric",
]


def as_float_tensor(x: Any, name: str, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Convert a tensor, numpy array or nested sequence to a floating torch tensor.

    Args:
        x: the input; a torch tensor keeps its device.
        name: argument name used in error messages.
        dtype: floating dtype of the result (float64 by default so that sums over large maps stay exact).

    Returns:
        ``x`` as a ``dtype`` tensor (detached).

    Raises:
        ValueError: if ``x`` cannot be converted to a numeric tensor.
    """
    if isinstance(x, torch.Tensor):
        return x.detach().to(dtype)
    try:
        return torch.as_tensor(np.asarray(x), dtype=dtype)
    except (TypeError, ValueError) as e:
        raise ValueError(f"`{name}` must be a tensor or array of numbers, got {type(x).__name__}: {e}") from e


def as_work_tensor(*xs: Any, names: str = "y_pred, y") -> list[torch.Tensor]:
    """Convert maps to the metrics' working dtype: float64 if any of them is float64, else float32 (no copy when a map
    already is).

    The metrics compute element-wise in float32 for float32 (and integer / bool) input and accumulate every sum in
    float64: their values equal the former all-float64 computation within 1e-6 relative (tested), thresholds compare
    exactly as in float64 (:func:`threshold_for`), and the working set is half as large.

    Args:
        xs: the maps (tensors, arrays or nested sequences).
        names: their argument names, comma-separated, for error messages.
    """
    labels = [n.strip() for n in names.split(",")] + [f"arg{i}" for i in range(len(xs))]
    wide = any(_dtype_of(x) == torch.float64 for x in xs)
    return [as_float_tensor(x, labels[i], torch.float64 if wide else torch.float32) for i, x in enumerate(xs)]


def _dtype_of(x: Any) -> torch.dtype | None:
    if isinstance(x, torch.Tensor):
        return x.dtype
    if isinstance(x, np.ndarray) and x.dtype == np.float64:
        return torch.float64
    return None


def nan_rows(x: torch.Tensor) -> torch.Tensor:
    """``torch.isnan(x).any(-1)`` in one cheap pass: ``amin`` propagates NaN, so a row holds a NaN iff its minimum is
    NaN (``amin`` over the last dim is vectorised; ``isnan(x).any(-1)`` and ``aminmax`` are 15-40x slower on CPU)."""
    if not x.is_floating_point():
        return torch.zeros(x.shape[:-1], dtype=torch.bool, device=x.device)
    if x.numel() == 0 or x.shape[-1] == 0:
        return torch.isnan(x).any(-1)
    return torch.isnan(x.amin(-1))


def count_true(mask: torch.Tensor) -> torch.Tensor:
    """``torch.count_nonzero(mask, dim=-1)`` of a bool mask (..., N), exact, as int64 (...,).

    A contiguous mask whose rows are whole 64-bit words is counted eight elements at a time (:func:`_packed_count`);
    otherwise as an int32 sum of its uint8 view (``count_nonzero`` compares every element with zero first and is
    4x slower; int32 sums are 2.5x cheaper than int64 and exact below 2^31).
    """
    packed = _packed_count(mask)
    if packed is not None:
        return packed
    dtype = torch.int32 if mask.shape[-1] < 2**31 else torch.int64
    return mask.view(torch.uint8).sum(-1, dtype=dtype).long()


_MAX_LANE_SUM = 255
"""Most 0/1 bytes one uint8 lane of an int64 sum can add up without carrying into the next lane."""


@functools.lru_cache(maxsize=64)
def _word_group(words: int) -> int | None:
    """The largest divisor of ``words`` in [8, 255] (words summed per packed sum), or None."""
    return next((g for g in range(_MAX_LANE_SUM, 7, -1) if words % g == 0), None)


def _packed_count(mask: torch.Tensor) -> torch.Tensor | None:
    """Count a bool mask's true elements per row through its 64-bit words, or None when the layout does not allow it.

    Each row of N bytes (0 or 1) is read as N / 8 int64 words. Summing up to 255 words adds every byte lane
    separately (a lane holds at most 255, so no carry crosses into the next lane): the int64 sums over groups of
    ``g <= 255`` words are vectorised over N / 8 elements instead of a per-element uint8 -> int32 widening of N, and
    the few packed sums are then split back into their bytes (a uint8 view) and added. Exact. 3-5x cheaper on CPU
    for image-sized rows (measured in ``benchmarks/bench_metrics.py``).
    """
    n = mask.shape[-1] if mask.ndim else 0
    if mask.dtype != torch.bool or n < 1024 or n % 8 or not mask.is_contiguous() or mask.storage_offset() % 8:
        return None
    words = n // 8
    group = _word_group(words)
    if group is None:
        return None
    packed = mask.view(torch.uint8).view(torch.int64).view(*mask.shape[:-1], words // group, group).sum(-1)
    return packed.view(torch.uint8).view(*mask.shape[:-1], -1).sum(-1, dtype=torch.int64)


def mask_as(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A bool mask as 0/1 values of ``dtype`` through its uint8 view (a vectorised cast; bool -> float and
    ``float * bool`` products are not vectorised on CPU: ``x * mask_as(m, x.dtype)`` equals ``x * m`` exactly and is
    5-10x cheaper)."""
    return mask.view(torch.uint8).to(dtype)


def threshold_for(t: float, dtype: torch.dtype, op: str) -> float:
    """The threshold ``c`` for which ``x <op> c`` in ``dtype`` equals ``x <op> t`` in exact (float64) arithmetic for
    every ``x`` of ``dtype``.

    A float32 tensor compared with a Python float compares in float32, i.e. with ``t`` rounded to the nearest float32
    (``0.3`` becomes ``0.30000001``), which changes ``x > 0.3`` for ``x = float32(0.3)`` (e.g. a soft label of 3 of
    10 raters). For ``>`` and ``<=`` the right float32 is the largest one ``<= t``, for ``>=`` and ``<`` the smallest
    one ``>= t``.

    Args:
        t: the threshold.
        dtype: the tensor's dtype (float64: ``t`` itself).
        op: ``">"``, ``">="``, ``"<"`` or ``"<="``.
    """
    if dtype == torch.float64:
        return float(t)
    c = np.float32(t)
    if op in (">", "<=") and float(c) > t:
        c = np.nextafter(c, np.float32(-np.inf))
    elif op in (">=", "<") and float(c) < t:
        c = np.nextafter(c, np.float32(np.inf))
    elif op not in (">", ">=", "<", "<="):
        raise ValueError(f"op must be one of >, >=, <, <=, got {op!r}.")
    return float(c)


def check_same_shape(y_pred: torch.Tensor, y: torch.Tensor, min_ndim: int = 3, names: str = "y_pred, y") -> None:
    """Check that two maps share one shape with at least ``min_ndim`` dimensions.

    Args:
        y_pred: first tensor, usually (B, L, *S).
        y: second tensor, same shape.
        min_ndim: minimal number of dimensions (3 = batch, structure and at least one spatial dim).
        names: the two argument names for the error message.

    Raises:
        ValueError: on a shape mismatch or too few dimensions.
    """
    first, second = (n.strip() for n in names.split(","))
    if y_pred.shape != y.shape:
        raise ValueError(
            f"`{first}` and `{second}` must have the same shape, got {tuple(y_pred.shape)} and {tuple(y.shape)}."
        )
    if y_pred.ndim < min_ndim:
        raise ValueError(
            f"`{first}` must have shape (B, L, *spatial) with at least {min_ndim} dims, got {tuple(y_pred.shape)}."
        )


def image_scores(x: Any, name: str) -> torch.Tensor:
    """Reduce maps to image-level scores by summing over the spatial dims.

    Args:
        x: maps (N, L, *S) or already image-level scores (N, L).
        name: argument name used in error messages.

    Returns:
        float64 tensor (N, L): ``x.sum(spatial dims)`` or ``x`` itself when it is 2-D.

    Raises:
        ValueError: if ``x`` has fewer than 2 dims.
    """
    if isinstance(x, torch.Tensor) and x.is_floating_point() and x.ndim > 2:
        # summed in float64 straight from the input dtype (no float64 copy of the maps)
        return x.detach().sum(dim=tuple(range(2, x.ndim)), dtype=torch.float64)
    t = as_float_tensor(x, name)
    if t.ndim < 2:
        raise ValueError(f"`{name}` must have shape (N, L) or (N, L, *spatial), got {tuple(t.shape)}.")
    if t.ndim == 2:
        return t
    return t.sum(dim=tuple(range(2, t.ndim)))


def nan_aware_reduction(
    f: torch.Tensor, reduction: MetricReduction | str = MetricReduction.MEAN_BATCH
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reduce per-(image, structure) values ignoring NaN, like MONAI, but give NaN where nothing is valid.

    MONAI's :func:`monai.metrics.utils.do_metric_reduction` returns 0 for a group that holds only NaN; a metric of
    0 would be a real (bad) score here, so such groups become NaN instead.

    Args:
        f: values (N, L); NaN marks an undefined value (excluded).
        reduction: any :class:`monai.utils.MetricReduction` mode; ``"mean_batch"`` gives one value per structure.

    Returns:
        ``(reduced, not_nans)``: the reduced values and the number of valid entries behind each of them.
    """
    red, not_nans = do_metric_reduction(f.clone(), reduction)
    if MetricReduction(reduction) != MetricReduction.NONE and isinstance(red, torch.Tensor):
        red = torch.where(not_nans > 0, red, torch.full_like(red, float("nan")))
    return red, not_nans


class PerImageMetric(CumulativeIterationMetric):
    """Base of the cumulative metrics whose iteration output is one value per (image, structure).

    Subclasses implement ``_compute_tensor(y_pred, y) -> (B, L)``; ``aggregate()`` reduces everything seen with
    ``reduction`` (default ``"mean_batch"``: a (L,) tensor, the mean over images per structure), skipping NaN
    (undefined) values; a structure with no defined value aggregates to NaN.

    Args:
        reduction: a :class:`monai.utils.MetricReduction` mode.
        get_not_nans: if True, ``aggregate()`` returns ``(metric, not_nans)``.
    """

    chunk_voxels: int = 2**18
    """Voxels per map computed at once: a call with many images is computed a few images at a time (each image is
    independent, so the values are the same) so that the working set stays near the cache size and the cost per
    image does not grow with the batch (measured: 2-3x per image at 50 images per call without it)."""

    def __init__(self, reduction: MetricReduction | str = MetricReduction.MEAN_BATCH, get_not_nans: bool = False):
        super().__init__()
        self.reduction = MetricReduction(reduction)
        self.get_not_nans = get_not_nans

    def __call__(self, y_pred: Any, y: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        if not isinstance(y_pred, torch.Tensor) or y_pred.ndim < 3 or y_pred.shape[0] < 2:
            return super().__call__(y_pred, y, **kwargs)
        step = max(1, self.chunk_voxels // max(1, y_pred[0].numel()))
        if step >= y_pred.shape[0]:
            return super().__call__(y_pred, y, **kwargs)
        parts = [
            super(PerImageMetric, self).__call__(y_pred[i : i + step], None if y is None else y[i : i + step], **kwargs)
            for i in range(0, y_pred.shape[0], step)
        ]
        if isinstance(parts[0], (list, tuple)):
            return [torch.cat([part[j] for part in parts]) for j in range(len(parts[0]))]
        return torch.cat(parts)

    def _buffer(self) -> torch.Tensor:
        data = self.get_buffer()
        if data is None:
            raise ValueError(f"{self.__class__.__name__}.aggregate() called before any data was added.")
        if isinstance(data, list):
            data = data[0]
        return data

    def aggregate(  # type: ignore[override]
        self, reduction: MetricReduction | str | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Reduce all per-image values seen so far.

        Args:
            reduction: overrides ``self.reduction`` for this call.

        Returns:
            The reduced metric ((L,) for ``"mean_batch"``), or ``(metric, not_nans)`` if ``get_not_nans``.
        """
        f, not_nans = nan_aware_reduction(self._buffer(), reduction or self.reduction)
        return (f, not_nans) if self.get_not_nans else f

    def num_excluded(self) -> torch.Tensor:
        """Number of undefined (NaN) per-image values per structure, i.e. images left out of the mean.

        Returns:
            int64 tensor (L,).
        """
        return torch.isnan(self._buffer()).sum(dim=0)
