"""Per-structure uncertainty summaries of one inference: what the MONAI Label result JSON carries.

Only torch and :mod:`monai_lexu.metrics` are needed, so the bundle's own inference outputs can be summarised by the
same function (the real-server tests compare the two).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from monai_lexu.metrics.estimated_dice import estimated_dice

__all__ = ["THRESHOLD", "total_uncertainty", "uncertainty_summary"]

THRESHOLD = 0.5
"""Probability at which a voxel belongs to a structure (the bundles' label-map threshold)."""


def uncertainty_summary(
    prob: torch.Tensor | np.ndarray,
    unc: torch.Tensor | np.ndarray,
    structures: Sequence[str],
    voxel_volume_mm3: float | None = None,
    threshold: float = THRESHOLD,
) -> dict[str, dict[str, Any]]:
    """Summaries of the probability and uncertainty maps of one image, per structure.

    For structure ``l`` with probability map ``h = prob[l]``, uncertainty map ``u = unc[l]`` and mask
    ``m = h >= threshold`` (the structure's own sigmoid channel; structures may overlap, e.g. cup inside disc):

    - ``uncertainty_sum`` = ``sum(u)`` over the image (what the active-learning strategy ranks by, summed over
      structures by :func:`total_uncertainty`); ``uncertainty_mean`` = ``mean(u)`` over the image;
      ``uncertainty_mean_in_structure`` = mean of ``u`` over ``m`` (0.0 when ``m`` is empty);
    - ``volume_voxels`` = ``|m|``; ``volume_mm3`` = ``|m|`` times the voxel volume (``None`` if unknown; for a 2D
      image it is an area in mm^2 when the pixel size is known);
    - ``estimated_dice`` = :func:`monai_lexu.metrics.estimated_dice` of ``h`` and ``m`` (the Dice the map expects for
      this mask, no ground truth needed; 1.0 for an empty mask and a zero map).

    Args:
        prob: probabilities ``(L, *S)`` in [0, 1].
        unc: uncertainties ``(L, *S)``, same shape.
        structures: the L structure names, in channel order.
        voxel_volume_mm3: volume (area in 2D) of one voxel in mm^3; ``None`` leaves ``volume_mm3`` out.
        threshold: mask threshold.

    Returns:
        ``{structure: {"uncertainty_sum", "uncertainty_mean", "uncertainty_mean_in_structure", "volume_voxels",
        "volume_mm3", "estimated_dice"}}`` with plain Python numbers (JSON-ready).

    Raises:
        ValueError: shapes differ or the channel count is not ``len(structures)``.
    """
    p = torch.as_tensor(np.asarray(prob) if not isinstance(prob, torch.Tensor) else prob).detach().double().cpu()
    u = torch.as_tensor(np.asarray(unc) if not isinstance(unc, torch.Tensor) else unc).detach().double().cpu()
    if p.shape != u.shape:
        raise ValueError(f"uncertainty_summary: prob {tuple(p.shape)} and unc {tuple(u.shape)} differ")
    if p.shape[0] != len(structures):
        raise ValueError(f"uncertainty_summary: {p.shape[0]} channels but {len(structures)} structures {structures}")
    mask = p >= threshold
    dice = estimated_dice(p[None], mask[None])[0]
    out: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(structures):
        n = int(mask[i].sum())
        out[str(name)] = {
            "uncertainty_sum": float(u[i].sum()),
            "uncertainty_mean": float(u[i].mean()),
            "uncertainty_mean_in_structure": float(u[i][mask[i]].mean()) if n else 0.0,
            "volume_voxels": n,
            "volume_mm3": None if voxel_volume_mm3 is None else float(n * voxel_volume_mm3),
            "estimated_dice": float(dice[i]),
        }
    return out


def total_uncertainty(summary: Mapping[str, Mapping[str, Any]]) -> float:
    """The image's summed uncertainty: ``uncertainty_sum`` added over its structures."""
    return float(sum(float(s["uncertainty_sum"]) for s in summary.values()))
