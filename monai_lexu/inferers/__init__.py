"""monai_lexu.inferers: probability/uncertainty inference for multi-head networks, ensembles and MC dropout."""

from __future__ import annotations

from .multihead import MCDropoutInferer, MultiHeadInferer, mc_dropout

__all__ = ["MCDropoutInferer", "MultiHeadInferer", "mc_dropout"]
