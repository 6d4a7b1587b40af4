"""monai_lexu.transforms: multi-rater label transforms (structure mapping, rater loading, statistics, fusion)."""

from __future__ import annotations

from monai_lexu.transforms.array import (
    FlattenRaters,
    FuseRaters,
    FusionMode,
    LoadRaters,
    MapStructures,
    RandFuseRaters,
    RaterStats,
    UnflattenRaters,
)
from monai_lexu.transforms.dictionary import (
    FlattenRatersd,
    FuseRatersd,
    LoadRatersd,
    MapStructuresd,
    RandFuseRatersd,
    RaterStatsd,
    UnflattenRatersd,
)
from monai_lexu.transforms.utils import NONZERO, map_structures, rater_statistics, validate_structures

__all__ = [
    "NONZERO",
    "FusionMode",
    "validate_structures",
    "map_structures",
    "rater_statistics",
    "MapStructures",
    "MapStructuresd",
    "LoadRaters",
    "LoadRatersd",
    "RaterStats",
    "RaterStatsd",
    "FuseRaters",
    "FuseRatersd",
    "RandFuseRaters",
    "RandFuseRatersd",
    "FlattenRaters",
    "FlattenRatersd",
    "UnflattenRaters",
    "UnflattenRatersd",
]
