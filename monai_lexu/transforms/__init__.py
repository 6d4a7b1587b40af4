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
from monai_lexu.transforms.hecktor import (
    HECKTOR_BOX_MM,
    HECKTOR_CT_WINDOW,
    HECKTOR_SPACING,
    CTWindowNormalize,
    CTWindowNormalized,
    HecktorNeckCrop,
    HecktorNeckCropd,
    PETNormalize,
    PETNormalized,
    hecktor_neck_box,
    hecktor_preprocessing,
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
    "HECKTOR_BOX_MM",
    "HECKTOR_CT_WINDOW",
    "HECKTOR_SPACING",
    "CTWindowNormalize",
    "CTWindowNormalized",
    "HecktorNeckCrop",
    "HecktorNeckCropd",
    "PETNormalize",
    "PETNormalized",
    "hecktor_neck_box",
    "hecktor_preprocessing",
]
