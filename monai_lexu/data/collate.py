"""Collate multi-rater samples whose rater counts differ."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.data import list_data_collate

__all__ = ["pad_rater_collate"]


def _pad_valid(valid: Any, num_raters: int, target: int, index: int, valid_key: Hashable) -> Any:
    """Pad a ``(R,)`` validity mask with False up to ``target`` (keeps torch/numpy type)."""
    if isinstance(valid, torch.Tensor):
        v = valid.bool().reshape(-1)
    else:
        v = np.asarray(valid, dtype=bool).reshape(-1)
    if v.shape[0] != num_raters:
        raise ValueError(
            f"batch item {index}: {valid_key!r} has {v.shape[0]} entries but the raters hold {num_raters} raters."
        )
    if target == num_raters:
        return v
    if isinstance(v, torch.Tensor):
        return torch.cat([v, torch.zeros(target - num_raters, dtype=torch.bool, device=v.device)])
    return np.concatenate([v, np.zeros(target - num_raters, dtype=bool)])


def _pad_raters(raters: Any, target: int) -> Any:
    """Append ``target - R`` all-zero raters to ``(R, L, *S)`` (a MetaTensor keeps its meta)."""
    num_raters = raters.shape[0]
    if target == num_raters:
        return raters
    shape = (target - num_raters, *raters.shape[1:])
    if isinstance(raters, torch.Tensor):
        return torch.cat([raters, torch.zeros(shape, dtype=raters.dtype, device=raters.device)], dim=0)
    return np.concatenate([raters, np.zeros(shape, dtype=raters.dtype)], axis=0)


def pad_rater_collate(
    batch: Sequence[Any],
    raters_key: Hashable = "raters",
    valid_key: Hashable = "rater_valid",
    names_key: Hashable = "rater_names",
) -> Any:
    """Collate multi-rater samples: pad rater counts to the batch maximum, then MONAI's ``list_data_collate``.

    Each sample's ``raters`` ``(R_i, L, *S)`` gets ``max_i R_i - R_i`` all-zero masks appended and its
    ``rater_valid`` ``(R_i,)`` is padded with False (a sample without ``valid_key`` counts all its raters as valid and
    gets one). A per-rater list of names (``names_key``, e.g. the HECKTOR datalist's ``rater_names``) is padded with
    ``""`` to the same length. Everything else (MetaTensors, meta dicts, strings) collates exactly as in MONAI. Items
    that are lists of dicts (e.g. from ``RandCropByPosNegLabeld(num_samples=n)``) are flattened first, like
    ``list_data_collate``.
    The input samples are not modified (cached datasets stay intact).

    Use it as ``DataLoader(ds, batch_size=4, collate_fn=pad_rater_collate)``; for other key names wrap it with
    ``functools.partial``.

    Args:
        batch: list of sample dicts (or of lists of sample dicts).
        raters_key: key of the ``(R, L, *S)`` rater masks.
        valid_key: key of the ``(R,)`` bool validity mask.
        names_key: key of an optional list of the R rater names.

    Returns:
        the collated batch; ``raters`` ``(B, R_max, L, *S)``, ``rater_valid`` ``(B, R_max)`` bool.

    Raises:
        ValueError: when a sample's validity mask length differs from its rater count, or when the raters differ in
            anything but the rater count (from the underlying collate).
    """
    data = [item for sample in batch for item in sample] if batch and isinstance(batch[0], list) else list(batch)
    if data and all(isinstance(d, Mapping) and raters_key in d for d in data):
        raters = [d[raters_key] for d in data]
        if all(isinstance(r, (torch.Tensor, np.ndarray)) and r.ndim >= 1 for r in raters):
            target = max(int(r.shape[0]) for r in raters)
            padded = []
            for i, d in enumerate(data):
                n = int(d[raters_key].shape[0])
                valid = d.get(valid_key)
                if valid is None:
                    valid = torch.ones(n, dtype=torch.bool)
                new = dict(d)
                new[valid_key] = _pad_valid(valid, n, target, i, valid_key)
                new[raters_key] = _pad_raters(d[raters_key], target)
                names = d.get(names_key)
                if isinstance(names, (list, tuple)):
                    new[names_key] = [*names, *([""] * (target - len(names)))]
                padded.append(new)
            data = padded
    return list_data_collate(data)
