"""monai_lexu.networks: multi-head segmentation networks and deep ensembles of them."""

from __future__ import annotations

from .calibrated import SharedBaseEnsemble
from .dropout import UniformMaskDropout
from .ensemble import DeepEnsemble
from .meduhip import MedUHIPNet
from .multihead_unet import BACKBONES, HEAD_MODES, MultiHeadUNet

__all__ = [
    "BACKBONES",
    "HEAD_MODES",
    "DeepEnsemble",
    "MedUHIPNet",
    "MultiHeadUNet",
    "SharedBaseEnsemble",
    "UniformMaskDropout",
]
