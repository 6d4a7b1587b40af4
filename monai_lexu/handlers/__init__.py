"""Ignite handlers for multi-rater training and evaluation."""

from __future__ import annotations

from .checkpoint import (
    FiniteCheckpointSaver,
    NonFiniteCheckpointError,
    RandomStates,
    ResumableCheckpoint,
    atomic_torch_save,
    nonfinite_tensors,
    resume_path,
)
from .ddp import handlers_for_rank
from .nonfinite import StopOnNonFiniteLoss, batch_case_ids, nonfinite_cases
from .output_transforms import from_engine_output, lookup_key, loss_terms_output
from .soft_dice import SoftDice
from .uncertainty_report import UncertaintyReport

__all__ = [
    "FiniteCheckpointSaver",
    "NonFiniteCheckpointError",
    "RandomStates",
    "ResumableCheckpoint",
    "SoftDice",
    "StopOnNonFiniteLoss",
    "UncertaintyReport",
    "atomic_torch_save",
    "batch_case_ids",
    "from_engine_output",
    "handlers_for_rank",
    "lookup_key",
    "loss_terms_output",
    "nonfinite_cases",
    "nonfinite_tensors",
    "resume_path",
]
