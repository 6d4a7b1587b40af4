"""Dice estimated from a probability map, without ground truth (Buddenkotte et al., calibrated ensembles, §5.1)."""

from __future__ import annotations

import numpy as np
import torch

from monai_lexu.metrics.utils import as_float_tensor, check_same_shape

__all__ = ["estimated_dice"]


def estimated_dice(prob: torch.Tensor | np.ndarray, pred: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Dice of a binary prediction against the ground truth as the probability map expects it, per image and structure.

    Definition (Buddenkotte et al., "Calibrating ensembles for scalable uncertainty quantification in deep
    learning-based medical segmentation", §5.1): the Dice of a prediction ``p`` against a segmentation ``s`` is
    ``2 TP / (2 TP + FP + FN)`` with ``TP = sum_i s_i p_i``, ``FP = sum_i (1 - s_i) p_i``, ``FN = sum_i s_i (1 - p_i)``.
    If the map ``h`` is the probability that a voxel is foreground, replacing ``s`` by ``h`` gives the *expected*
    TP, FP and FN, hence

        ``estimated_dice = 2 sum_i h_i p_i / (2 sum_i h_i p_i + sum_i (1 - h_i) p_i + sum_i h_i (1 - p_i))
        = 2 sum_i h_i p_i / (sum_i p_i + sum_i h_i)``.

    This project reports it as a fraction in [0, 1] (the paper multiplies by 100). It needs no label, so a server can
    give it for an unlabeled image; it is only as good as the calibration of ``h`` (over-confident maps overestimate
    the true Dice).

    Degenerate inputs: ``sum p + sum h = 0`` (empty prediction and a map of zeros) -> 1.0, as for two empty masks;
    an empty prediction with a non-zero map -> 0.0; NaN anywhere in an (image, structure) -> NaN.

    Args:
        prob: probability map ``h`` (B, L, *S) in [0, 1].
        pred: binary prediction ``p`` (B, L, *S) (any dtype; non-zero is foreground), e.g. ``prob >= 0.5`` or one
            structure of the served label map.

    Returns:
        float32 tensor (B, L).
    """
    h = as_float_tensor(prob, "prob")
    p = as_float_tensor(pred, "pred")
    check_same_shape(h, p)
    h, p = h.flatten(2), (p.to(h.device).flatten(2) != 0).to(h.dtype)
    tp = (h * p).sum(-1)
    total = p.sum(-1) + h.sum(-1)
    out = torch.where(total > 0, 2.0 * tp / total.clamp_min(torch.finfo(torch.float64).tiny), torch.ones_like(total))
    has_nan = torch.isnan(h).any(-1)
    return torch.where(has_nan, torch.full_like(out, float("nan")), out).float()
