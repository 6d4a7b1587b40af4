"""monai_lexu.engines: glue between multi-rater batches and MONAI engines, and fault-tolerant bundle inference."""

from __future__ import annotations

from .inference import (
    FAILURE_KEY,
    SOURCE_KEY,
    SUMMARY_FILE,
    GuardedDataset,
    GuardedInferenceEvaluator,
    describe_input_failure,
)
from .prepare_batch import MULTI_RATER_KEYS, PrepareMultiRaterBatch

__all__ = [
    "FAILURE_KEY",
    "MULTI_RATER_KEYS",
    "SOURCE_KEY",
    "SUMMARY_FILE",
    "GuardedDataset",
    "GuardedInferenceEvaluator",
    "PrepareMultiRaterBatch",
    "describe_input_failure",
]
