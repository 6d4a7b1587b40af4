"""monai-lexu: uncertainty-aware segmentation learned from the disagreement of several expert raters.

Sub-packages are imported lazily (``import monai_lexu`` is cheap); import what you need, e.g.
``from monai_lexu.metrics import soft_dice``.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
