"""Tests for monai_lexu.metrics.estimated_dice: known answers and the degenerate-input policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_lexu.metrics import estimated_dice


def test_known_answer() -> None:
    # h = [0.5, 0.5, 1, 0], p = [1, 0, 1, 0]: TP = 1.5, FP = 0.5, FN = 0.5 -> 2 * 1.5 / (3 + 1) = 0.75
    h = torch.tensor([[[0.5, 0.5, 1.0, 0.0]]])
    p = torch.tensor([[[1, 0, 1, 0]]], dtype=torch.uint8)
    assert estimated_dice(h, p).tolist() == [[0.75]]


def test_equals_the_true_dice_for_a_binary_map_and_matches_the_paper_formula() -> None:
    rng = np.random.default_rng(0)
    s = (rng.random((2, 3, 8, 8)) > 0.6).astype(np.float32)
    p = (rng.random((2, 3, 8, 8)) > 0.5).astype(np.float32)
    tp, fp, fn = (s * p).sum((2, 3)), ((1 - s) * p).sum((2, 3)), (s * (1 - p)).sum((2, 3))
    np.testing.assert_allclose(estimated_dice(s, p).numpy(), 2 * tp / (2 * tp + fp + fn), atol=1e-6)
    h = rng.random((2, 3, 8, 8))
    tp, fp, fn = (h * p).sum((2, 3)), ((1 - h) * p).sum((2, 3)), (h * (1 - p)).sum((2, 3))
    out = estimated_dice(h, p)
    assert out.shape == (2, 3) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), 2 * tp / (2 * tp + fp + fn), atol=1e-6)


def test_degenerate_inputs() -> None:
    zeros = torch.zeros(1, 2, 4)
    h = torch.stack([torch.zeros(4), torch.full((4,), 0.3)])[None]
    out = estimated_dice(h, zeros)
    assert out.tolist() == [[1.0, 0.0]]  # nothing predicted, nothing expected -> 1; expected foreground missed -> 0
    h[0, 1, 0] = float("nan")
    assert torch.isnan(estimated_dice(h, zeros)[0, 1]) and estimated_dice(h, zeros)[0, 0] == 1.0


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError):
        estimated_dice(torch.zeros(1, 1, 4), torch.zeros(1, 1, 5))
