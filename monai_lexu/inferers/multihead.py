"""Inference for multi-head networks: per-structure probability and uncertainty maps.

Every method's inference output is ``cat([prob, unc], dim=1)`` of shape ``(B, 2L, *S)``, where ``prob`` is the mean
over heads of the sigmoids and ``unc`` their (unbiased) variance over heads, or the predictive entropy of ``prob``.
"Heads" are whatever the network stacks along channels: LEXU's decoder heads, Layer Ensembles' encoder and decoder
heads, Deep Ensembles' members (:class:`monai_lexu.networks.DeepEnsemble`) or Monte-Carlo dropout samples
(:class:`MCDropoutInferer`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from monai.inferers import Inferer, SimpleInferer
from torch import nn

from monai_lexu.contract import UNCERTAINTY_MEASURES, heads_to_prob_unc
from monai_lexu.networks.dropout import UniformMaskDropout

__all__ = ["mc_dropout", "MCDropoutInferer", "MultiHeadInferer"]


class _ProbUncPredictor:
    """Callable wrapping a network so that every call (e.g. every sliding window) returns prob/unc maps."""

    def __init__(
        self,
        network: Callable[..., torch.Tensor],
        num_heads: int,
        skip_first: int,
        unbiased: bool,
        uncertainty: str,
        num_samples: int = 1,
        max_voxels: int = 0,
    ) -> None:
        self.network = network
        self.max_voxels = max_voxels
        self.num_heads = num_heads
        self.skip_first = skip_first
        self.unbiased = unbiased
        self.uncertainty = uncertainty
        self.num_samples = num_samples

    def __call__(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self.num_samples == 1:
            logits = self.network(x, *args, **kwargs)
        else:  # Monte-Carlo samples stacked as heads, sample-major
            parts = []
            for xs in _sample_batches(x, self.num_samples, self.max_voxels):
                out = self.network(xs, *args, **kwargs)  # (g * B, K * L, *S), sample-major rows
                g = out.shape[0] // x.shape[0]
                parts.append(
                    out if g == 1 else out.reshape(g, x.shape[0], *out.shape[1:]).transpose(0, 1).flatten(1, 2)
                )
            logits = torch.cat(parts, dim=1)  # (B, T * K * L, *S), sample-major
        return heads_to_prob_unc(
            logits, self.num_heads * self.num_samples, self.skip_first, self.unbiased, self.uncertainty
        )


def _sample_batches(x: torch.Tensor, num_samples: int, max_voxels: int) -> Iterator[torch.Tensor]:
    """Yield ``num_samples`` copies of ``x`` ``(B, C, *S)`` grouped into batches of at most ``max_voxels`` voxels.

    Each batch is ``x`` repeated ``g`` times along the batch axis (sample-major: rows ``t * B ... t * B + B - 1`` are
    sample ``t``), ``g = max(1, max_voxels // voxels(x))`` capped by the samples left; ``max_voxels <= 0`` gives one
    sample per batch (``x`` itself). The caller turns a batch's output ``(g * B, K * L, *S)`` back into heads.
    """
    per_sample = x.shape[0] * math.prod(x.shape[2:])
    group = 1 if max_voxels <= 0 else max(1, min(num_samples, max_voxels // max(per_sample, 1)))
    done = 0
    while done < num_samples:
        g = min(group, num_samples - done)
        done += g
        yield x if g == 1 else x.repeat(g, *([1] * (x.ndim - 1)))


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
        uncertainty: ``"variance"`` over heads (default) or ``"entropy"`` of the mean probability, see
            :func:`heads_to_prob_unc`.

    Example::

        inferer = MultiHeadInferer(net.num_heads, SlidingWindowInferer(roi_size=(96, 96, 96), overlap=0.5))
        out = inferer(image, net)  # (B, 2L, *S)
    """

    def __init__(
        self,
        num_heads: int,
        base_inferer: Inferer | None = None,
        skip_first: int = 0,
        unbiased: bool = True,
        uncertainty: str = "variance",
    ) -> None:
        super().__init__()
        if num_heads < 1:
            raise ValueError(f"num_heads must be >= 1, got {num_heads}.")
        if not 0 <= skip_first < num_heads:
            raise ValueError(f"skip_first must be in [0, num_heads={num_heads}), got {skip_first}.")
        if uncertainty not in UNCERTAINTY_MEASURES:
            raise ValueError(f"uncertainty must be one of {UNCERTAINTY_MEASURES}, got {uncertainty!r}.")
        self.num_heads = int(num_heads)
        self.skip_first = int(skip_first)
        self.unbiased = bool(unbiased)
        self.uncertainty = uncertainty
        self.base_inferer = SimpleInferer() if base_inferer is None else base_inferer

    def _predictor(self, network: Callable[..., torch.Tensor]) -> _ProbUncPredictor:
        return _ProbUncPredictor(network, self.num_heads, self.skip_first, self.unbiased, self.uncertainty)

    def __call__(
        self, inputs: torch.Tensor, network: Callable[..., torch.Tensor], *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        """Run the base inferer on ``inputs`` ``(B, C, *S)`` and return ``(B, 2L, *S)``."""
        return self.base_inferer(inputs, self._predictor(network), *args, **kwargs)  # type: ignore[arg-type]


_DROPOUT_TYPES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


@contextmanager
def mc_dropout(network: nn.Module, cheap_masks: bool = True) -> Iterator[int]:
    """Context in which only the dropout modules of ``network`` are in training mode (Monte-Carlo dropout).

    Batch norm and every other module keep their current mode (normally ``eval``: running statistics); the modes
    are restored on exit. With ``cheap_masks`` (default) every plain element-wise ``nn.Dropout`` draws its mask as
    :class:`monai_lexu.networks.UniformMaskDropout` inside the context (16 random bits per element instead of
    ``bernoulli_``, about 5x cheaper on CPU; element-wise Bernoulli mask with the drop probability ``p`` rounded to a
    multiple of 2^-16 (``|p_q - p| <= 7.6e-6``, see :func:`monai_lexu.networks.dropout.quantised_dropout_p`) and
    ``1 / (1 - p_q)`` scaling, equal in distribution up to that rounding, not bit for bit); channel-wise
    (``Dropout2d``/``3d``) and alpha dropout keep their own forward.

    Args:
        network: the module whose dropout layers are switched on.
        cheap_masks: draw element-wise masks with :class:`~monai_lexu.networks.UniformMaskDropout`.

    Yields:
        the number of dropout modules switched on.

    Raises:
        ValueError: if the network has no dropout module with ``p > 0`` (MC dropout would return zero uncertainty).
    """
    dropouts = [m for m in network.modules() if isinstance(m, _DROPOUT_TYPES) and m.p > 0]
    if not dropouts:
        raise ValueError(
            f"{type(network).__name__} has no dropout layer with p > 0: Monte-Carlo dropout needs one (e.g. "
            "MultiHeadUNet(dropout=0.2))."
        )
    modes = [m.training for m in dropouts]
    swapped = [m for m in dropouts if type(m) is nn.Dropout] if cheap_masks else []
    try:
        for m in dropouts:
            m.train()
        for m in swapped:
            m.__class__ = UniformMaskDropout
        yield len(dropouts)
    finally:
        for m in swapped:
            m.__class__ = nn.Dropout
        for m, mode in zip(dropouts, modes):
            m.train(mode)


class MCDropoutInferer(MultiHeadInferer):
    """Monte-Carlo dropout inference (Gal & Ghahramani 2016; Jungo et al. 2018): ``T`` stochastic passes as heads.

    Inside :func:`mc_dropout` (dropout on, batch norm in eval mode) the network is run ``num_samples`` times on every
    input (every sliding window), the ``T * K`` head logits are stacked sample-major and reduced by
    :func:`heads_to_prob_unc`: ``prob`` = mean of the ``T`` sigmoids (Jungo's ``p(y|I) ~ 1/T sum_t p(y|I, W_t)``) and
    ``unc`` = the predictive entropy of ``prob`` in bits (``uncertainty="entropy"``, Jungo's choice, default) or the
    variance over the samples (``"variance"``, the quantity LEXU compares with the raters' variance).

    Args:
        num_samples: ``T`` (Jungo et al.: 20).
        num_heads: heads per pass of the network (1 for a single-head U-Net).
        base_inferer: MONAI inferer run once per call (``SimpleInferer`` if None); with a sliding window each window
            gets its own ``T`` samples.
        uncertainty: ``"entropy"`` (default) or ``"variance"``.
        unbiased: unbiased variance over samples (``"variance"`` only).
        max_batch_voxels: memory cap of the batched samples: the ``T`` samples of an input ``(B, C, *S)`` run as
            batches of ``g = max(1, max_batch_voxels // (B * prod(S)))`` copies of the input (one forward each;
            activation memory grows with ``g``); ``0`` runs one sample per forward. The default ``2**17``
            (8 samples of 128^2, 1 sample of a 64^3 window) keeps the CPU recipe's activations under about 0.5 GiB.
            Batching changes only the order in which the random masks are drawn (results equal in distribution).
        cheap_masks: element-wise dropout masks drawn by :class:`monai_lexu.networks.UniformMaskDropout` (see
            :func:`mc_dropout`).

    Example::

        net = MultiHeadUNet(2, 1, 1, backbone="plain", features=(16, 32, 64), heads="last", dropout=0.2).eval()
        out = MCDropoutInferer(num_samples=20)(torch.rand(1, 1, 128, 128), net)  # (1, 2, 128, 128)
    """

    def __init__(
        self,
        num_samples: int = 20,
        num_heads: int = 1,
        base_inferer: Inferer | None = None,
        uncertainty: str = "entropy",
        unbiased: bool = True,
        max_batch_voxels: int = 2**17,
        cheap_masks: bool = True,
    ) -> None:
        super().__init__(num_heads, base_inferer, skip_first=0, unbiased=unbiased, uncertainty=uncertainty)
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}.")
        self.num_samples = int(num_samples)
        self.max_batch_voxels = int(max_batch_voxels)
        self.cheap_masks = bool(cheap_masks)

    def _predictor(self, network: Callable[..., torch.Tensor]) -> _ProbUncPredictor:
        return _ProbUncPredictor(
            network,
            self.num_heads,
            0,
            self.unbiased,
            self.uncertainty,
            num_samples=self.num_samples,
            max_voxels=self.max_batch_voxels,
        )

    def __call__(
        self, inputs: torch.Tensor, network: Callable[..., torch.Tensor], *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        """Run ``T`` dropout samples per call of the base inferer; returns ``(B, 2L, *S)``."""
        if not isinstance(network, nn.Module):
            raise TypeError(f"MCDropoutInferer needs a torch.nn.Module network, got {type(network).__name__}.")
        with mc_dropout(network, cheap_masks=self.cheap_masks):
            return super().__call__(inputs, network, *args, **kwargs)
