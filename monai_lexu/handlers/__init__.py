"""Ignite handlers for multi-rater evaluation."""

from __future__ import annotations

from .output_transforms import from_engine_output, lookup_key, loss_terms_output
from .soft_dice import SoftDice
from .uncertainty_report import UncertaintyReport

__all__ = ["SoftDice", "UncertaintyReport", "from_engine_output", "lookup_key", "loss_terms_output"]
