"""monai_lexu.transforms: multi-rater label transforms (structure mapping, rater loading, statistics, fusion) and the
post-processing of the probability/uncertainty output (split, label map). Data-set transforms live with their data
set in :mod:`monai_lexu.datasets`."""

from __future__ import annotations

from monai_lexu.transforms.array import (
    FlattenRaters,
    FuseRaters,
    FusionMode,
    LoadRaters,
    MapStructures,
    ProbToLabelMap,
    RandFuseRaters,
    RaterStats,
    SplitProbUnc,
    UnflattenRaters,
    affine_offset,
)
from monai_lexu.transforms.cache import AfterCache
from monai_lexu.transforms.dictionary import (
    CheckedLoadImaged,
    CheckFinited,
    FlattenRatersd,
    FuseRatersd,
    LoadRatersd,
    MapStructuresd,
    ProbToLabelMapd,
    RandFuseRatersd,
    RaterStatsd,
    SplitProbUncD,
    SplitProbUncd,
    SplitProbUncDict,
    UnflattenRatersd,
)
from monai_lexu.transforms.distortions import (
    DistortD,
    Distortd,
    DistortDict,
    FundusDistortion,
    VolumeDistortion,
    case_rng,
    choose_distorted,
)
from monai_lexu.transforms.heads import SplitHeadsd, with_split_heads
from monai_lexu.transforms.utils import map_structures, rater_statistics

__all__ = [
    "AfterCache",
    "with_split_heads",
    "SplitHeadsd",
    "DistortD",
    "Distortd",
    "DistortDict",
    "FundusDistortion",
    "VolumeDistortion",
    "case_rng",
    "choose_distorted",
    "affine_offset",
    "CheckFinited",
    "CheckedLoadImaged",
    "FusionMode",
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
    "SplitProbUnc",
    "SplitProbUncd",
    "SplitProbUncD",
    "SplitProbUncDict",
    "ProbToLabelMap",
    "ProbToLabelMapd",
]
