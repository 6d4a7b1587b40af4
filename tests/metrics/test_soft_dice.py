"""Tests of monai_lexu.metrics.soft_dice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_lexu.metrics import SoftDiceMetric, soft_dice


def test_soft_dice_known_answer():
    # p = [0.2, 0.6, 0.8, 0.95], soft label g = [0, 0.5, 1, 1] (strict ">" on both):
    #   t=0.1: P=[1,1,1,1] (4), G=[0,1,1,1] (3), |P&G|=3 -> 6/7
    #   t=0.3: P=[0,1,1,1] (3), G=[0,1,1,1] (3), 3     -> 1
    #   t=0.5: P=[0,1,1,1] (3), G=[0,0,1,1] (2), 2     -> 4/5   (0.5 > 0.5 is false)
    #   t=0.7: P=[0,0,1,1] (2), G=[0,0,1,1] (2), 2     -> 1
    #   t=0.9: P=[0,0,0,1] (1), G=[0,0,1,1] (2), 1     -> 2/3
    #   mean = (6/7 + 1 + 4/5 + 1 + 2/3) / 5 = 0.8647619
    p = torch.tensor([[0.2, 0.6], [0.8, 0.95]]).reshape(1, 1, 2, 2)
    g = torch.tensor([[0.0, 0.5], [1.0, 1.0]]).reshape(1, 1, 2, 2)
    expected = (6 / 7 + 1 + 4 / 5 + 1 + 2 / 3) / 5
    out = soft_dice(p, g)
    assert out.shape == (1, 1)
    assert out.item() == pytest.approx(expected, abs=1e-6)
    assert soft_dice(p.numpy(), g.numpy()).item() == pytest.approx(expected, abs=1e-6)  # numpy input
    # one threshold = plain Dice at that threshold
    assert soft_dice(p, g, thresholds=(0.5,)).item() == pytest.approx(0.8, abs=1e-6)


def test_soft_dice_properties():
    g = torch.Generator().manual_seed(0)
    p, t = torch.rand(3, 2, 8, 8, generator=g), torch.rand(3, 2, 8, 8, generator=g)
    torch.testing.assert_close(soft_dice(p, p), torch.ones(3, 2))  # a map with itself
    torch.testing.assert_close(soft_dice(p, t), soft_dice(t, p))  # symmetric
    assert ((soft_dice(p, t) >= 0) & (soft_dice(p, t) <= 1)).all()
    p3 = torch.rand(2, 2, 4, 4, 4, generator=g)  # 3D
    torch.testing.assert_close(soft_dice(p3, p3), torch.ones(2, 2))


def test_soft_dice_empty_masks_and_nan():
    zeros = torch.zeros(1, 2, 4, 4)
    torch.testing.assert_close(soft_dice(zeros, zeros), torch.ones(1, 2))  # both empty at every t: smooth/smooth
    full = torch.full((1, 2, 4, 4), 0.95)
    # prediction non-empty at every t, label empty: smooth / (16 + smooth) ~ 0
    assert soft_dice(full, zeros).max().item() < 1e-6
    p = torch.rand(1, 2, 4, 4)
    p[0, 1, 0, 0] = float("nan")
    out = soft_dice(p, p.nan_to_num())
    assert out[0, 0].item() == pytest.approx(1.0) and torch.isnan(out[0, 1])
    with pytest.raises(ValueError, match="same shape"):
        soft_dice(zeros, zeros[:, :1])
    with pytest.raises(ValueError, match="at least one"):
        soft_dice(zeros, zeros, thresholds=())


def test_soft_dice_metric_accumulates_over_iterations():
    g = torch.Generator().manual_seed(1)
    p, t = torch.rand(7, 2, 6, 6, generator=g), torch.rand(7, 2, 6, 6, generator=g)
    metric = SoftDiceMetric()
    metric(p[:3], t[:3])
    metric(p[3:], t[3:])
    per_image = soft_dice(p, t)
    torch.testing.assert_close(metric.aggregate(), per_image.mean(0))
    torch.testing.assert_close(metric.aggregate("mean"), per_image.mean().reshape(1))  # MONAI keeps (1,)
    metric_np = SoftDiceMetric(thresholds=np.array([0.5]), get_not_nans=True)
    metric_np(p, t)
    value, not_nans = metric_np.aggregate()
    torch.testing.assert_close(value, soft_dice(p, t, thresholds=(0.5,)).mean(0))
    torch.testing.assert_close(not_nans, torch.tensor([7.0, 7.0]))
