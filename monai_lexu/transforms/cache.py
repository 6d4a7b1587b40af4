"""Where MONAI's caching datasets stop caching: :class:`AfterCache` runs its transforms on every access.

``CacheDataset`` / ``PersistentDataset`` / ``SmartCacheDataset`` store the output of a ``Compose`` up to its first
random transform (``RandomizableTrait``) and run the rest on every access. A deterministic step whose output is
larger than its input (the float soft label and rater variance of uint8 rater masks, a uint8 -> float32 cast) is
better run after the cache: the cache then holds the compact input (issue 11, item 6: HECKTOR's masks are cached as
uint8, 1 byte per voxel instead of 4, and turned into float32 targets per batch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from monai.transforms import Compose, RandomizableTrait, Transform

__all__ = ["AfterCache"]


class AfterCache(Transform, RandomizableTrait):
    """Run ``transforms`` on every access: a caching dataset stops caching here (it is marked like a random transform,
    though it draws nothing).

    Deterministic: the same input gives the same output, so results equal those of the same transforms cached; only
    the cache size and the per-access work change.

    Args:
        transforms: a transform or a sequence of transforms (applied in order, as a ``Compose``).
        map_items: passed to ``Compose`` (apply to each item of a list of dicts, e.g. after ``num_samples`` crops).
    """

    def __init__(self, transforms: Callable | Sequence[Callable], map_items: bool = True) -> None:
        self.transform = Compose(transforms if isinstance(transforms, Sequence) else [transforms], map_items=map_items)

    def __call__(self, data: Any) -> Any:
        return self.transform(data)
