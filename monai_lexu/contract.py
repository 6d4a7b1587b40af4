"""The contract every method shares: head-major logits, per-structure probability/uncertainty, structure mappings.

One home for the primitives the networks, losses, inferers, metrics and transforms all rely on (design.md, "Contracts
worth keeping"); everything here needs only torch and numpy, so importing it pulls in no MONAI module and no data set.

- A network's output is ``(B, K * L, *S)`` logits, **head-major**: channel ``k * L + l`` is head ``k``, structure
  ``l`` (:func:`split_heads`). "Heads" are LEXU's decoder heads, Layer Ensembles' encoder and decoder heads, Deep
  Ensembles' members or Monte-Carlo dropout samples.
- Every method's inference output is ``cat([prob, unc], dim=1)`` ``(B, 2L, *S)`` (:func:`heads_to_prob_unc`,
  split back by :func:`split_prob_unc`).
- Structures are sigmoid channels defined by a *structure mapping* ``name -> "nonzero" | [mask values]``
  (:func:`validate_structures`).
- Probabilities and soft labels live in [0, 1] (:func:`check_unit_range`); entropies are in bits
  (:func:`binary_entropy`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "NONZERO",
    "UNCERTAINTY_MEASURES",
    "validate_structures",
    "check_unit_range",
    "binary_entropy",
    "entropy_of_probabilities",
    "split_heads",
    "mean_var_over_heads",
    "heads_to_prob_unc",
    "split_prob_unc",
]

NONZERO = "nonzero"
"""Structure value spec meaning "every non-zero mask value belongs to this structure"."""

_RANGE_TOL = 1e-6


def validate_structures(structures: Any, source: str = "structures") -> dict[str, str | list[int]]:
    """Check a ``structures`` mapping and return a normalised copy (the one validator of the project).

    Args:
        structures: mapping ``name -> "nonzero" | mask value | list of mask values``; its order is the channel order.
        source: what to name in error messages (e.g. the datalist file).

    Returns:
        an ordered ``dict`` with the same entries; a single value becomes a one-element list, values become ``int``.

    Raises:
        ValueError: if the mapping is empty, a name is not a non-empty string, or a value is neither ``"nonzero"``
            nor a non-empty list of integers.
    """
    if not isinstance(structures, Mapping) or len(structures) == 0:
        raise ValueError(
            f"{source}: 'structures' must be a non-empty mapping name -> 'nonzero' | [values], got {structures!r}."
        )
    out: dict[str, str | list[int]] = {}
    for name, values in structures.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"{source}: structure names must be non-empty strings, got {name!r}.")
        if isinstance(values, str) and values.lower() == NONZERO:
            out[name] = NONZERO
            continue
        if isinstance(values, (int, float)) and not isinstance(values, bool):
            values = [values]
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ValueError(
                f"{source}: structure {name!r} must map to 'nonzero' or a non-empty list of mask values, "
                f"got {values!r}."
            )
        ints: list[int] = []
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or float(v) != int(v):
                raise ValueError(f"{source}: structure {name!r} has a non-integer mask value {v!r}.")
            ints.append(int(v))
        out[name] = ints
    return out


def check_unit_range(x: torch.Tensor, name: str, tol: float = _RANGE_TOL) -> None:
    """Raise unless every finite value of ``x`` lies in ``[-tol, 1 + tol]`` (NaN/Inf are left to the caller).

    Args:
        x: probabilities or a soft label, any shape.
        name: argument name for the error message.
        tol: float round-off allowed outside [0, 1] (default 1e-6; 0 for a strict check).

    Raises:
        ValueError: naming ``name`` and the range found (a hint that logits were passed instead of probabilities).
    """
    if x.numel() == 0:
        return
    lo, hi = torch.aminmax(x.detach())  # one pass, no copy; NaN/Inf only then the masked check below
    lo, hi = float(lo), float(hi)
    if math.isfinite(lo) and math.isfinite(hi):
        if lo >= -tol and hi <= 1 + tol:
            return
    else:
        finite = x[torch.isfinite(x)]
        if not finite.numel():
            return
        lo, hi = float(finite.min()), float(finite.max())
        if lo >= -tol and hi <= 1 + tol:
            return
    raise ValueError(
        f"`{name}` must hold probabilities in [0, 1], got values in [{lo:.4g}, {hi:.4g}] "
        "(pass sigmoid(logits), not logits)."
    )


def binary_entropy(p: torch.Tensor | np.ndarray, base: float = 2.0) -> torch.Tensor:
    """Element-wise binary entropy ``H(p) = -p log(p) - (1 - p) log(1 - p)`` with ``0 log 0 = 0``.

    Args:
        p: probabilities of any shape, in [0, 1].
        base: logarithm base; 2 (default) gives bits, in [0, 1]; ``math.e`` gives nats.

    Returns:
        float32 tensor of the same shape (NaN stays NaN).

    Raises:
        ValueError: if ``base`` is not > 0 and != 1, or ``p`` leaves [0, 1].
    """
    if base <= 0 or base == 1:
        raise ValueError(f"`base` must be > 0 and != 1, got {base}.")
    t = p.detach().double() if isinstance(p, torch.Tensor) else torch.as_tensor(np.asarray(p), dtype=torch.float64)
    check_unit_range(t, "p", tol=0.0)
    return entropy_of_probabilities(t, base).float()


def entropy_of_probabilities(p: torch.Tensor, base: float = 2.0) -> torch.Tensor:
    """:func:`binary_entropy` without input checks, in ``p``'s dtype and device (for inference hot paths).

    Args:
        p: probabilities in [0, 1] (not checked; no host synchronisation), any shape.
        base: logarithm base (2: bits).
    """
    # p log p + (1 - p) log(1 - p), with log(1 - p) as log1p(-p) (1 - p rounds for small p in float32; log1p(-p) is
    # exact to an ulp) and the clamps making 0 log 0 = 0 at p = 0 and p = 1 (they change no other value: below
    # ``tiny`` only denormals, above 1 - eps/2 only 1); 4-5x cheaper than torch.xlogy / xlog1py on CPU
    if p.device.type == "cpu" and p.numel() > _ENTROPY_CHUNK and p.is_floating_point() and not p.requires_grad:
        # element-wise, so the same values a chunk at a time: the ~10 temporaries stay cache-sized instead of each
        # being a full copy of a large map (2x cheaper per image at 50 images of 2 x 256^2 per call)
        out = torch.empty(p.shape, dtype=p.dtype)
        flat, dest = p.reshape(-1), out.view(-1)
        for start in range(0, flat.numel(), _ENTROPY_CHUNK):
            dest[start : start + _ENTROPY_CHUNK] = _entropy(flat[start : start + _ENTROPY_CHUNK], base)
        return out
    return _entropy(p, base)


_ENTROPY_CHUNK = 2**18
"""Elements per chunk of :func:`entropy_of_probabilities` on CPU (1 MiB of float32)."""


def _entropy(p: torch.Tensor, base: float) -> torch.Tensor:
    info = torch.finfo(p.dtype) if p.is_floating_point() else torch.finfo(torch.float32)
    h = p * torch.log(p.clamp_min(info.tiny)) + (1.0 - p) * torch.log1p(-p.clamp_max(1.0 - info.eps / 2))
    return h.mul_(-1.0 / math.log(base)).clamp_min_(0.0)


def split_heads(logits: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Split head-major multi-head logits into a separate head dimension.

    Args:
        logits: tensor ``(B, K * L, *S)``; channel ``k * L + l`` is head ``k``, structure ``l``.
        num_heads: number of heads ``K``.

    Returns:
        A view ``(B, K, L, *S)``.

    Raises:
        ValueError: if ``logits`` has fewer than 3 dimensions or its channel count is not a multiple of ``num_heads``.
    """
    if num_heads < 1:
        raise ValueError(f"num_heads must be >= 1, got {num_heads}.")
    if logits.ndim < 3:
        raise ValueError(f"logits must have shape (B, K*L, *S), got shape {tuple(logits.shape)}.")
    channels = logits.shape[1]
    if channels % num_heads != 0:
        raise ValueError(
            f"logits channel count {channels} (shape {tuple(logits.shape)}) is not a multiple of num_heads={num_heads}."
        )
    return logits.reshape(logits.shape[0], num_heads, channels // num_heads, *logits.shape[2:])


def mean_var_over_heads(values: torch.Tensor, unbiased: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance over the head axis (dim 1) by an explicit two-pass sum over the heads.

    The same values as ``values.mean(1)`` and ``values.var(1, unbiased=unbiased)`` (within float rounding, <= 1e-6
    relative; tested) and the same gradients (autograd runs through the explicit formula
    ``var = sum_k (v_k - mean)^2 / (K - ddof)``), but 10-40x cheaper on CPU: ``torch.var`` over a non-innermost axis
    walks the ``(B, K, L, *S)`` tensor with a strided Welford reduction, while this accumulates ``K`` contiguous
    ``(B, L, *S)`` slices. The one home of the head statistics (inference, the DGM loss term, MC-dropout samples).

    Args:
        values: ``(B, K, L, *S)`` per-head values (e.g. sigmoid probabilities), floating point.
        unbiased: divide by ``K - 1`` (ddof=1, as the LEXU reference) if True, else by ``K``.

    Returns:
        ``(mean, var)``, each ``(B, L, *S)`` in ``values``' dtype. With a single head the variance is zero (not the
        NaN ``torch.var`` gives for ``K = 1, unbiased=True``): one head carries no disagreement.

    Raises:
        ValueError: if ``values`` has fewer than 2 dimensions or no head.
    """
    if values.ndim < 2 or values.shape[1] < 1:
        raise ValueError(f"values must have shape (B, K >= 1, ...), got {tuple(values.shape)}.")
    heads = values.unbind(1)  # views; backward stacks the K gradients once (slicing would zero-fill K full copies)
    k = len(heads)
    total = heads[0].clone()
    for head in heads[1:]:
        total = total.add_(head)
    mean = total.div_(k)
    if k == 1:
        return mean, torch.zeros_like(mean)
    sq = torch.zeros_like(mean)
    for head in heads:
        d = head - mean
        sq = sq.addcmul_(d, d)
    return mean, sq.div_(k - 1 if unbiased else k)


UNCERTAINTY_MEASURES = ("variance", "entropy")


def heads_to_prob_unc(
    logits: torch.Tensor, num_heads: int, skip_first: int = 0, unbiased: bool = True, uncertainty: str = "variance"
) -> torch.Tensor:
    """Turn head-major multi-head logits into per-structure probability and uncertainty maps.

    ``p_k = sigmoid(z_k)`` for the kept heads ``k = skip_first ... K - 1``; ``prob = mean_k p_k`` and
    ``unc = var_k p_k`` (unbiased by default, as the LEXU reference; zero when a single head is kept; computed by
    :func:`mean_var_over_heads`). Layer Ensembles drops the first ``skip_first`` (shallowest) heads, e.g. 6 of 10 in
    the LEXU paper's LE baseline.
    With ``uncertainty="entropy"``, ``unc`` is instead the predictive entropy of the mean probability in bits,
    ``H(prob) = -prob log2 prob - (1 - prob) log2(1 - prob)`` (:func:`binary_entropy`): Jungo et
    al.'s MC-dropout uncertainty (their ``-sum_c p_c log p_c`` over the two classes of a binary structure).

    Computation is done in at least float32 and cast back to the dtype of ``logits`` (works under AMP).

    Args:
        logits: ``(B, K * L, *S)``, channel ``k * L + l`` = head ``k``, structure ``l``.
        num_heads: ``K``.
        skip_first: number of leading heads to drop (``0 <= skip_first < K``).
        unbiased: unbiased (ddof=1) variance if True, else population variance (ddof=0).
        uncertainty: ``"variance"`` (over heads) or ``"entropy"`` (predictive entropy of ``prob``, bits).

    Returns:
        ``(B, 2L, *S)`` = ``cat([prob (B, L, *S), unc (B, L, *S)], dim=1)``.

    Raises:
        ValueError: on a bad shape (see :func:`split_heads`), ``skip_first`` or ``uncertainty``.
    """
    if uncertainty not in UNCERTAINTY_MEASURES:
        raise ValueError(f"uncertainty must be one of {UNCERTAINTY_MEASURES}, got {uncertainty!r}.")
    if not 0 <= skip_first < num_heads:
        raise ValueError(f"skip_first must be in [0, num_heads={num_heads}), got {skip_first}.")
    work = torch.promote_types(logits.dtype, torch.float32)
    z = split_heads(logits, num_heads)[:, skip_first:]
    probs = torch.sigmoid(z.to(work))
    if uncertainty == "entropy":
        prob = probs.mean(dim=1)
        unc = entropy_of_probabilities(prob.clamp(0.0, 1.0))  # unchecked: no host sync per sliding window
    else:
        prob, unc = mean_var_over_heads(probs, unbiased=unbiased)  # zero variance for a single kept head
    return torch.cat([prob, unc], dim=1).to(logits.dtype)


def split_prob_unc(pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split an inference output ``(2L, *S)`` (channel-first, no batch) into ``prob (L, *S)`` and ``unc (L, *S)``.

    Raises:
        ValueError: if the channel count is odd.
    """
    if pred.ndim < 2 or pred.shape[0] % 2 != 0:
        raise ValueError(f"expected a (2L, *S) prob/unc tensor with an even channel count, got {tuple(pred.shape)}.")
    n = pred.shape[0] // 2
    return pred[:n], pred[n:]
