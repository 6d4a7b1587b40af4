"""monai_lexu.networks: multi-head segmentation networks."""

from __future__ import annotations

from .multihead_unet import BACKBONES, HEAD_MODES, MultiHeadUNet, split_heads

__all__ = ["BACKBONES", "HEAD_MODES", "MultiHeadUNet", "split_heads"]
