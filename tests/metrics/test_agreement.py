"""Agreement scores between heads on constructed heads."""

from __future__ import annotations

import numpy as np
import pytest

from monai_lexu.metrics import consecutive_head_agreement, head_agreement, pairwise_soft_dice


def _heads() -> np.ndarray:
    # 3 heads, 1 structure, 1 x 4 pixels; probabilities 0.8 / 0 make the soft Dice the same at every threshold < 0.8
    h = np.zeros((3, 1, 1, 4))
    h[0, 0, 0, :2] = 0.8  # {0, 1}
    h[1, 0, 0, :2] = 0.8  # {0, 1}
    h[2, 0, 0, 1:3] = 0.8  # {1, 2}
    return h


def test_pairwise_soft_dice_of_constructed_heads():
    d = pairwise_soft_dice(_heads(), thresholds=(0.5,)).numpy()
    np.testing.assert_allclose(d[:, 0], [1.0, 0.5, 0.5], atol=1e-6)  # (0,1), (0,2), (1,2)
    # default thresholds 0.1..0.9: at 0.9 every head is empty -> Dice 1; the others as at 0.5
    d5 = pairwise_soft_dice(_heads()).numpy()[:, 0]
    np.testing.assert_allclose(d5, [1.0, (4 * 0.5 + 1) / 5, (4 * 0.5 + 1) / 5], atol=1e-6)


def test_head_agreement_mean_and_variance():
    a = head_agreement(_heads(), thresholds=(0.5,))
    assert a["mean"][0] == pytest.approx(2 / 3, abs=1e-6)
    assert a["var"][0] == pytest.approx(np.var([1.0, 0.5, 0.5]), abs=1e-6)
    same = np.repeat(_heads()[:1], 4, axis=0)
    b = head_agreement(same)
    assert b["mean"][0] == pytest.approx(1.0) and b["var"][0] == pytest.approx(0.0)


def test_consecutive_head_agreement_thresholds_at_half():
    h = _heads()
    h[0, 0, 0, 3] = 0.2  # below 0.5: ignored (a bool cast would count it)
    out = consecutive_head_agreement(h)
    np.testing.assert_allclose(out["curve"][:, 0], [1.0, 0.5], atol=1e-6)
    assert out["area"][0] == pytest.approx(0.75, abs=1e-6)
    with pytest.raises(ValueError, match="at least 2 heads"):
        consecutive_head_agreement(h[:1])


def test_auroc_hand_computed():
    from monai_lexu.metrics import auroc

    # positives 0.9, 0.4; negatives 0.4, 0.1: pairs (0.9>0.4, 0.9>0.1, 0.4=0.4, 0.4>0.1) -> (3 + 0.5) / 4
    assert auroc([0.9, 0.4, 0.4, 0.1], [True, True, False, False]) == pytest.approx(0.875)
    assert auroc([1, 2], [True, True]) != auroc([1, 2], [True, True])  # NaN without a negative


def test_head_agreement_metric_cumulates_images():
    import torch

    from monai_lexu.metrics import HeadAgreementMetric

    metric = HeadAgreementMetric()
    batch = torch.as_tensor(np.stack([_heads(), np.repeat(_heads()[:1], 3, axis=0)]))  # (2, K=3, L=1, 1, 4)
    metric(batch)
    metric(batch[:1])
    np.testing.assert_allclose(metric.get_buffer()[:, 0].numpy(), [2.2 / 3, 1.0, 2.2 / 3], rtol=1e-6)
    assert metric.aggregate()[0].item() == pytest.approx((2.2 / 3 * 2 + 1) / 3, abs=1e-6)
    with pytest.raises(ValueError, match="statistic"):
        HeadAgreementMetric("max")
