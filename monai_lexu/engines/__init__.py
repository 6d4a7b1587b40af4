"""monai_lexu.engines: glue between multi-rater batches and MONAI engines."""

from __future__ import annotations

from .prepare_batch import MULTI_RATER_KEYS, PrepareMultiRaterBatch

__all__ = ["MULTI_RATER_KEYS", "PrepareMultiRaterBatch"]
