"""Multi-rater data: datalists, synthetic data sets, RIGA conversion, and the padding collate."""

from __future__ import annotations

from .collate import pad_rater_collate

__all__ = ["pad_rater_collate"]
