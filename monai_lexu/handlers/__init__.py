"""Ignite handlers for multi-rater training and evaluation."""

from __future__ import annotations

from .branch import BranchMembers
from .checkpoint import (
    FiniteCheckpointSaver,
    NonFiniteCheckpointError,
    RandomStates,
    ResumableCheckpoint,
    atomic_torch_save,
    nonfinite_tensors,
    resume_path,
)
from .command import bundle_command, running_bundle_args
from .ddp import end_process_group, handlers_for_rank
from .interrupt import INTERRUPT_EXIT_CODE, StopOnInterrupt, install_interrupt_hook
from .logs import KNOWN_HARMLESS_WARNINGS, quiet_known_warnings, quiet_run
from .nonfinite import StopOnNonFiniteLoss, batch_case_ids, nonfinite_cases
from .output_transforms import from_engine_output, lookup_key, loss_terms_output
from .progress import CaseProgress, RunSummary, TrainingProgress, format_duration, volumes_smaller_than_patch
from .soft_dice import SoftDice
from .uncertainty_report import UncertaintyReport

__all__ = [
    "INTERRUPT_EXIT_CODE",
    "KNOWN_HARMLESS_WARNINGS",
    "BranchMembers",
    "CaseProgress",
    "FiniteCheckpointSaver",
    "NonFiniteCheckpointError",
    "RandomStates",
    "ResumableCheckpoint",
    "RunSummary",
    "SoftDice",
    "StopOnInterrupt",
    "StopOnNonFiniteLoss",
    "TrainingProgress",
    "UncertaintyReport",
    "atomic_torch_save",
    "batch_case_ids",
    "bundle_command",
    "format_duration",
    "from_engine_output",
    "end_process_group",
    "handlers_for_rank",
    "lookup_key",
    "loss_terms_output",
    "nonfinite_cases",
    "nonfinite_tensors",
    "install_interrupt_hook",
    "quiet_known_warnings",
    "quiet_run",
    "resume_path",
    "running_bundle_args",
    "volumes_smaller_than_patch",
]
