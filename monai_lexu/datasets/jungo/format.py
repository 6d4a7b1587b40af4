"""The format of the Jungo et al. 2018 synthetic multi-observer set: its structure, observers and image variants."""

from __future__ import annotations

__all__ = ["JUNGO_NUM_OBSERVERS", "JUNGO_STRUCTURES", "JUNGO_VARIANTS"]

JUNGO_STRUCTURES: dict[str, str] = {"object": "nonzero"}
"""Structure mapping of the masks (one structure; masks are PNGs with values {0, 255})."""

JUNGO_NUM_OBSERVERS = 5
"""Observers (raters) per sample, as in the paper."""

JUNGO_VARIANTS: tuple[str, ...] = ("unperturbed", "perturbed")
"""Image variants of the Jungo set: low-entropy (crisp edges) and high-entropy (observer-summed, graded) images."""
