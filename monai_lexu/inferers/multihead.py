"""Inference for multi-head networks: per-structure probability and uncertainty maps.

Every method's inference output is ``cat([prob, unc], dim=1)`` of shape ``(B, 2L, *S)``, where ``prob`` is the mean
over heads of the sigmoids and ``unc`` their (unbiased) variance over heads.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.inferers import Inferer, SimpleInferer
from monai.transforms import MapTransform, Transform
from monai.utils import ensure_tuple_rep

__all__ = [
    "heads_to_prob_unc",
    "MultiHeadInferer",
    "SplitProbUnc",
    "SplitProbUncd",
    "SplitProbUncD",
    "SplitProbUncDict",
]


def heads_to_prob_unc(logits: torch.Tensor, num_heads: int, skip_first: int = 0, unbiased: bool = True) -> torch.Tensor:
    """Turn head-major multi-head logits into per-structure probability and uncertainty maps.

    ``p_k = sigmoid(z_k)`` for the kept heads ``k = skip_first ... K - 1``; ``prob = mean_k p_k`` and
    ``unc = var_k p_k`` (unbiased by default, as the LEXU reference; zero when a single head is kept). Layer Ensembles
    drops the first ``skip_first`` (shallowest) heads, e.g. 6 of 10 in the LEXU paper's LE baseline.

    Computation is done in at least float32 and cast back to the dtype of ``logits`` (works under AMP).

    Args:
        logits: ``(B, K * L, *S)``, channel ``k * L + l`` = head ``k``, structure ``l``.
        num_heads: ``K``.
        skip_first: number of leading heads to drop (``0 <= skip_first < K``).
        unbiased: unbiased (ddof=1) variance if True, else population variance (ddof=0).

    Returns:
        ``(B, 2L, *S)`` = ``cat([prob (B, L, *S), unc (B, L, *S)], dim=1)``.

    Raises:
        ValueError: on a bad shape or ``skip_first``.
    """
    if logits.ndim < 3:
        raise ValueError(f"logits must have shape (B, K*L, *S), got {tuple(logits.shape)}.")
    if num_heads < 1 or logits.shape[1] % num_heads != 0:
        raise ValueError(
            f"logits channel count {logits.shape[1]} (shape {tuple(logits.shape)}) is not a multiple of "
            f"num_heads={num_heads}."
        )
    if not 0 <= skip_first < num_heads:
        raise ValueError(f"skip_first must be in [0, num_heads={num_heads}), got {skip_first}.")
    b, c = logits.shape[:2]
    work = torch.promote_types(logits.dtype, torch.float32)
    z = logits.reshape(b, num_heads, c // num_heads, *logits.shape[2:])[:, skip_first:]
    probs = torch.sigmoid(z.to(work))
    prob = probs.mean(dim=1)
    if probs.shape[1] > 1:
        unc = probs.var(dim=1, unbiased=unbiased)
    else:
        unc = torch.zeros_like(prob)
    return torch.cat([prob, unc], dim=1).to(logits.dtype)


class _ProbUncPredictor:
    """Callable wrapping a network so that every call (e.g. every sliding window) returns prob/unc maps."""

    def __init__(self, network: Callable[..., torch.Tensor], num_heads: int, skip_first: int, unbiased: bool) -> None:
        self.network = network
        self.num_heads = num_heads
        self.skip_first = skip_first
        self.unbiased = unbiased

    def __call__(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return heads_to_prob_unc(self.network(x, *args, **kwargs), self.num_heads, self.skip_first, self.unbiased)


class MultiHeadInferer(Inferer):
    """Inferer returning ``cat([prob, unc], dim=1)`` ``(B, 2L, *S)`` for a multi-head network.

    The network is wrapped so that EACH call made by ``base_inferer`` (each sliding window batch) is converted to
    prob/unc before MONAI blends the windows; the full volume therefore never holds all K heads at once. Note that
    in overlapping regions the blended ``unc`` is the (importance-weighted) average of the windows' head variances,
    not the head variance of the blended probabilities; for networks whose heads are translation-equivariant at the
    window scale the two coincide.

    Args:
        num_heads: number of heads ``K`` of the network output.
        base_inferer: MONAI inferer to run (``SimpleInferer()`` if None; use ``SlidingWindowInferer`` for 3D).
        skip_first: number of leading heads dropped before the statistics (Layer Ensembles: e.g. 6 of 10).
        unbiased: unbiased (ddof=1) variance over heads.

    Example::

        inferer = MultiHeadInferer(net.num_heads, SlidingWindowInferer(roi_size=(96, 96, 96), overlap=0.5))
        out = inferer(image, net)  # (B, 2L, *S)
    """

    def __init__(
        self, num_heads: int, base_inferer: Inferer | None = None, skip_first: int = 0, unbiased: bool = True
    ) -> None:
        super().__init__()
        if num_heads < 1:
            raise ValueError(f"num_heads must be >= 1, got {num_heads}.")
        if not 0 <= skip_first < num_heads:
            raise ValueError(f"skip_first must be in [0, num_heads={num_heads}), got {skip_first}.")
        self.num_heads = int(num_heads)
        self.skip_first = int(skip_first)
        self.unbiased = bool(unbiased)
        self.base_inferer = SimpleInferer() if base_inferer is None else base_inferer

    def __call__(
        self, inputs: torch.Tensor, network: Callable[..., torch.Tensor], *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        """Run the base inferer on ``inputs`` ``(B, C, *S)`` and return ``(B, 2L, *S)``."""
        predictor = _ProbUncPredictor(network, self.num_heads, self.skip_first, self.unbiased)
        return self.base_inferer(inputs, predictor, *args, **kwargs)  # type: ignore[arg-type]


class SplitProbUnc(Transform):
    """Split an inference output ``(2L, *S)`` (channel-first, no batch) into ``prob (L, *S)`` and ``unc (L, *S)``."""

    def __call__(self, pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(prob, unc)``; raises ValueError if the channel count is odd."""
        if pred.ndim < 2 or pred.shape[0] % 2 != 0:
            raise ValueError(
                f"expected a (2L, *S) prob/unc tensor with an even channel count, got {tuple(pred.shape)}."
            )
        n = pred.shape[0] // 2
        return pred[:n], pred[n:]


class SplitProbUncd(MapTransform):
    """Dictionary twin of :class:`SplitProbUnc` (post-processing after decollation).

    Args:
        keys: key(s) of the ``(2L, *S)`` prob/unc tensors.
        prob_key: output key(s) for ``prob (L, *S)``, one per key.
        unc_key: output key(s) for ``unc (L, *S)``, one per key.
        allow_missing_keys: do not raise if a key is missing.
    """

    def __init__(
        self,
        keys: KeysCollection = "pred",
        prob_key: str | Sequence[str] = "prob",
        unc_key: str | Sequence[str] = "unc",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.prob_key = ensure_tuple_rep(prob_key, len(self.keys))
        self.unc_key = ensure_tuple_rep(unc_key, len(self.keys))
        self.splitter = SplitProbUnc()

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key, prob_key, unc_key in self.key_iterator(d, self.prob_key, self.unc_key):
            try:
                d[prob_key], d[unc_key] = self.splitter(d[key])
            except ValueError as e:
                raise ValueError(f"SplitProbUncd key {key!r}: {e}") from e
        return d


SplitProbUncD = SplitProbUncDict = SplitProbUncd
