"""Known answers of the parametric loss L_w (Buddenkotte et al., Eq. 1)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from monai.losses import DiceLoss

from monai_lexu.losses import ParametricCalibrationLoss, parametric_loss, shifted_loss_weights


def _bce_plus_soft_dice(logits: torch.Tensor, y: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """BCE (voxel mean) + soft Dice per sample and structure, computed independently with MONAI's DiceLoss."""
    bce = F.binary_cross_entropy_with_logits(logits, y)
    dice = DiceLoss(sigmoid=True, smooth_nr=2 * eps, smooth_dr=2 * eps, batch=False, reduction="mean")(logits, y)
    return bce + dice


def test_w_zero_equals_bce_plus_soft_dice():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 2, 8, 9, generator=g) * 3
    y = (torch.rand(3, 2, 8, 9, generator=g) > 0.6).float()
    ce, dice = parametric_loss(logits, y, [0.0, 0.0])
    assert torch.allclose(ce + dice, _bce_plus_soft_dice(logits, y), atol=1e-6)
    loss = ParametricCalibrationLoss(w=0.0, num_heads=1, target="soft")
    assert torch.allclose(loss(logits, y), _bce_plus_soft_dice(logits, y), atol=1e-6)


def test_terms_by_hand():
    # one sample, one structure, 2 voxels: p = (0.5, sigmoid(1)), y = (1, 0)
    logits = torch.tensor([[[0.0, 1.0]]])
    y = torch.tensor([[[1.0, 0.0]]])
    w = -1.0
    ce, dice = parametric_loss(logits, y, [w], eps=0.0)
    p1 = 1 / (1 + math.exp(-1.0))
    expected_ce = (math.exp(1.0) * -math.log(0.5) + -math.log(1 - p1)) / 2
    tp, fp, fn = 0.5, p1, 0.5
    s = 1 / (1 + math.exp(-w))
    expected_dice = 1 - tp / (tp + s * fp + (1 - s) * fn)
    assert ce.item() == pytest.approx(expected_ce, rel=1e-6)
    assert dice.item() == pytest.approx(expected_dice, rel=1e-6)


def _fit_threshold(w: float) -> float:
    """Fit a 1-parameter-pair logistic classifier z = a x + b on a 1-D toy with L_w; return its boundary -b/a."""
    g = torch.Generator().manual_seed(1)
    x = torch.cat([torch.randn(400, generator=g) - 1, torch.randn(400, generator=g) + 1])
    y = torch.cat([torch.zeros(400), torch.ones(400)])
    a = torch.tensor(1.0, requires_grad=True)
    b = torch.tensor(0.0, requires_grad=True)
    loss = ParametricCalibrationLoss(w=w, target="soft")
    opt = torch.optim.Adam([a, b], lr=0.05)
    for _ in range(400):
        opt.zero_grad()
        z = (a * x + b).reshape(1, 1, -1)
        loss(z, y.reshape(1, 1, -1)).backward()
        opt.step()
    return float((-b / a).detach())


def test_sign_of_w_moves_decision():
    t_sens, t_zero, t_prec = _fit_threshold(-2.0), _fit_threshold(0.0), _fit_threshold(2.0)
    assert abs(t_zero) < 0.15
    assert t_sens < t_zero - 0.3  # more sensitive: foreground called further into class 0
    assert t_prec > t_zero + 0.3  # more precise


def test_members_get_their_own_weights():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 3 * 2, 5, 5, generator=g)
    soft = torch.rand(2, 2, 5, 5, generator=g)
    w = shifted_loss_weights([-0.5, -1.5], [-1, 0, 1], 2)
    assert w == [[-1.5, -2.5], [-0.5, -1.5], [0.5, -0.5]]
    loss = ParametricCalibrationLoss(w=w, num_heads=3, target="majority")
    total = loss(logits, {"soft_label": soft})
    y = (soft > 0.5).float()
    expected = sum(sum(parametric_loss(logits[:, 2 * k : 2 * k + 2], y, w[k])) for k in range(3))
    assert torch.allclose(total, expected, atol=1e-6)
    assert set(loss.last_terms) == {"ce", "dice", "loss"}


def test_target_from_raters_and_errors():
    raters = torch.zeros(1, 3, 1, 4, 4)
    raters[:, :2, :, :2] = 1.0  # 2 of 3 raters -> majority foreground in the first two rows
    logits = torch.zeros(1, 1, 4, 4)
    loss = ParametricCalibrationLoss(w=0.0)
    a = loss(logits, {"raters": raters})
    b = loss(logits, (raters.mean(1) > 0.5).float())
    assert torch.allclose(a, b)
    with pytest.raises(ValueError, match="w has 2 entries, the output has 1 structures"):
        ParametricCalibrationLoss(w=[0.0, 1.0])(logits, (raters.mean(1) > 0.5).float())
    with pytest.raises(ValueError, match="target must be one of"):
        ParametricCalibrationLoss(target="union")
    with pytest.raises(ValueError, match="expected \\(B, L, \\*S\\)"):
        loss(logits, torch.zeros(1, 1, 3, 3))
