"""Functional helpers for multi-rater labels: structure mappings and rater statistics.

A *structure mapping* is an ordered mapping ``name -> "nonzero" | list of mask values``; structure channel ``l`` of a
rater mask is ``1[mask value in the list of structure l]`` (``mask != 0`` for ``"nonzero"``). Examples::

    RIGA = {"disc": "nonzero", "cup": [255]}  # masks with values {0, 150, 255}: the disc contains the cup
    HECKTOR = {"GTVp": [1], "GTVn": [2]}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from monai.config import NdarrayOrTensor
from monai.utils import convert_to_dst_type, convert_to_tensor

from monai_lexu.contract import NONZERO, validate_structures

__all__ = ["map_structures", "rater_statistics"]


def map_structures(
    mask: NdarrayOrTensor,
    structures: Mapping[str, str | float | Sequence[float]],
    source: str | None = None,
) -> torch.Tensor:
    """Map an integer-valued mask without channel dimension to binary structure channels.

    Args:
        mask: label mask of shape ``(*S)`` (no channel dimension).
        structures: structure mapping, see :func:`monai_lexu.contract.validate_structures`.
        source: name of the mask's origin (e.g. its file) used in error messages.

    Returns:
        float32 tensor of shape ``(L, *S)`` with ``L = len(structures)``, values in {0, 1}.

    Raises:
        ValueError: when the mask holds values outside ``{0} U all listed values`` (never raised when one structure is
            ``"nonzero"``); the message names ``source``, the offending values and the mapping.
    """
    specs = validate_structures(structures)
    m = convert_to_tensor(mask, track_meta=False)
    values, inverse = torch.unique(m, return_inverse=True)
    vals = values.double().tolist()
    if all(spec != NONZERO for spec in specs.values()):
        allowed = {0.0}.union(*[set(spec) for spec in specs.values()])
        bad = [v for v in vals if v not in allowed]  # NaN is never in `allowed`
        if bad:
            where = f" in {source}" if source else ""
            shown = ", ".join(f"{v:g}" for v in bad[:10]) + (", ..." if len(bad) > 10 else "")
            raise ValueError(
                f"mask values [{shown}]{where} are not in the structure mapping {dict(structures)!r} "
                f"(allowed values: {sorted(allowed)})."
            )
    channels = []
    for spec in specs.values():
        if spec == NONZERO:
            lut = torch.tensor([v != 0.0 for v in vals], dtype=torch.float32)
        else:
            lut = torch.tensor([v in spec for v in vals], dtype=torch.float32)
        channels.append(lut[inverse])
    return torch.stack(channels, dim=0)


def rater_statistics(
    raters: NdarrayOrTensor,
    rater_valid: NdarrayOrTensor | Sequence[bool] | None = None,
    unbiased: bool = True,
    batched: bool | None = None,
) -> tuple[NdarrayOrTensor, NdarrayOrTensor]:
    """Mean (soft label) and variance of the valid raters, per structure and voxel.

    Only valid raters enter either statistic; padded raters (``rater_valid`` False) are ignored whatever they hold.
    With ``unbiased=True`` the variance divides by ``n - 1`` (ddof=1, as ``torch.var``); where a sample has a single
    valid rater it is defined as 0. With ``unbiased=False`` it divides by ``n``.

    Args:
        raters: ``(R, L, *S)`` or batched ``(B, R, L, *S)`` rater masks (binary by contract, any float works).
        rater_valid: ``(R,)`` or ``(B, R)`` booleans; ``None`` means every rater is valid.
        unbiased: ddof=1 (default) or ddof=0 variance.
        batched: whether ``raters`` has a leading batch dimension. ``None`` infers it from ``rater_valid.ndim``
            (1: unbatched, 2: batched); with ``rater_valid=None`` it defaults to unbatched.

    Returns:
        ``(soft_label, rater_var)``, each ``(L, *S)`` or ``(B, L, *S)``, same array type as ``raters`` (a MetaTensor
        input keeps its meta), float32 unless ``raters`` is float64.

    Raises:
        ValueError: on inconsistent shapes or when a sample has no valid rater.
    """
    r = convert_to_tensor(raters, track_meta=False)
    if not r.is_floating_point():
        r = r.float()
    valid = None if rater_valid is None else convert_to_tensor(rater_valid, track_meta=False, wrap_sequence=True).bool()
    if batched is None:
        batched = valid is not None and valid.ndim == 2
    lead = 2 if batched else 1
    if r.ndim < lead + 2:
        raise ValueError(
            f"raters must have shape {'(B, R, L, *S)' if batched else '(R, L, *S)'}, got {tuple(r.shape)}."
        )
    if valid is None:
        valid = torch.ones(r.shape[:lead], dtype=torch.bool, device=r.device)
    if tuple(valid.shape) != tuple(r.shape[:lead]):
        raise ValueError(
            f"rater_valid shape {tuple(valid.shape)} does not match the leading {'(B, R)' if batched else '(R,)'} "
            f"dimensions {tuple(r.shape[:lead])} of raters shape {tuple(r.shape)}."
        )
    valid = valid.to(r.device)
    n = valid.sum(dim=-1)  # () or (B,)
    if bool((n == 0).any()):
        bad = torch.nonzero(n == 0).flatten().tolist() if batched else []
        raise ValueError(f"no valid rater{' in batch items ' + str(bad) if batched else ''} (rater_valid={valid}).")
    rater_dim = lead - 1
    w = valid.to(r.dtype).reshape(*valid.shape, *([1] * (r.ndim - lead)))
    nb = n.to(r.dtype).reshape(*n.shape, *([1] * (r.ndim - lead)))
    # zero the padded raters explicitly (0 * NaN would otherwise leak into the sums)
    rw = torch.where(w.bool(), r, torch.zeros((), dtype=r.dtype, device=r.device))
    mean = rw.sum(dim=rater_dim) / nb
    sq = torch.where(w.bool(), (r - mean.unsqueeze(rater_dim)) ** 2, torch.zeros((), dtype=r.dtype, device=r.device))
    ss = sq.sum(dim=rater_dim)
    if unbiased:
        var = torch.where(nb > 1, ss / (nb - 1).clamp_min(1), torch.zeros((), dtype=r.dtype, device=r.device))
    else:
        var = ss / nb
    out_dtype = torch.float64 if r.dtype == torch.float64 else torch.float32
    soft, _, _ = convert_to_dst_type(mean, raters, dtype=out_dtype)
    rvar, _, _ = convert_to_dst_type(var, raters, dtype=out_dtype)
    return soft, rvar
