"""Tests of monai_lexu.metrics.entropy: binary/rater entropy, WME and ME (Jungo et al. 2018)."""

from __future__ import annotations

import math

import pytest
import torch

from monai_lexu.contract import binary_entropy
from monai_lexu.metrics import (
    MeanEntropyMetric,
    WeightedMeanEntropyMetric,
    mean_entropy,
    rater_entropy,
    weighted_mean_entropy,
)

H02 = -(0.2 * math.log2(0.2) + 0.8 * math.log2(0.8))  # 0.7219281 bits: 1 of 5 raters
H04 = -(0.4 * math.log2(0.4) + 0.6 * math.log2(0.6))  # 0.9709506 bits: 2 of 5 raters


def test_binary_entropy_known_values():
    # H(0.5) = 1 bit; H(0) = H(1) = 0 (0 log 0 = 0);
    # H(0.25) = 0.25 * 2 + 0.75 * log2(4/3) = 0.5 + 0.3112781 = 0.8112781
    p = torch.tensor([0.0, 0.25, 0.5, 1.0])
    torch.testing.assert_close(binary_entropy(p), torch.tensor([0.0, 0.8112781, 1.0, 0.0]))
    torch.testing.assert_close(binary_entropy(p, base=math.e)[2], torch.tensor(math.log(2)))  # nats
    torch.testing.assert_close(binary_entropy(p), binary_entropy(1 - p))  # symmetric
    assert torch.isnan(binary_entropy(torch.tensor([float("nan")]))).all()
    with pytest.raises(ValueError, match="base"):
        binary_entropy(p, base=1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        binary_entropy(torch.tensor([1.5]))


def test_rater_entropy_known_values_and_padding():
    # 5 raters, 3 pixels marked by 0, 1 and 2 raters -> fractions 0, 0.2, 0.4 -> H = 0, 0.7219281, 0.9709506
    raters = torch.zeros(1, 5, 1, 1, 3)
    raters[0, 0, 0, 0, 1] = 1
    raters[0, :2, 0, 0, 2] = 1
    torch.testing.assert_close(rater_entropy(raters), torch.tensor([[[[0.0, H02, H04]]]]))
    assert rater_entropy(raters[:, :, 0]).shape == (1, 1, 3)  # (B, R, *S) layout
    # padded raters are ignored: 3 valid raters, 2 of them mark the pixel -> f = 2/3 -> H = 0.9182958
    r = torch.tensor([1.0, 0.0, 1.0, 1.0]).reshape(1, 4, 1, 1)  # the 4th (padding) would change f to 3/4
    valid = torch.tensor([[True, True, True, False]])
    h23 = -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))
    assert rater_entropy(r, valid).item() == pytest.approx(h23, abs=1e-6)
    # equals the entropy of the contract's soft label; one valid rater -> 0
    soft = r[:, :3].mean(1)
    torch.testing.assert_close(rater_entropy(r, valid), binary_entropy(soft))
    assert rater_entropy(r, torch.tensor([[True, False, False, False]])).item() == 0.0
    with pytest.raises(ValueError, match="no valid rater"):
        rater_entropy(r, torch.zeros(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="rater_valid"):
        rater_entropy(r, torch.ones(1, 3, dtype=torch.bool))


def test_wme_and_me_known_answer():
    # soft label y = [0, 0.5, 0.5, 1] -> expert entropy H^ = [0, 1, 1, 0]
    # prediction p = [0.5, 0.5, 0.25, 0] -> predictive entropy H = [1, 1, 0.8112781, 0]
    #   WME (expert weighting) = (1*1 + 1*0.8112781) / (1 + 1) = 0.9056391
    #   WME (pixels)           = 1.8112781 / 4 = 0.4528195
    #   ME                     = (1 + 1 + 0.8112781 + 0) / 4 = 0.7028195
    y = torch.tensor([0.0, 0.5, 0.5, 1.0]).reshape(1, 1, 2, 2)
    p = torch.tensor([0.5, 0.5, 0.25, 0.0]).reshape(1, 1, 2, 2)
    assert weighted_mean_entropy(p, y).item() == pytest.approx(0.9056391, abs=1e-6)
    assert weighted_mean_entropy(p, y, weighting="pixels").item() == pytest.approx(0.4528195, abs=1e-6)
    assert mean_entropy(p).item() == pytest.approx(0.7028195, abs=1e-6)
    # precomputed entropy maps give the same
    h, hh = binary_entropy(p), binary_entropy(y)
    wme = weighted_mean_entropy(h, hh, pred_is_entropy=True, target_is_entropy=True)
    assert wme.item() == pytest.approx(0.9056391, abs=1e-6)
    assert mean_entropy(h, pred_is_entropy=True).item() == pytest.approx(0.7028195, abs=1e-6)


def test_wme_normalisation_against_jungo_table1():
    # 5 observers on a 50x50 image (N = 2500); a boundary band of 50 pixels (2 %): 25 pixels marked by 1 of 5
    # observers (H^ = 0.7219281), 25 by 2 of 5 (H^ = 0.9709506); the model reproduces the soft label (H = H^).
    #   expert-weighted WME = (H02^2 + H04^2) / (H02 + H04) = 1.4639273 / 1.6928787 = 0.8647559
    #   pixel-normalised    = 25 * (H02^2 + H04^2) / 2500 = 0.0146393
    #   ME                  = 25 * (H02 + H04) / 2500 = 0.0169288
    # Jungo's Table 1 reports WME .68 > ME .12: only the expert-weighted mean can exceed ME.
    y = torch.zeros(1, 1, 50, 50)
    y[0, 0, 0, :25] = 0.2
    y[0, 0, 1, :25] = 0.4
    p = y.clone()
    assert weighted_mean_entropy(p, y).item() == pytest.approx((H02**2 + H04**2) / (H02 + H04), abs=1e-6)
    assert weighted_mean_entropy(p, y, weighting="pixels").item() == pytest.approx(
        25 * (H02**2 + H04**2) / 2500, abs=1e-6
    )
    assert mean_entropy(p).item() == pytest.approx(25 * (H02 + H04) / 2500, abs=1e-6)
    # property behind the argument: with base-2 entropies the pixel-normalised WME never exceeds ME
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        pr, yr = torch.rand(3, 2, 6, 6, generator=g), torch.rand(3, 2, 6, 6, generator=g)
        assert (weighted_mean_entropy(pr, yr, weighting="pixels") <= mean_entropy(pr) + 1e-6).all()


def test_wme_properties_and_degenerate():
    g = torch.Generator().manual_seed(1)
    y = torch.rand(2, 2, 6, 6, generator=g)
    certain = (torch.rand(2, 2, 6, 6, generator=g) > 0.5).float()
    torch.testing.assert_close(weighted_mean_entropy(certain, y), torch.zeros(2, 2))  # confident model: 0
    torch.testing.assert_close(weighted_mean_entropy(torch.full_like(y, 0.5), y), torch.ones(2, 2))  # max: 1
    # no expert disagreement (unanimous raters): NaN with expert weighting, 0 with pixel weighting
    unanimous = (y > 0.5).float()
    assert torch.isnan(weighted_mean_entropy(y, unanimous)).all()
    torch.testing.assert_close(weighted_mean_entropy(y, unanimous, weighting="pixels"), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="weighting"):
        weighted_mean_entropy(y, y, weighting="sum")
    with pytest.raises(ValueError, match="same shape"):
        weighted_mean_entropy(y, y[:1])


def test_entropy_metrics_accumulate_over_iterations():
    g = torch.Generator().manual_seed(2)
    p, y = torch.rand(5, 2, 4, 4, generator=g), torch.rand(5, 2, 4, 4, generator=g)
    y[2, 1] = 1.0  # no disagreement -> excluded from the WME mean
    wme = WeightedMeanEntropyMetric()
    me = MeanEntropyMetric()
    for sl in (slice(0, 3), slice(3, 5)):
        wme(p[sl], y[sl])
        me(p[sl])
    per_image = weighted_mean_entropy(p, y)
    expected = torch.stack([per_image[:, 0].mean(), per_image[[0, 1, 3, 4], 1].mean()])
    torch.testing.assert_close(wme.aggregate(), expected)
    assert wme.num_excluded().tolist() == [0, 1]
    torch.testing.assert_close(me.aggregate(), mean_entropy(p).mean(0))
    with pytest.raises(ValueError, match="weighting"):
        WeightedMeanEntropyMetric(weighting="x")
