"""Ignite handlers for multi-rater evaluation."""

from __future__ import annotations

from .uncertainty_report import UncertaintyReport, from_engine_output, loss_terms_output

__all__ = ["UncertaintyReport", "from_engine_output", "loss_terms_output"]
