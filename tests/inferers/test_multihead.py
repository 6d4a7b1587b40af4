from __future__ import annotations

import math

import pytest
import torch
from monai.inferers import SimpleInferer, SlidingWindowInferer
from torch import nn

from monai_lexu.contract import heads_to_prob_unc
from monai_lexu.inferers import MultiHeadInferer
from monai_lexu.networks import MultiHeadUNet
from monai_lexu.transforms import SplitProbUnc, SplitProbUncd

LN3 = math.log(3.0)


def _three_heads() -> torch.Tensor:
    """K=3, L=2, 1x1 image. Structure 0: sigmoids 0.5, 0.75, 0.25; structure 1: sigmoid 0.5 for every head."""
    z = torch.tensor([[0.0, 0.0], [LN3, 0.0], [-LN3, 0.0]])  # (K, L)
    return z.reshape(1, 6, 1, 1)


def test_heads_to_prob_unc_known_answer():
    out = heads_to_prob_unc(_three_heads(), num_heads=3)
    assert out.shape == (1, 4, 1, 1)
    assert torch.allclose(out.flatten(), torch.tensor([0.5, 0.5, 0.0625, 0.0]), atol=1e-7)
    biased = heads_to_prob_unc(_three_heads(), num_heads=3, unbiased=False)
    assert torch.allclose(biased.flatten(), torch.tensor([0.5, 0.5, 0.125 / 3, 0.0]), atol=1e-7)
    skipped = heads_to_prob_unc(_three_heads(), num_heads=3, skip_first=1)  # heads 0.75, 0.25
    assert torch.allclose(skipped.flatten(), torch.tensor([0.5, 0.5, 0.125, 0.0]), atol=1e-7)
    single = heads_to_prob_unc(_three_heads(), num_heads=3, skip_first=2)  # one head kept: variance 0
    assert torch.allclose(single.flatten(), torch.tensor([0.25, 0.5, 0.0, 0.0]), atol=1e-7)


def test_heads_to_prob_unc_matches_torch_and_keeps_dtype():
    torch.manual_seed(0)
    logits = torch.randn(2, 5 * 3, 4, 4, 4)
    probs = torch.sigmoid(logits.reshape(2, 5, 3, 4, 4, 4))
    out = heads_to_prob_unc(logits, 5)
    assert torch.allclose(out[:, :3], probs.mean(1), atol=1e-6)
    assert torch.allclose(out[:, 3:], probs.var(1, unbiased=True), atol=1e-6)
    half = heads_to_prob_unc(logits.to(torch.bfloat16), 5)
    assert half.dtype == torch.bfloat16
    assert torch.allclose(half.float(), heads_to_prob_unc(logits.to(torch.bfloat16).float(), 5), atol=1e-2)


def test_heads_to_prob_unc_errors():
    with pytest.raises(ValueError, match="multiple of num_heads=4"):
        heads_to_prob_unc(torch.zeros(1, 6, 2, 2), 4)
    with pytest.raises(ValueError, match="skip_first"):
        heads_to_prob_unc(torch.zeros(1, 6, 2, 2), 3, skip_first=3)


@pytest.mark.parametrize("mode", ["constant", "gaussian"])
@pytest.mark.parametrize("dims", [2, 3])
def test_sliding_window_equals_simple_for_pointwise_heads(mode, dims):
    torch.manual_seed(1)
    k, n_struct = 4, 2
    conv = nn.Conv2d if dims == 2 else nn.Conv3d
    net = conv(3, k * n_struct, kernel_size=1).eval()  # pointwise heads: result independent of the windowing
    x = torch.randn(2, 3, *((13, 11) if dims == 2 else (9, 7, 8)))
    roi = (5, 4) if dims == 2 else (4, 3, 5)
    with torch.no_grad():
        simple = MultiHeadInferer(k)(x, net)
        sw = MultiHeadInferer(k, SlidingWindowInferer(roi_size=roi, sw_batch_size=3, overlap=0.5, mode=mode))(x, net)
    assert simple.shape == (2, 2 * n_struct, *x.shape[2:])
    assert torch.allclose(sw, simple, atol=1e-5)
    assert torch.allclose(simple, heads_to_prob_unc(net(x), k), atol=1e-6)


def test_sliding_window_calls_are_converted_per_window():
    """The wrapped predictor receives windows and already returns 2L channels, never K*L, to the blender."""
    k, n_struct = 3, 2
    net = nn.Conv2d(1, k * n_struct, 1)
    seen: list[tuple[int, ...]] = []
    net.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape)))
    out = MultiHeadInferer(k, SlidingWindowInferer(roi_size=(4, 4), sw_batch_size=1, overlap=0.0))(
        torch.rand(1, 1, 8, 8), net
    )
    assert out.shape == (1, 4, 8, 8)
    assert len(seen) == 4 and all(s == (1, 6, 4, 4) for s in seen)


def test_multihead_unet_with_inferers():
    torch.manual_seed(2)
    net = MultiHeadUNet(3, 1, 2, backbone="plain", features=(4, 8, 16)).eval()
    x = torch.rand(1, 1, 24, 20, 16)
    inferer = MultiHeadInferer(net.num_heads, SlidingWindowInferer(roi_size=(16, 16, 16), overlap=0.25))
    with torch.no_grad():
        out = inferer(x, net)
        simple = MultiHeadInferer(net.num_heads, SimpleInferer())(x[..., :16, :16, :16], net)
    assert out.shape == (1, 4, 24, 20, 16)
    prob, unc = out[:, :2], out[:, 2:]
    assert (prob >= 0).all() and (prob <= 1).all()
    # unbiased variance of K values in [0, 1] is at most K / (4 (K - 1))
    assert (unc >= 0).all() and (unc <= net.num_heads / (4 * (net.num_heads - 1)) + 1e-6).all()
    assert simple.shape == (1, 4, 16, 16, 16)


def test_split_prob_unc():
    pred = torch.arange(4 * 3 * 3, dtype=torch.float32).reshape(4, 3, 3)
    prob, unc = SplitProbUnc()(pred)
    assert torch.equal(prob, pred[:2]) and torch.equal(unc, pred[2:])
    d = SplitProbUncd(keys="pred")({"pred": pred, "image": torch.zeros(1)})
    assert torch.equal(d["prob"], pred[:2]) and torch.equal(d["unc"], pred[2:])
    assert torch.equal(d["pred"], pred)
    d2 = SplitProbUncd(keys=["a", "b"], prob_key=["pa", "pb"], unc_key=["ua", "ub"])({"a": pred, "b": pred + 1})
    assert torch.equal(d2["pb"], pred[:2] + 1) and torch.equal(d2["ua"], pred[2:])
    assert "prob" not in SplitProbUncd(keys="pred", allow_missing_keys=True)({"x": pred})
    with pytest.raises(ValueError, match="key 'pred'.*even channel count"):
        SplitProbUncd()({"pred": torch.zeros(3, 2, 2)})


def test_heads_to_prob_unc_entropy_known_answer():
    # structure 0: heads 0.5, 0.75, 0.25 -> prob 0.5 -> entropy 1 bit; structure 1: all 0.5 -> 1 bit
    out = heads_to_prob_unc(_three_heads(), num_heads=3, uncertainty="entropy")
    assert torch.allclose(out.flatten(), torch.tensor([0.5, 0.5, 1.0, 1.0]), atol=1e-6)
    # prob 0.25 (one kept head): H = -(0.25 log2 0.25 + 0.75 log2 0.75) = 0.811278...
    single = heads_to_prob_unc(_three_heads(), num_heads=3, skip_first=2, uncertainty="entropy")
    assert single.flatten()[2].item() == pytest.approx(0.8112781, abs=1e-6)
    with pytest.raises(ValueError, match="uncertainty"):
        heads_to_prob_unc(_three_heads(), num_heads=3, uncertainty="mutual_information")
    with pytest.raises(ValueError, match="uncertainty"):
        MultiHeadInferer(3, uncertainty="std")


def _dropout_net(dropout: float = 0.5) -> MultiHeadUNet:
    torch.manual_seed(0)
    return MultiHeadUNet(2, 1, 1, backbone="plain", features=(4, 8), heads="last", dropout=dropout).eval()


def test_mc_dropout_switches_only_dropout_on_and_restores_modes():
    from monai_lexu.inferers import mc_dropout

    net = _dropout_net()
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    drops = [m for m in net.modules() if isinstance(m, nn.Dropout)]
    assert norms and drops
    with mc_dropout(net) as n:
        assert n == len(drops)
        assert all(m.training for m in drops) and not any(m.training for m in norms)
    assert not any(m.training for m in net.modules())
    with pytest.raises(ValueError, match="no dropout"):
        with mc_dropout(_dropout_net(dropout=0.0)):
            pass


def test_mc_dropout_inferer_is_the_mean_and_entropy_of_the_samples():
    from monai_lexu.inferers import MCDropoutInferer, mc_dropout

    net = _dropout_net()
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        torch.manual_seed(1)
        out = MCDropoutInferer(num_samples=6, max_batch_voxels=0)(x, net)  # one sample per forward: same RNG order
        torch.manual_seed(1)
        with mc_dropout(net):
            samples = torch.stack([torch.sigmoid(net(x)) for _ in range(6)])  # (T, B, 1, H, W)
    prob = samples.mean(0)
    entropy = -(prob * torch.log2(prob) + (1 - prob) * torch.log2(1 - prob))
    assert out.shape == (2, 2, 16, 16)
    assert torch.allclose(out[:, :1], prob, atol=1e-6)
    assert torch.allclose(out[:, 1:], entropy, atol=1e-5)
    assert samples.var(0).max() > 1e-4  # the samples differ: dropout was active
    assert not net.training and not any(m.training for m in net.modules())
    with torch.no_grad():
        torch.manual_seed(1)
        var = MCDropoutInferer(num_samples=6, uncertainty="variance", max_batch_voxels=0)(x, net)
    assert torch.allclose(var[:, 1:], samples.var(0, unbiased=True), atol=1e-6)
    with pytest.raises(ValueError, match="num_samples"):
        MCDropoutInferer(num_samples=0)
    with pytest.raises(TypeError, match="nn.Module"):
        MCDropoutInferer(2)(x, lambda t: t)


def test_mc_dropout_inferer_with_sliding_window_keeps_the_contract():
    from monai_lexu.inferers import MCDropoutInferer

    net = _dropout_net(0.2)
    with torch.no_grad():
        out = MCDropoutInferer(4, base_inferer=SlidingWindowInferer(roi_size=(8, 8), overlap=0.5))(
            torch.rand(1, 1, 16, 16), net
        )
    assert out.shape == (1, 2, 16, 16)
    assert 0.0 <= out[:, 0].min() and out[:, 0].max() <= 1.0
    assert 0.0 <= out[:, 1].min() and out[:, 1].max() <= 1.0 + 1e-6


def test_mc_dropout_batched_samples_equal_the_unbatched_path_in_distribution():
    """Batched samples draw their masks in another order (layer by layer for all samples at once), so the same seed
    gives other masks: the per-pixel statistics agree in distribution (tolerance from the sampling error)."""
    from monai_lexu.inferers import MCDropoutInferer

    net = _dropout_net(0.5)
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(4))
    t = 400
    with torch.no_grad():
        torch.manual_seed(5)
        one = MCDropoutInferer(t, uncertainty="variance", max_batch_voxels=0)(x, net)
        torch.manual_seed(5)
        batched = MCDropoutInferer(t, uncertainty="variance", max_batch_voxels=2 * 16 * 16 * 7)(x, net)  # 7 per pass
    assert batched.shape == one.shape == (2, 2, 16, 16)
    assert not torch.equal(batched, one)
    # mean over T=400 samples: |difference| of two independent estimates ~ sqrt(2 var / T)
    sigma = (2 * one[:, 1:] / t).sqrt()
    assert ((batched[:, :1] - one[:, :1]).abs() <= 5 * sigma + 1e-6).float().mean() > 0.99
    assert abs(batched[:, 1:].mean().item() / one[:, 1:].mean().item() - 1) < 0.1  # mean sample variance


def test_mc_dropout_batches_are_sample_major_heads():
    """With a deterministic network every batched sample equals the unbatched output (layout check)."""
    from monai_lexu.inferers.multihead import _ProbUncPredictor

    net = MultiHeadUNet(2, 1, 2, backbone="plain", features=(4, 8), heads="decoder").eval()
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        ref = _ProbUncPredictor(net, net.num_heads, 0, True, "variance", num_samples=5, max_voxels=0)(x)
        out = _ProbUncPredictor(net, net.num_heads, 0, True, "variance", num_samples=5, max_voxels=3 * 64 * 2)(x)
        single = _ProbUncPredictor(net, net.num_heads, 0, True, "variance")(x)
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(out[:, :2], single[:, :2], rtol=1e-6, atol=1e-7)


def test_mc_dropout_cheap_masks_switch_and_restore():
    from monai_lexu.inferers import mc_dropout
    from monai_lexu.networks import UniformMaskDropout

    net = _dropout_net()
    with mc_dropout(net):
        assert all(type(m) is UniformMaskDropout for m in net.modules() if isinstance(m, nn.Dropout))
    with mc_dropout(net, cheap_masks=False):
        assert all(type(m) is nn.Dropout for m in net.modules() if isinstance(m, nn.Dropout))
    assert all(type(m) is nn.Dropout for m in net.modules() if isinstance(m, nn.Dropout))
