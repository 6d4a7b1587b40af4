"""KeepHeadsInferer keeps the heads behind prob/unc; SplitHeadsd splits them off after decollation."""

from __future__ import annotations

import pytest
import torch
from monai.inferers import SlidingWindowInferer

from monai_lexu.contract import heads_to_prob_unc
from monai_lexu.inferers import (
    CalibratedEnsembleInferer,
    KeepHeadsInferer,
    MCDropoutInferer,
    MultiHeadInferer,
    calibrated_heatmap,
    equal_coefficients,
    heads_to_votes,
    heatmap_to_prob_unc,
    save_coefficients,
)
from monai_lexu.networks import MultiHeadUNet
from monai_lexu.transforms import SplitHeadsd


def _net(**kw) -> MultiHeadUNet:
    torch.manual_seed(0)
    return MultiHeadUNet(2, 1, 2, backbone="plain", features=(4, 8, 16), **kw).eval()


def test_kept_heads_match_the_network_and_prob_unc():
    net = _net(heads="decoder")
    x = torch.rand(2, 1, 32, 32)
    inner = MultiHeadInferer(net.num_heads, skip_first=1)
    with torch.no_grad():
        out = KeepHeadsInferer(inner)(x, net)
        logits = net(x)
    k, num_l = net.num_heads, 2
    assert out.shape == (2, 2 * num_l + (k - 1) * num_l, 32, 32)
    torch.testing.assert_close(out[:, : 2 * num_l], heads_to_prob_unc(logits, k, skip_first=1))
    heads = torch.sigmoid(logits.reshape(2, k, num_l, 32, 32)[:, 1:])
    torch.testing.assert_close(out[:, 2 * num_l :], heads.flatten(1, 2))
    # the mean of the kept heads is the probability
    torch.testing.assert_close(heads.mean(1), out[:, :num_l])
    d = SplitHeadsd("pred", num_l)({"pred": out[0]})
    assert d["pred"].shape == (4, 32, 32) and d["heads"].shape == (k - 1, num_l, 32, 32)
    with pytest.raises(ValueError, match="2L \\+ K L"):
        SplitHeadsd("pred", 3)({"pred": out[0]})


def test_mc_dropout_samples_are_the_ones_averaged_and_sliding_window_works():
    net = _net(heads="last", dropout=0.5)
    x = torch.rand(1, 1, 32, 32)
    torch.manual_seed(1)
    with torch.no_grad():
        out = KeepHeadsInferer(MCDropoutInferer(num_samples=6, uncertainty="variance", max_batch_voxels=2048))(x, net)
    heads = out[:, 4:].reshape(1, 6, 2, 32, 32)
    torch.testing.assert_close(heads.mean(1), out[:, :2], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(heads.var(1), out[:, 2:4], atol=1e-6, rtol=1e-5)
    assert heads.std(1).max() > 0  # the samples differ
    sw = MultiHeadInferer(_net(heads="decoder").num_heads, SlidingWindowInferer(roi_size=(16, 16), overlap=0.5))
    with torch.no_grad():
        out_sw = KeepHeadsInferer(sw)(x, _net(heads="decoder"))
    assert out_sw.shape[1] == 4 + 2 * _net(heads="decoder").num_heads
    with pytest.raises(TypeError, match="MultiHeadInferer"):
        KeepHeadsInferer(SlidingWindowInferer(roi_size=(16, 16)))


def test_calibrated_ensemble_keeps_the_members_its_votes_came_from(tmp_path):
    net = _net(heads="decoder")  # the heads stand for the members of an ensemble
    k, num_l = net.num_heads, 2
    coefficients = [[0.5, 0.3, 0.2][:k] + [0.0] * (k - 3), [1.0 / k] * k]
    save_coefficients(tmp_path / "calibration.json", coefficients, ["disc", "cup"])
    inner = CalibratedEnsembleInferer(str(tmp_path / "calibration.json"), num_heads=k)
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        out = KeepHeadsInferer(inner)(x, net)
        heads = torch.sigmoid(net(x)).reshape(2, k, num_l, 32, 32)
        reference = inner(x, net)
    assert out.shape == (2, 2 * num_l + k * num_l, 32, 32)
    torch.testing.assert_close(out[:, : 2 * num_l], reference)
    torch.testing.assert_close(out[:, 2 * num_l :], heads.flatten(1, 2))
    # the kept maps, thresholded and weighted by the coefficients, give the calibrated probability
    h = calibrated_heatmap(heads_to_votes(out[:, 2 * num_l :], k, logits=False), torch.tensor(coefficients))
    torch.testing.assert_close(heatmap_to_prob_unc(h), out[:, : 2 * num_l])
    with pytest.raises(ValueError, match="output prob_unc"):
        KeepHeadsInferer(CalibratedEnsembleInferer(coefficients, num_heads=k, output="votes"))


def test_calibrated_mc_dropout_keeps_its_samples():
    net = _net(heads="last", dropout=0.5)
    samples = 5
    inner = CalibratedEnsembleInferer(equal_coefficients(samples, 2), num_heads=samples, mc_samples=samples)
    torch.manual_seed(3)
    with torch.no_grad():
        out = KeepHeadsInferer(inner)(torch.rand(1, 1, 32, 32), net)
    heads = out[:, 4:].reshape(1, samples, 2, 32, 32)
    assert heads.std(1).max() > 0  # the samples differ
    torch.testing.assert_close((heads >= 0.5).float().mean(1), out[:, :2])  # equal weights: the mean of the masks
