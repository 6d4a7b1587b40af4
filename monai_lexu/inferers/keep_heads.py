"""Keep every head's probability map next to prob/unc (opt-in of the evaluation, for the agreement and GED analyses)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch
from monai.inferers import Inferer
from torch import nn

from monai_lexu.contract import split_heads
from monai_lexu.inferers.calibrated import CalibratedEnsembleInferer
from monai_lexu.inferers.multihead import MCDropoutInferer, MultiHeadInferer, mc_dropout

__all__ = ["KeepHeadsInferer", "keep_heads"]


class _Recording(Inferer):
    """A base inferer that keeps what it returned (the heads' blended sigmoids of a calibrated ensemble)."""

    def __init__(self, base: Inferer) -> None:
        super().__init__()
        self.base, self.output = base, None

    def __call__(self, inputs: torch.Tensor, network: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.output = self.base(inputs, network, *args, **kwargs)
        return self.output


class KeepHeadsInferer(Inferer):
    """Run a :class:`MultiHeadInferer` (or :class:`MCDropoutInferer`) and append the heads' sigmoids to its output.

    Output ``(B, 2L + K' L, *S)``: ``cat([prob, unc], 1)`` exactly as the wrapped inferer computes it, then the
    probability map of each head behind them, head-major (``K'`` = the kept heads ``skip_first .. K - 1``, or
    every head with ``all_heads``; for MC dropout the ``T`` samples x heads, sample-major). The heads come from the
    same forward passes as prob/unc (a forward hook on the network records its logits), so MC-dropout samples are
    the ones averaged. :class:`monai_lexu.transforms.SplitHeadsd` splits the output again after decollation.
    A sliding-window base inferer blends the head maps like prob/unc.

    A :class:`CalibratedEnsembleInferer` (output ``"prob_unc"``) keeps its members' (or, with ``mc_samples`` T > 1,
    its T dropout samples') blended sigmoids, the very maps it thresholds into votes: ``K`` = its ``num_heads``.

    Args:
        inferer: the method's inferer.
        all_heads: keep the skipped (shallow) heads of a Layer Ensemble too.
    """

    def __init__(self, inferer: MultiHeadInferer | CalibratedEnsembleInferer, all_heads: bool = False) -> None:
        super().__init__()
        if not isinstance(inferer, (MultiHeadInferer, CalibratedEnsembleInferer)):
            raise TypeError(
                "KeepHeadsInferer wraps a MultiHeadInferer, MCDropoutInferer or CalibratedEnsembleInferer, got "
                f"{type(inferer).__name__}."
            )
        if isinstance(inferer, CalibratedEnsembleInferer) and inferer.output != "prob_unc":
            raise ValueError(f"KeepHeadsInferer needs the calibrated output prob_unc, not {inferer.output!r}.")
        self.inferer, self.all_heads = inferer, bool(all_heads)

    def __call__(
        self, inputs: torch.Tensor, network: Callable[..., torch.Tensor], *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        """Return ``(B, 2L + K' L, *S)`` for ``inputs`` ``(B, C, *S)``."""
        if not isinstance(network, nn.Module):
            raise TypeError(f"KeepHeadsInferer needs a torch.nn.Module network, got {type(network).__name__}.")
        inner = self.inferer
        if isinstance(inner, CalibratedEnsembleInferer):
            return self._calibrated(inner, inputs, network, *args, **kwargs)
        mc = isinstance(inner, MCDropoutInferer)
        num_heads = inner.num_heads * (inner.num_samples if mc else 1)
        skip = 0 if self.all_heads or mc else inner.skip_first
        predictor = inner._predictor(network)

        def both(x: torch.Tensor, *a: Any, **k: Any) -> torch.Tensor:
            recorded: list[torch.Tensor] = []
            handle = network.register_forward_hook(lambda _m, _i, out: recorded.append(out.detach()))
            try:
                prob_unc = predictor(x, *a, **k)
            finally:
                handle.remove()
            parts = []
            for out in recorded:  # batched MC samples: (g * B, K * L, *S), sample-major rows -> (B, g * K * L, *S)
                g = out.shape[0] // x.shape[0]
                parts.append(
                    out if g == 1 else out.reshape(g, x.shape[0], *out.shape[1:]).transpose(0, 1).flatten(1, 2)
                )
            heads = torch.sigmoid(split_heads(torch.cat(parts, 1).float(), num_heads)[:, skip:])
            return torch.cat([prob_unc, heads.flatten(1, 2).to(prob_unc.dtype)], 1)

        with mc_dropout(network, cheap_masks=inner.cheap_masks) if mc else nullcontext():
            return inner.base_inferer(inputs, both, *args, **kwargs)  # type: ignore[arg-type]

    @staticmethod
    def _calibrated(
        inner: CalibratedEnsembleInferer, inputs: torch.Tensor, network: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        """prob/unc of the calibrated inferer, then the ``K`` blended head sigmoids its votes came from."""
        inner.coefficients  # noqa: B018 - read the file once, into the inferer the copy shares it with
        shadow = copy.copy(inner)
        shadow.base_inferer = recorder = _Recording(inner.base_inferer)
        prob_unc = shadow(inputs, network, *args, **kwargs)
        heads = split_heads(torch.as_tensor(recorder.output).float(), inner.num_heads)  # (B, K, L, *S)
        return torch.cat([prob_unc, heads.flatten(1, 2).to(prob_unc.dtype)], 1)


def keep_heads(inferer: Inferer, enabled: bool = True, all_heads: bool = False) -> Inferer:
    """``KeepHeadsInferer(inferer)`` when ``enabled``, else ``inferer`` itself (the evaluation's ``keep_head_maps``)."""
    return KeepHeadsInferer(inferer, all_heads=all_heads) if enabled else inferer  # type: ignore[arg-type]
