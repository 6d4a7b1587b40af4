from __future__ import annotations

import math

import pytest
import torch
from monai.inferers import SimpleInferer, SlidingWindowInferer
from torch import nn

from monai_lexu.inferers import MultiHeadInferer, SplitProbUnc, SplitProbUncd, heads_to_prob_unc
from monai_lexu.networks import MultiHeadUNet

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
